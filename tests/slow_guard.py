"""A pytest plugin (loaded by conftest.py): a test that trains or plans must carry ``@pytest.mark.slow``.

The quick loop (``pytest -m "not slow"``, docs/extending.md) stays quick only if every test that runs a
training or nnU-Net's planning is marked. This plugin watches each test, its set-up included (where the
shared trainings of conftest.py are built), for

- a process whose command line names one of TRAINING_COMMANDS or TRAINING_SCRIPTS and that exits with 0
  or is still running at teardown (a process that fails, e.g. a benchmark refusing a bad argument, did
  no training; ``-h`` / ``--help`` never counts), and
- an in-process call of ``nnUNetTrainer.run_training`` / ``on_train_start`` or of nnU-Net's planning API
  (fingerprint, plan, preprocess),

and fails the test at teardown, naming the command, when the test lacks the slow marker. A fixture during
whose set-up that happened counts as training from then on, so a test that reuses it after another test
built it fails too. (Under xdist a worker knows only the fixtures it built itself; the quick loop, in which
an unmarked test is the first to ask for a fixture, catches the rest.)
"""

from __future__ import annotations

import importlib
import shlex
import subprocess
from pathlib import Path

import pytest

# console commands that train, plan or preprocess (nnU-Net's own and the demo, which does all three)
TRAINING_COMMANDS = frozenset({"nnUNetv2_train", "nnUNetv2_plan_and_preprocess", "nnUNetv2_extract_fingerprint",
                               "nnUNetv2_plan_experiment", "nnUNetv2_preprocess", "nnUNetv2_alc_demo"})
# Python scripts that train (benchmarks/bench_*.py and the DDP test's worker), matched by file name
TRAINING_SCRIPTS = ("bench_*.py", "ddp_worker.py")
HELP = frozenset({"-h", "--help"})
IN_PROCESS = {  # module -> functions or "Class.method" that train or plan
    "nnunetv2.training.nnUNetTrainer.nnUNetTrainer": ("nnUNetTrainer.run_training", "nnUNetTrainer.on_train_start"),
    "nnunetv2.experiment_planning.plan_and_preprocess_api": ("extract_fingerprints", "plan_experiments",
                                                             "preprocess"),
}

_OriginalPopen = subprocess.Popen
_launched: list[tuple[str, subprocess.Popen]] = []  # (command line, process) since the test's set-up began
_in_process: list[str] = []
_training_fixtures: dict[tuple[str, str], str] = {}  # (where defined, fixture name) -> what its set-up ran
_restore: list[tuple[object, str, object]] = []


def training_command(args) -> str | None:
    """The command line if ``args`` (as given to Popen) starts a training, planning or preprocessing job."""
    argv = shlex.split(str(args)) if isinstance(args, (str, Path)) else [str(a) for a in args]
    if HELP & set(argv[1:]):
        return None
    names = [Path(a).name for a in argv]
    if any(n in TRAINING_COMMANDS or any(Path(n).match(p) for p in TRAINING_SCRIPTS) for n in names):
        return " ".join(argv)
    return None


class _WatchedPopen(_OriginalPopen):
    def __init__(self, args, *rest, **kwargs):
        super().__init__(args, *rest, **kwargs)
        command = training_command(args)
        if command is not None:
            _launched.append((command, self))


def _watch(owner, attribute: str, label: str) -> None:
    original = getattr(owner, attribute)

    def watched(*args, **kwargs):
        _in_process.append(f"{label}()")
        return original(*args, **kwargs)

    _restore.append((owner, attribute, original))
    setattr(owner, attribute, watched)


def _trained() -> list[str]:
    """What the current test (set-up included) ran that trains or plans, so far."""
    done = [command for command, process in _launched if process.poll() in (None, 0)]
    return list(_in_process) + done


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the xdist controller runs no test
    _restore.append((subprocess, "Popen", _OriginalPopen))
    subprocess.Popen = _WatchedPopen
    for module_name, names in IN_PROCESS.items():
        module = importlib.import_module(module_name)
        for name in names:
            owner, _, attribute = name.rpartition(".")
            _watch(getattr(module, owner) if owner else module, attribute, name)


def pytest_unconfigure(config):
    while _restore:
        owner, attribute, original = _restore.pop()
        setattr(owner, attribute, original)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _launched.clear()
    _in_process.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    before = len(_trained())
    yield
    trained = _trained()
    if len(trained) > before:
        _training_fixtures.setdefault((fixturedef.baseid, fixturedef.argname), trained[before])


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    used = {name: item._fixtureinfo.name2fixturedefs[name][-1] for name in item.fixturenames
            if item._fixtureinfo.name2fixturedefs.get(name)}  # the definition the test got (a module may override)
    trained = _trained() + [f"fixture {name!r}: {_training_fixtures[key]}" for name, fixture in used.items()
                            if (key := (fixture.baseid, name)) in _training_fixtures]
    _launched.clear()
    _in_process.clear()
    if trained and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} trains or plans but lacks @pytest.mark.slow (the quick loop -m \"not slow\" "
                    f"must not train; docs/extending.md): {trained[0]}", pytrace=False)
