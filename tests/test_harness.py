"""benchmarks/harness.py without training: the plan stamp that lets a benchmark skip planning again."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from harness import Bench, Budget  # benchmarks/, on sys.path through conftest.py

NAME = "Dataset999_Stamp"
BUDGET = Budget("2d", 1, 1, 0, "cpu", True, 4, False)


@pytest.fixture
def folders(tmp_path, monkeypatch):
    for sub in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"nnUNet_{sub}", str(tmp_path / sub))
    raw, pre = tmp_path / "raw" / NAME, tmp_path / "preprocessed" / NAME
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "imagesTr" / "a_0000.nii.gz").write_bytes(b"image")
    (raw / "dataset.json").write_text("{}")
    pre.mkdir(parents=True)
    (pre / "nnUNetPlans.json").write_text('{"plans": 1}')
    return raw, pre


def stamp(budget: Budget = BUDGET) -> dict:
    bench = Bench(budget, Path(os.environ["nnUNet_results"]), reuse=True)
    return bench._plan_stamp(NAME, Path(os.environ["nnUNet_preprocessed"]) / NAME / "nnUNetPlans.json")


def test_stamp_is_stable_while_nothing_changes(folders):
    assert stamp() == stamp()


@pytest.mark.parametrize("change", ["raw file rewritten", "raw file added", "plans edited", "budget"])
def test_stamp_changes_with_raw_data_plans_or_budget(folders, change):
    raw, pre = folders
    before = stamp()
    if change == "raw file rewritten":
        image = raw / "imagesTr" / "a_0000.nii.gz"
        image.write_bytes(b"other image")
    elif change == "raw file added":
        (raw / "imagesTr" / "b_0000.nii.gz").write_bytes(b"image")
    elif change == "plans edited":
        (pre / "nnUNetPlans.json").write_text('{"plans": 2}')
    assert stamp(replace(BUDGET, batch_size=8) if change == "budget" else BUDGET) != before


@pytest.mark.parametrize("state, message", [
    ("absent", "has no configuration '2d_cpu': nnU-Net's planner makes only"),
    ("not preprocessed", "is missing or empty: run nnUNetv2_preprocess -d <id> -c 2d_cpu"),
    ("tiny network", "--tiny-network and --batch-size apply to planned configurations"),
    ("prepared", None),
    ("inherited", None),  # nnU-Net's own way to add a configuration: its data is its parent's
])
def test_an_added_configuration_is_used_as_prepared_never_planned(folders, state, message):
    _, pre = folders
    if state != "absent":
        plans = {"configurations": {"2d_cpu": {"data_identifier": "nnUNetPlans_2d_cpu"}}}
        if state == "inherited":
            plans = {"configurations": {"base": {"data_identifier": "nnUNetPlans_2d_cpu"},
                                        "2d_cpu": {"inherits_from": "base", "batch_size": 2}}}
        (pre / "nnUNetPlans.json").write_text(json.dumps(plans))
    if state in ("prepared", "tiny network", "inherited"):
        (pre / "nnUNetPlans_2d_cpu").mkdir()
        (pre / "nnUNetPlans_2d_cpu" / "a.pkl").write_bytes(b"")
    budget = replace(BUDGET, configuration="2d_cpu", tiny_network=state == "tiny network", batch_size=None)
    bench = Bench(budget, Path(os.environ["nnUNet_results"]), reuse=True)
    if message is None:
        bench.plan("999", NAME)  # no planning command runs: it would fail on these folders
        assert not (pre / "alc_bench_plan.json").exists()
    else:
        with pytest.raises(SystemExit, match=message):
            bench.plan("999", NAME)
