"""The demo's work folder: its layout, the overwrite rule and the environment of its subprocesses."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from nnunetv2_alc.input_errors import InputDataError


@dataclass(frozen=True)
class Workspace:
    """Every path the demo writes, below one root folder."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "nnUNet_raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "nnUNet_preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "nnUNet_results"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    @property
    def report(self) -> Path:
        return self.root / "label_report"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def folders(self) -> tuple[Path, ...]:
        return (self.raw, self.preprocessed, self.results, self.predictions, self.evaluation, self.report, self.logs)

    def prepare(self, overwrite: bool) -> None:
        """Create the folders. A non-empty root is an error unless ``overwrite``, which deletes the demo's own
        folders in it (and nothing else)."""
        if self.root.exists() and not self.root.is_dir():
            raise InputDataError(f"{self.root} exists and is not a folder")
        if self.root.is_dir() and any(self.root.iterdir()):
            if not overwrite:
                raise InputDataError(f"work folder {self.root} exists and is not empty; choose another with -o "
                                     "or pass --overwrite to replace the demo's folders in it")
            for folder in self.folders():
                if folder.is_dir():
                    shutil.rmtree(folder)
        for folder in self.folders():
            folder.mkdir(parents=True)

    def environment(self, cpu: bool) -> dict[str, str]:
        """The caller's environment with nnU-Net's folders in this work folder, for the demo's subprocesses.

        The other ``nnUNet_*`` variables are dropped (except ``nnUNet_extTrainer``), so a user's setting
        cannot send data elsewhere; ``ALC_*`` settings are kept. ``torch.compile`` is off (short runs do not
        repay its start-up). On the CPU nnU-Net's worker count is the number of cores, and OpenMP threads
        sleep instead of spinning while they wait (``OMP_WAIT_POLICY=PASSIVE`` unless set): nnU-Net runs
        torch on every core, and spinning threads slow it down many times whenever anything else runs on
        the machine. The interpreter's script folder goes first on ``PATH`` so this installation's commands run.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_") or k == "nnUNet_extTrainer"}
        env.update(nnUNet_raw=str(self.raw), nnUNet_preprocessed=str(self.preprocessed),
                   nnUNet_results=str(self.results), nnUNet_compile="false",
                   PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]))
        if cpu:
            env["nnUNet_def_n_proc"] = str(os.cpu_count() or 1)
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return env
