"""The trainer registry: every trainer module is registered, named for the tables and placed in their order."""

import subprocess
import sys
from pathlib import Path

import pytest

from nnunetv2_alc.trainer_registry import (BENCHMARK_TRAINERS, DIAGNOSTIC_TRAINERS, TrainerRegistryError, display_name,
                                           scan_trainers, trainer_classes, trainer_module_names)

TRAINER_FILES = Path(__file__).resolve().parents[1] / "nnunetv2_alc" / "trainers"
# the names the tables, logs and file names have used so far: they must not change
NAMES = {
    "nnUNetTrainerHSup": "H-Sup",
    "nnUNetTrainerHLSup": "HL-Sup",
    "nnUNetTrainerStock": "HL-Sup (stock nnU-Net)",
    "nnUNetTrainerMeanTeacher": "Mean Teacher",
    "nnUNetTrainerALC_noLS": "ALC w/o LS",
    "nnUNetTrainerALC_noLR": "ALC w/o LR",
    "nnUNetTrainerALC": "ALC (ours)",
}


def test_every_trainer_file_is_registered_and_has_a_place_in_the_order():
    files = {path.stem for path in TRAINER_FILES.glob("nnUNetTrainer*.py")}
    assert set(trainer_module_names()) == files
    assert set(trainer_classes()) == files
    registered = BENCHMARK_TRAINERS + DIAGNOSTIC_TRAINERS
    assert len(set(registered)) == len(registered), "BENCHMARK_TRAINERS and DIAGNOSTIC_TRAINERS name a trainer twice"
    missing, unknown = files - set(registered), set(registered) - files
    assert not missing, f"give {sorted(missing)} a place in trainer_registry.BENCHMARK_TRAINERS or DIAGNOSTIC_TRAINERS"
    assert not unknown, f"trainer_registry names {sorted(unknown)}, which have no module"


def test_every_class_has_its_own_display_name_and_no_two_share_one():
    for name, cls in trainer_classes().items():
        assert cls.__name__ == name and cls.__module__ == f"nnunetv2_alc.trainers.{name}"
        own = cls.__dict__.get("display_name")
        assert isinstance(own, str) and own.strip(), f"{name} sets no display_name of its own"
        assert display_name(name) == own
    names = [display_name(t) for t in BENCHMARK_TRAINERS + DIAGNOSTIC_TRAINERS]
    assert len(set(names)) == len(names), f"two trainers share a display name: {names}"


def test_display_names_and_order_read_as_before():
    assert BENCHMARK_TRAINERS == tuple(NAMES)
    assert {t: display_name(t) for t in BENCHMARK_TRAINERS} == NAMES


@pytest.mark.parametrize("name", ["nnUNetTrainer", "nnUNetTrainerSomethingElse", ""])
def test_unknown_trainer_is_named_by_itself(name):
    assert display_name(name) == name


def write_package(root: Path, package: str, modules: dict[str, str]) -> None:
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(source)


@pytest.mark.parametrize("package, source, message", [
    ("alc_registry_inherited", "class Base:\n    display_name = 'Base'\n\n\nclass nnUNetTrainerX(Base):\n    pass\n",
     "display_name in its own class body"),
    ("alc_registry_empty", "class nnUNetTrainerX:\n    display_name = ' '\n", "non-empty display_name"),
    ("alc_registry_misnamed", "class nnUNetTrainerY:\n    display_name = 'Y'\n", "defines no class nnUNetTrainerX"),
])
def test_a_trainer_module_breaking_the_rules_is_named(tmp_path, monkeypatch, package, source, message):
    write_package(tmp_path, package, {"nnUNetTrainerX": source, "helpers": "VALUE = 1\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TrainerRegistryError, match=f"{package}.nnUNetTrainerX") as error:
        scan_trainers(package)
    assert message in str(error.value)


def test_only_trainer_modules_are_scanned(tmp_path, monkeypatch):
    write_package(tmp_path, "alc_registry_good", {"nnUNetTrainerX": "class nnUNetTrainerX:\n    display_name = 'X'\n",
                                                  "helpers": "raise RuntimeError('not a trainer module')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert trainer_module_names("alc_registry_good") == ("nnUNetTrainerX",)
    assert list(scan_trainers("alc_registry_good")) == ["nnUNetTrainerX"]


def test_importing_the_registry_or_the_package_imports_no_trainer():
    code = ("import sys, nnunetv2_alc, nnunetv2_alc.trainer_registry as r\n"
            "r.trainer_module_names(); r.BENCHMARK_TRAINERS\n"
            "print(sorted(m for m in sys.modules if m.startswith('nnunetv2_alc.trainers.') or m == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
