"""The training benchmarks refuse bad arguments with a message naming them, before any work.

The scripts run as ``__main__`` in this process (``runpy``), as ``python benchmarks/<script>`` runs them;
their end-to-end runs as subprocesses are in tests/test_benchmarks.py.
"""

from __future__ import annotations

import runpy
import sys

import pytest

from shared_runs import BENCHMARKS


@pytest.mark.parametrize("script, args, message", [
    ("bench_accuracy.py", ["--dataset", "961"], "--dataset takes NAME=ID"),
    ("bench_accuracy.py", ["--dataset", "a=1", "--epochs", "0"], "--epochs and --iterations must be >= 1"),
    ("bench_sensitivity.py", ["-d", "1", "--vary", "k=0.5,2"], "--vary k=0.5,2: Invalid ALC setting"),
    ("bench_sensitivity.py", ["-d", "1", "--vary", "kappa=1"], "Unknown ALC setting"),
])
def test_bad_arguments_are_named(tmp_path, monkeypatch, script, args, message):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    # SystemExit(text): Python prints the text to stderr and exits with 1
    assert isinstance(exit_info.value.code, str) and message in exit_info.value.code
    assert not any(tmp_path.iterdir())  # nothing written
