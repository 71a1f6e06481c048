"""A pytest plugin (loaded by conftest.py): a test that trains or plans must carry ``@pytest.mark.slow``.

The quick loop (``pytest -m "not slow"``, docs/extending.md) stays quick only if every test that runs a
training or nnU-Net's planning is marked. This plugin watches each test, its set-up included (where the
shared trainings of conftest.py are built), for

- a process started from one of TRAINING_COMMANDS or TRAINING_SCRIPTS that exits with 0 (a process that
  fails, e.g. a benchmark refusing a bad argument, did no training; ``-h`` / ``--help`` never counts), and
- an in-process call of ``nnUNetTrainer.run_training``,

and fails the test at teardown, naming the command, when the test lacks the slow marker.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# console commands that train, plan or preprocess (nnU-Net's own and the demo, which does all three)
TRAINING_COMMANDS = frozenset({"nnUNetv2_train", "nnUNetv2_plan_and_preprocess", "nnUNetv2_extract_fingerprint",
                               "nnUNetv2_plan_experiment", "nnUNetv2_preprocess", "nnUNetv2_alc_demo"})
# Python scripts that train (benchmarks/bench_*.py and the DDP test's worker), matched by file name
TRAINING_SCRIPTS = ("bench_*.py", "ddp_worker.py")
HELP = frozenset({"-h", "--help"})

_OriginalPopen = subprocess.Popen
_launched: list[tuple[str, subprocess.Popen]] = []  # (command line, process) of the running test
_in_process: list[str] = []


def training_command(args) -> str | None:
    """The command line if ``args`` (as given to Popen) starts a training, planning or preprocessing job."""
    argv = [args] if isinstance(args, (str, Path)) else [str(a) for a in args]
    if HELP & set(argv[1:]):
        return None
    names = [Path(a).name for a in argv[:2]]
    if names[0] in TRAINING_COMMANDS or any(Path(n).match(p) for n in names for p in TRAINING_SCRIPTS):
        return " ".join(argv)
    return None


class _WatchedPopen(_OriginalPopen):
    def __init__(self, args, *rest, **kwargs):
        super().__init__(args, *rest, **kwargs)
        command = training_command(args)
        if command is not None:
            _launched.append((command, self))


def pytest_configure(config):
    subprocess.Popen = _WatchedPopen
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    run_training = nnUNetTrainer.run_training

    def watched_run_training(self, *args, **kwargs):
        _in_process.append(f"{type(self).__name__}.run_training()")
        return run_training(self, *args, **kwargs)

    nnUNetTrainer.run_training = watched_run_training


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _launched.clear()
    _in_process.clear()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    trained = list(_in_process)
    for command, process in _launched:
        code = process.poll()
        if code is None or code == 0:  # still running or finished its job
            trained.append(command)
    _launched.clear()
    _in_process.clear()
    if trained and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} trains or plans but lacks @pytest.mark.slow (the quick loop -m \"not slow\" "
                    f"must not train; docs/extending.md): {trained[0]}", pytrace=False)
