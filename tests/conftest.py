"""Fixtures shared by the test modules (built once per session, see shared_runs.py) and the slow-marker guard."""

from __future__ import annotations

import sys

import pytest

from shared_runs import BENCHMARKS, Tiny3D, build_tiny3d, shared_folder

sys.path.insert(0, str(BENCHMARKS))  # the tests import the benchmark scripts' modules (harness, bench_evidence)

pytest_plugins = ["slow_guard", "pytester"]


@pytest.fixture(scope="session")
def tiny3d(tmp_path_factory, worker_id) -> Tiny3D:
    """The planned tiny 3D dataset and the ALC model trained on it (shared_runs.py); read-only."""
    return Tiny3D(shared_folder(tmp_path_factory, worker_id, "tiny3d", build_tiny3d))
