"""What several slow test modules read, built once per test session (conftest.py makes these fixtures).

``tiny3d``: the tiny synthetic 3D dataset, planned and preprocessed by nnU-Net's own CLI for 3d_fullres
and 2d (network shrunk to features 4..32), and one ALC model trained on it through ``nnUNetv2_train``
(3d_fullres, fold 0, 2 epochs of 3 iterations, seed 0, no final validation). test_end_to_end.py,
test_report.py, test_ddp.py and test_dropout_resenc.py read it. Nothing writes into it after the build:
a test that trains on it either trains what the build already cached (3d_fullres, fold 0: split and
clean-label cache are there) or works on a copy (:func:`copy_tree`) in its own folder, so every test sees
the folders as built, in any order and on any xdist worker.

Under pytest-xdist each worker has its own session; the folders are then built by the first worker that
asks, under a file lock, in the temporary folder the workers share, and read by the others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import traceback
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from nnunetv2_alc.jobs import planning_env
from nnunetv2_alc.tiny_plans import shrink_network

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"  # the scripts; conftest.py puts it on sys.path
TINY3D_ID = 931
TINY3D = f"Dataset{TINY3D_ID}_SyntheticTiny3D"
ALC = "nnUNetTrainerALC"
ITERATIONS = 3  # per epoch, in the shared ALC training
EPOCHS = 2
CONFIGURATIONS = ("3d_fullres", "2d")


def run(cmd: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command; fail with the end of its output when it exits non-zero."""
    result = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)
    assert result.returncode == 0, (f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-3000:]}")
    return result


def make_nnunet_folders(root: Path) -> None:
    for sub in ("raw", "preprocessed", "results"):
        (root / sub).mkdir(parents=True)


def clean_env(root: Path) -> dict:
    """This process's environment without ALC_* / nnUNet* settings, nnU-Net's folders below ``root``, 1 thread.

    OpenMP threads sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``, as the demo sets it): with two
    xdist workers, spinning threads of one training would slow down the other worker's processes.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALC_", "nnUNet"))}
    env.update(nnUNet_raw=str(root / "raw"), nnUNet_preprocessed=str(root / "preprocessed"),
               nnUNet_results=str(root / "results"), nnUNet_def_n_proc="1", nnUNet_compile="false",
               OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    return env


def training_env(root: Path) -> dict:
    """:func:`clean_env` plus the short schedule of the shared training, data augmentation in-process."""
    return {**clean_env(root), "nnUNet_n_proc_DA": "0", "ALC_NUM_EPOCHS": str(EPOCHS),
            "ALC_ITERATIONS_PER_EPOCH": str(ITERATIONS), "ALC_VAL_ITERATIONS_PER_EPOCH": "1"}


def train_cmd(trainer: str, configuration: str = "3d_fullres", *extra: str) -> list[str]:
    return ["nnUNetv2_train", str(TINY3D_ID), configuration, "0", "-tr", trainer, "-device", "cpu", *extra]


@dataclass(frozen=True)
class Tiny3D:
    """The shared folders: ``root`` holds nnU-Net's raw/, preprocessed/ and results/ (read them, don't write)."""

    root: Path

    @property
    def env(self) -> dict:
        """:func:`clean_env` of the shared folders."""
        return clean_env(self.root)

    @property
    def training_env(self) -> dict:
        """:func:`training_env` of the shared folders: the shared training's schedule."""
        return training_env(self.root)

    @property
    def raw(self) -> Path:
        return self.root / "raw" / TINY3D

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed" / TINY3D

    def copy_dataset(self, root: Path) -> None:
        """Copy the raw and the preprocessed dataset into nnU-Net's raw/ and preprocessed/ below ``root``."""
        copy_tree(self.raw, root / "raw" / TINY3D)
        copy_tree(self.preprocessed, root / "preprocessed" / TINY3D)

    @property
    def alc_model(self) -> Path:
        """The shared ALC model's folder (3d_fullres; fold_0 inside)."""
        return self.root / "results" / TINY3D / f"{ALC}__nnUNetPlans__3d_fullres"


def build_tiny3d(root: Path) -> None:
    make_nnunet_folders(root)
    env = training_env(root)
    run(["nnUNetv2_alc_synthetic", "-d", str(TINY3D_ID), "--kind", "tiny3d", "--seed", "3"], env)
    run(["nnUNetv2_plan_and_preprocess", "-d", str(TINY3D_ID), "-c", *CONFIGURATIONS, "-np", "1", "1", "-npfp", "1",
         "--verify_dataset_integrity"], planning_env(env))  # nnU-Net's 8 fingerprint workers would cost 50 s of CPU
    for configuration in CONFIGURATIONS:
        shrink_network(root / "preprocessed" / TINY3D / "nnUNetPlans.json", configuration)
    # writes splits_final.json and the 3d_fullres clean-label cache of fold 0, which later trainings only read;
    # final validation off: test_end_to_end.py runs nnUNetv2_train --val on a copy of the model
    run(train_cmd(ALC), {**env, "ALC_SEED": "0", "ALC_FINAL_VALIDATION": "0"})


def shared_folder(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """``name`` below the session's (or the xdist workers' common) temporary folder, built once by ``build``.

    ``worker_id`` is pytest-xdist's fixture ("master" without xdist). A failed build leaves
    ``<name>.failed`` with its traceback, so that another worker fails at once instead of building again.
    """
    base = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        base = base.parent  # shared by every worker of this run
    folder, failed = base / name, base / f"{name}.failed"
    with FileLock(str(folder) + ".lock"):
        if failed.is_file():
            raise RuntimeError(f"building {folder} failed on another xdist worker:\n{failed.read_text()}")
        done = folder / ".built"
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            try:
                build(folder)
            except BaseException:
                failed.write_text(traceback.format_exc())
                raise
            done.touch()
    return folder


def copy_tree(source: Path, target: Path) -> Path:
    """A copy of ``source`` at ``target`` (parents made) for a test that changes it."""
    shutil.copytree(source, target)
    return target
