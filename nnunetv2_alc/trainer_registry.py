"""The trainers of this package and their display names, found by scanning ``nnunetv2_alc/trainers``.

Every module ``nnunetv2_alc/trainers/nnUNetTrainer*.py`` holds one class of the module's name (as nnU-Net
finds it by ``-tr``), which sets ``display_name`` (the name in tables, plots and logs) in its own class
body. :func:`trainer_classes` imports them on first use (they import torch and nnU-Net), not when this
module is imported. :data:`BENCHMARK_TRAINERS` is the order of the methods in the tables (paper
Table I), :data:`DIAGNOSTIC_TRAINERS` those that only benchmarks use; ``tests/test_trainer_registry.py``
checks that the two together name every trainer module exactly once.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import MappingProxyType
from typing import Mapping

# imported by name: the trainers import the top-level modules of nnunetv2_alc, this module is one of them
TRAINERS_PACKAGE = "nnunetv2_alc.trainers"
PREFIX = "nnUNetTrainer"
# baselines, the stock nnU-Net reference, ablations, then ALC: the row order of every table
BENCHMARK_TRAINERS = ("nnUNetTrainerHSup", "nnUNetTrainerHLSup", "nnUNetTrainerStock", "nnUNetTrainerMeanTeacher",
                      "nnUNetTrainerALC_noLS", "nnUNetTrainerALC_noLR", "nnUNetTrainerALC")
# diagnostics, not methods a user would pick: the oracle needs the clean training labels (labelsTr_clean/), the
# other two take apart what ALC's batch of 1 HQ + 1 LQ does (docs/method.md, "Data and batches")
DIAGNOSTIC_TRAINERS = ("nnUNetTrainerALC_oracle", "nnUNetTrainerALC_hqforced", "nnUNetTrainerHSup_sampleDice")


class TrainerRegistryError(TypeError):
    """A trainer module breaks the registry's rules (class of the module's name, own ``display_name``)."""


def trainer_module_names(package: str = TRAINERS_PACKAGE) -> tuple[str, ...]:
    """Names of the ``nnUNetTrainer*`` modules of ``package``, sorted; the trainer modules are not imported."""
    folders = importlib.import_module(package).__path__
    return tuple(sorted(info.name for info in pkgutil.iter_modules(folders) if info.name.startswith(PREFIX)))


def scan_trainers(package: str = TRAINERS_PACKAGE) -> dict[str, type]:
    """``{trainer name: class}`` of every ``nnUNetTrainer*`` module of ``package``, in module-name order.

    Raises :class:`TrainerRegistryError` naming the module whose class is missing or sets no display name
    in its own class body.
    """
    classes = {}
    for name in trainer_module_names(package):
        module = importlib.import_module(f"{package}.{name}")
        cls = getattr(module, name, None)
        if not isinstance(cls, type):
            raise TrainerRegistryError(f"{module.__name__} ({module.__file__}) defines no class {name}")
        label = cls.__dict__.get("display_name")
        if not isinstance(label, str) or not label.strip():
            raise TrainerRegistryError(f"{module.__name__} ({module.__file__}): class {name} must set a non-empty "
                                       "display_name in its own class body (the name in tables, plots and logs)")
        classes[name] = cls
    return classes


@cache
def trainer_classes() -> Mapping[str, type]:
    """:func:`scan_trainers` of our trainers package (read-only), imported on the first call only."""
    return MappingProxyType(scan_trainers())


def display_name(trainer: str) -> str:
    """The display name of one of our trainers (``"ALC (ours)"``), else ``trainer`` itself."""
    cls = trainer_classes().get(trainer)
    return trainer if cls is None else cls.display_name
