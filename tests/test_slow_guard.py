"""The slow-marker guard (slow_guard.py): a test that trains or plans without ``@pytest.mark.slow`` fails.

An inner pytest run (pytester) with the guard loaded runs tests that start stand-ins for nnU-Net's commands:
an executable named ``nnUNetv2_train`` and a script named ``bench_*.py``, both exiting with the code they
are given (the first after sleeping as long as it is told), so that no real training is needed to show
which tests the guard fails.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_unmarked_training_fails_and_marked_help_or_refused_runs_pass(pytester, monkeypatch):
    train = pytester.path / "bin" / "nnUNetv2_train"
    train.parent.mkdir()
    train.write_text('#!/bin/sh\nsleep "${SLEEP:-0}"\nexit "${EXIT_CODE:-0}"\n')
    train.chmod(train.stat().st_mode | stat.S_IXUSR)
    bench = pytester.path / "bench_stand_in.py"
    bench.write_text("import sys\nsys.exit(int(sys.argv[1]))\n")
    pytester.makeini("[pytest]\nmarkers =\n    slow: trains or plans\n")
    pytester.makepyfile(test_inner=f"""
        import os, subprocess, sys
        import pytest
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

        TRAIN, BENCH = {str(train)!r}, {str(bench)!r}

        def test_unmarked_trains():
            subprocess.run([TRAIN, "1", "2d", "0"], check=True)

        @pytest.mark.slow
        def test_marked_trains():
            subprocess.run([TRAIN, "1", "2d", "0"], check=True)

        def test_unmarked_help():
            subprocess.run([TRAIN, "-h"], check=True)

        def test_unmarked_refused_training():
            assert subprocess.run([TRAIN, "1"], env=dict(os.environ, EXIT_CODE="2")).returncode == 2

        def test_unmarked_benchmark_refusing_bad_input():
            assert subprocess.run([sys.executable, BENCH, "2"]).returncode == 2

        def test_unmarked_benchmark_run():
            subprocess.run([sys.executable, BENCH, "0"], check=True)

        def test_unmarked_in_process_training():
            with pytest.raises(AttributeError):  # reaches the guard, then nnU-Net's code on a non-trainer
                nnUNetTrainer.run_training(object())

        def test_unmarked_training_still_running_at_teardown():
            subprocess.Popen([TRAIN, "1"], env=dict(os.environ, SLEEP="2"))

        @pytest.fixture(scope="module")
        def trained_model():
            subprocess.run([TRAIN, "1", "3d_fullres", "0"], check=True)

        @pytest.mark.slow
        def test_marked_user_builds_the_fixture(trained_model):
            pass

        def test_unmarked_user_of_the_built_fixture(trained_model):
            pass
    """)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess("-p", "slow_guard", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10, errors=5)
    output = result.stdout.str()
    for name in ("test_unmarked_trains", "test_unmarked_benchmark_run", "test_unmarked_in_process_training",
                 "test_unmarked_training_still_running_at_teardown", "test_unmarked_user_of_the_built_fixture"):
        assert f"test_inner.py::{name} trains or plans but lacks @pytest.mark.slow" in output, name
    for name in ("test_marked_trains", "test_unmarked_help", "test_unmarked_refused_training",
                 "test_unmarked_benchmark_refusing_bad_input", "test_marked_user_builds_the_fixture"):
        assert f"test_inner.py::{name} trains" not in output, name
    assert "nnUNetTrainer.run_training()" in output and f"{train} 1 2d 0" in output
    assert f"fixture 'trained_model': {train} 1 3d_fullres 0" in output


def test_guard_is_loaded_in_this_run(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("slow_guard")
