"""``nnUNetv2_alc_demo``: the whole ALC job on a synthetic dataset in one command (docs/demo_and_report.md).

:mod:`.pipeline` holds the steps (:func:`run_demo`), :mod:`nnunetv2_alc.jobs` runs nnU-Net's commands as subprocesses
with a progress line, :mod:`.workspace` lays out the work folder and the subprocesses' environment.
"""

from .cli import main
from .pipeline import DemoSettings, run_demo

__all__ = ["DemoSettings", "main", "run_demo"]
