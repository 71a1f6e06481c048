"""ALC hyperparameters: docs/method.md defaults, overridable without editing the package.

Precedence (later wins): the defaults below, a JSON file named by ``ALC_CONFIG`` (keys = field names),
then one environment variable per field, ``ALC_<FIELD NAME IN CAPITALS>`` (e.g. ``ALC_NUM_PASSES=4``).
nnU-Net's CLI takes no trainer arguments, so environment variables are how a user sets these for
``nnUNetv2_train``; DDP workers inherit them. The effective values go into the training log and
``debug.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from fractions import Fraction
from typing import Any, Mapping

ENV_PREFIX = "ALC_"
CONFIG_FILE_ENV = "ALC_CONFIG"
DROPOUT_PLACEMENTS = ("decoder", "lineage", "all", "none")
SELECTION_MODES = ("auto", "batch", "window")


# settings that may change between a run and its resume (--c): schedule, seeding, validation, memory chunking
RUN_SETTINGS = ("num_epochs", "iterations_per_epoch", "val_iterations_per_epoch", "seed", "final_validation",
                "teacher_chunk")


class ALCConfigError(ValueError):
    """An ALC setting has a bad value."""


@dataclasses.dataclass(frozen=True)
class ALCConfig:
    """All knobs of the method. Defaults follow docs/method.md; those marked "ours" are our choices."""

    num_passes: int = 8            # m, teacher passes (ours, as UA-MT)
    k: float = 0.5                 # fraction of LQ samples selected (Eq. 7)
    alpha: float = 3.0             # weight of L_ls (Eq. 11)
    beta: float = 2.0              # weight of L_n (Eq. 11)
    lambda_max: float = 0.1        # ramp-up ceiling (ours, as UA-MT/MTCL)
    rampup_fraction: float = 0.75  # T as a fraction of all training iterations (MTCL's 75 %)
    ema_decay: float = 0.99        # gamma, Eq. 3 teacher update
    noise_std: float = 0.1         # std of the teacher's Gaussian input noise
    noise_clip: float = 0.2        # noise clamped to [-clip, clip]
    dropout_p: float = 0.1         # dropout rate (ours)
    dropout_placement: str = "lineage"  # lineage | decoder | all | none (docs/method.md, "Choosing the dropout")
    # HQ fraction of each batch, B_h = max(1, round(share * B)); ours: the paper's is 1/6 (4 of 24), which cost
    # 3-10 Dice points on real LA (docs/method.md, "Data and batches"); ALC_HQ_SHARE=1/6 restores it
    hq_share: float = 0.5
    weight_ce: float = 1.0         # l_seg = weight_ce * CE + weight_dice * Dice (Eq. 2 on nnU-Net's scale)
    weight_dice: float = 1.0
    selection_mode: str = "auto"   # batch top-k, windowed rank, or auto (batch if >= 4 LQ per batch)
    selection_window: int = 64     # recent LQ scores the windowed rank compares against (ours)
    teacher_chunk: int = 0         # max samples per teacher forward; 0 = this GPU's batch size
    # training schedule of our trainers; 0 keeps nnU-Net's own value (1000 epochs x 250 + 50 iterations)
    num_epochs: int = 0
    iterations_per_epoch: int = 0
    val_iterations_per_epoch: int = 0
    # ours: -1 leaves training unseeded (nnU-Net's behaviour); >= 0 seeds Python, NumPy and torch before the
    # network is built (data sampling is then reproducible too with nnUNet_n_proc_DA=0)
    seed: int = -1
    # False skips nnU-Net's validation of the fold after training (benchmarks that predict a test set instead)
    final_validation: bool = True

    def __post_init__(self) -> None:
        checks = {
            "num_passes": self.num_passes >= 1,
            "k": 0.0 < self.k <= 1.0,
            "alpha": self.alpha >= 0,
            "beta": self.beta >= 0,
            "weight_ce": self.weight_ce >= 0,
            "weight_dice": self.weight_dice >= 0,
            "lambda_max": self.lambda_max >= 0,
            "rampup_fraction": 0.0 <= self.rampup_fraction <= 1.0,
            "ema_decay": 0.0 <= self.ema_decay < 1.0,
            "noise_std": self.noise_std >= 0,
            "noise_clip": self.noise_clip >= 0,
            "dropout_p": 0.0 <= self.dropout_p < 1.0,
            "dropout_placement": self.dropout_placement in DROPOUT_PLACEMENTS,
            "hq_share": 0.0 < self.hq_share <= 1.0,
            "selection_mode": self.selection_mode in SELECTION_MODES,
            "selection_window": self.selection_window >= 1,
            "teacher_chunk": self.teacher_chunk >= 0,
            "num_epochs": self.num_epochs >= 0,
            "iterations_per_epoch": self.iterations_per_epoch >= 0,
            "val_iterations_per_epoch": self.val_iterations_per_epoch >= 0,
            "seed": self.seed >= -1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ALCConfigError(
                "Invalid ALC setting(s): " + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
                + f". Allowed: k in (0, 1], hq_share in (0, 1], ema_decay in [0, 1), dropout_p in [0, 1), "
                f"dropout_placement in {DROPOUT_PLACEMENTS}, selection_mode in {SELECTION_MODES}, "
                f"num_passes and selection_window >= 1, seed >= -1 (-1: unseeded), the rest >= 0."
            )

    @classmethod
    def from_sources(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ALCConfig":
        """Defaults, then ``overrides`` (a trainer variant's own defaults), then the JSON file, then env vars."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = dict(overrides)
        config_file = environ.get(CONFIG_FILE_ENV)
        if config_file:
            values.update(_read_json(config_file))
        for field in dataclasses.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            if name in environ:
                values[field.name] = _parse(field, environ[name], name)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            known = [f.name for f in dataclasses.fields(cls)]
            raise ALCConfigError(f"Unknown ALC setting(s) {sorted(unknown)}; known: {known}")
        return cls(**{name: _parse(_field(cls, name), value, name) for name, value in values.items()})

    def batch_split(self, batch_size: int) -> tuple[int, int]:
        """(B_h, B_n) for a global batch: at least one HQ sample, and one LQ sample whenever hq_share < 1."""
        if self.hq_share >= 1.0:
            return batch_size, 0
        if batch_size < 2:
            raise ALCConfigError(f"ALC needs a batch size of at least 2 (one HQ and one LQ sample), got {batch_size}.")
        num_hq = min(batch_size - 1, max(1, round(self.hq_share * batch_size)))
        return num_hq, batch_size - num_hq

    def uses_batch_selection(self, num_lq: int) -> bool:
        """Per-batch top-k (paper) or the windowed rank (docs/method.md, for few LQ samples per batch)."""
        if self.selection_mode == "auto":
            return num_lq >= 4
        return self.selection_mode == "batch"

    def rampup_length(self, total_iterations: int) -> float:
        """T of lambda(t), in iterations."""
        return math.ceil(self.rampup_fraction * total_iterations)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def method_settings(self) -> dict[str, Any]:
        """The settings that define what is trained: all but the :data:`RUN_SETTINGS`."""
        return {k: v for k, v in self.as_dict().items() if k not in RUN_SETTINGS}

    def method_differences(self, saved: Mapping[str, Any]) -> list[str]:
        """``name: saved -> now`` for each method setting that differs from ``saved`` (a checkpoint's settings)."""
        missing = object()
        return [f"{name}: {saved.get(name, '<not saved>')!r} -> {value!r}"
                for name, value in self.method_settings().items() if saved.get(name, missing) != value]


def _field(cls, name: str) -> dataclasses.Field:
    for field in dataclasses.fields(cls):
        if field.name == name:
            return field
    raise ALCConfigError(f"Unknown ALC setting {name!r}")


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _parse(field: dataclasses.Field, value: Any, source: str) -> Any:
    kind = type(field.default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool:
        if str(value).strip().lower() not in _BOOLEANS:
            raise ALCConfigError(f"{source}={value!r} is not a valid bool (use one of {', '.join(_BOOLEANS)})")
        return _BOOLEANS[str(value).strip().lower()]
    try:
        if kind is int:
            as_float = float(value)
            if not as_float.is_integer():
                raise ValueError
            return int(as_float)
        if kind is float and "/" in str(value):  # "1/6": exactly the share a checkpoint saved as 1 / 6
            return float(Fraction(str(value).strip()))
        return kind(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ALCConfigError(f"{source}={value!r} is not a valid {kind.__name__}") from None


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ALCConfigError(f"Cannot read the ALC config file {path} ({CONFIG_FILE_ENV}): {e}") from None
    if not isinstance(data, dict):
        raise ALCConfigError(f"The ALC config file {path} must hold a JSON object of setting names to values")
    return data
