"""The training benchmarks (accuracy, label correction, sensitivity, dropout, evidence, cost, step parts)
run end to end on a tiny 2D dataset.

The scripts drive nnU-Net's real CLI; here with 1 epoch of 2 iterations and a tiny network, so only
the plumbing and the reports are checked, not the numbers. The dataset is planned once, by the
benchmarks' own ``harness.Bench.plan`` with the tests' budget (``tiny2d``); each test trains on a copy of
the preprocessed dataset (its trainings cache clean labels there) into a results folder of its own, so
the tests may run in any order, on any xdist worker. The three that read the accuracy benchmark's models
run on one worker (xdist group).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import harness  # benchmarks/, on sys.path through conftest.py
import pytest
import torch

from shared_runs import BENCHMARKS, clean_env, copy_tree, make_nnunet_folders, run, shared_folder

from nnunetv2_alc.progress import DIAGNOSTIC_KEYS

pytestmark = pytest.mark.slow

DATASET_ID = 941
DATASET = f"Dataset{DATASET_ID}_SyntheticTiny2D"
VALIDATION_ID = DATASET_ID + 1  # another draw of tiny2d, for bench_dropout.py
BUDGET = ["-c", "2d", "--device", "cpu", "--tiny-network", "--batch-size", "4", "--epochs", "1", "--iterations", "2",
          "--disable-tta"]
ACCURACY = pytest.mark.xdist_group("bench_accuracy")  # the tests that read the accuracy benchmark's models


def bench(script: str, args: list[str], env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], env=env, capture_output=True,
                            encoding="utf-8", errors="replace", timeout=900)
    if check:
        assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def build_tiny2d(root: Path) -> None:
    """tiny2d (seed 1) and its validation draw (seed 2), the first planned as every benchmark plans."""
    make_nnunet_folders(root)
    env = clean_env(root)
    for dataset_id, seed in ((DATASET_ID, 1), (VALIDATION_ID, 2)):
        run(["nnUNetv2_alc_synthetic", "-d", str(dataset_id), "--kind", "tiny2d", "--seed", str(seed)], env)
    parser = argparse.ArgumentParser()
    harness.add_budget_arguments(parser)
    with mock.patch.dict(os.environ, env, clear=True):  # Bench takes nnU-Net's folders from the environment
        harness.Bench(harness.budget_from_args(parser.parse_args(BUDGET)), root / "planning", reuse=False).plan(
            str(DATASET_ID), DATASET)


@pytest.fixture(scope="module")
def tiny2d(tmp_path_factory, worker_id) -> Path:
    """The folder of the planned tiny2d dataset (read-only: tests work on copies, see :func:`own_folders`)."""
    return shared_folder(tmp_path_factory, worker_id, "tiny2d", build_tiny2d)


def own_folders(tiny2d: Path, root: Path) -> tuple[Path, dict]:
    """``root`` with a copy of the planned dataset and an empty results folder, and the environment of them."""
    copy_tree(tiny2d / "preprocessed" / DATASET, root / "preprocessed" / DATASET)
    (root / "results").mkdir()
    return root, {**clean_env(tiny2d), "nnUNet_preprocessed": str(root / "preprocessed"),
                  "nnUNet_results": str(root / "results")}


@pytest.fixture
def workspace(tiny2d, tmp_path) -> tuple[Path, dict]:
    return own_folders(tiny2d, tmp_path)


@pytest.fixture(scope="module")
def accuracy(tiny2d, tmp_path_factory) -> tuple[Path, dict]:
    """bench_accuracy.py with H-Sup, stock nnU-Net and ALC; its results and the environment that reads them."""
    root, env = own_folders(tiny2d, tmp_path_factory.mktemp("accuracy"))
    bench("bench_accuracy.py", ["--dataset", f"10%={DATASET_ID}", "--trainers", "nnUNetTrainerHSup",
                                "nnUNetTrainerStock", "nnUNetTrainerALC", *BUDGET, "--out", str(root / "accuracy")],
          env)
    return root, env


@ACCURACY
def test_accuracy_report_tables_every_trainer_on_the_test_cases(accuracy):
    root, _ = accuracy
    report = json.loads((root / "accuracy" / "accuracy.json").read_text())
    entry = report["settings"]["10%"]
    assert entry["dataset"] == DATASET and entry["dataset_seed"] == 1
    assert list(entry["evaluation"]["methods"]) == ["H-Sup", "HL-Sup (stock nnU-Net)", "ALC (ours)"]
    assert len(entry["evaluation"]["cases"]) == 2  # tiny2d's test cases, against their clean labels
    assert report["budget"]["seed"] == 0 and report["budget"]["tta"] is False
    assert set(entry["runs"]["nnUNetTrainerALC"]["seconds"]) == {"train", "predict"}
    markdown = (root / "accuracy" / "accuracy.md").read_text()
    assert "| H-Sup |" in markdown and "| ALC (ours) |" in markdown and "10% HQ" in markdown
    assert "Paired over the 2 test cases" in markdown and "| HL-Sup (stock nnU-Net) |" in markdown
    assert "Foreground on organ-free test slices" in markdown and "| ALC (ours) |" in markdown
    background = entry["background"]["ALC (ours)"]
    assert background["organ_free_slices"] > 0 and 0 <= background["rate"] <= 1 and background["volume_ratio"] >= 0
    model = Path(entry["runs"]["nnUNetTrainerALC"]["model"])
    log = "".join(p.read_text() for p in model.glob("training_log_*.txt"))
    assert "Seeded Python, NumPy and torch with 0" in log and "Final validation skipped" in log
    assert not (model / "validation").exists()


@ACCURACY
def test_stock_reference_is_nnunet_on_the_same_budget(accuracy):
    root, _ = accuracy
    folder = root / "results" / DATASET / "nnUNetTrainerStock__nnUNetPlans__2d" / "fold_all"
    checkpoint = torch.load(folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["current_epoch"] == 1 and "alc" not in checkpoint  # 1 epoch, nnU-Net's own checkpoint
    log = "".join(p.read_text() for p in folder.glob("training_log_*.txt"))
    assert "Seeded Python, NumPy and torch with 0" in log and "Final validation skipped" in log
    assert "ALC: L_hs" not in log and "Batch composition" not in log


@ACCURACY
def test_label_correction_reads_the_alc_model(accuracy):
    root, env = accuracy
    out = root / "label_correction"
    result = bench("bench_label_correction.py", ["--dataset", f"10%={DATASET_ID}", "-c", "2d", "--out", str(out)], env)
    assert "| 10% |" in result.stdout
    curves = json.loads((out / "label_correction.json").read_text())["settings"]["10%"]["curves"]
    assert set(curves) == {"noisy", "pseudo", "refined", *DIAGNOSTIC_KEYS} and all(len(v) == 1 for v in curves.values())
    assert 0 < curves["weight_entropy"][0] <= 1
    assert "Refinement diagnostics" in (out / "label_correction.md").read_text()
    assert 0 <= curves["noisy"][0] < 1  # tiny2d's LQ labels are corrupted
    assert (out / "label_correction.png").stat().st_size > 0
    missing = bench("bench_label_correction.py", ["--dataset", f"10%={DATASET_ID}", "-c", "2d", "--trainer",
                                                  "nnUNetTrainerALC_noLS", "--out", str(out)], env, check=False)
    assert missing.returncode != 0 and "checkpoint_final.pth does not exist" in missing.stderr


def test_sensitivity_trains_the_default_once_and_each_changed_value_and_resumes(workspace):
    root, env = workspace
    out = root / "sensitivity"
    args = ["-d", str(DATASET_ID), "--vary", "num_passes=2,8", *BUDGET, "--out", str(out)]
    result = bench("bench_sensitivity.py", args, env)
    assert "planned with this budget already" in result.stdout  # tiny2d: planned by Bench.plan (harness.PLAN_STAMP)
    report = json.loads((out / "sensitivity.json").read_text())
    assert list(report["variants"]) == ["default", "num_passes=2"]
    assert report["defaults"] == {"num_passes": 8}
    log = "".join(p.read_text() for p in (out / "work" / "models" / "num_passes=2").rglob("training_log_*.txt"))
    assert "EMA, 2 passes" in log
    markdown = (out / "sensitivity.md").read_text()
    assert "| num_passes = 2 |" in markdown and "| num_passes = 8 (default) |" in markdown
    shutil.rmtree(out / "work")  # a later session without the models: the finished variants are kept
    unlisted_default = [a.replace("num_passes=2,8", "num_passes=2") for a in args]
    again = bench("bench_sensitivity.py", unlisted_default + ["--reuse"], env)
    assert "num_passes=2: kept from" in again.stdout and "2 of 2 variants done" in again.stdout
    assert not (out / "work").exists()
    assert "| num_passes = 8 (default) |" in (out / "sensitivity.md").read_text()  # listed or not
    assert json.loads((out / "sensitivity.json").read_text())["variants"] == report["variants"]
    other = bench("bench_sensitivity.py", args + ["--reuse", "--seed", "1", "--max-minutes", "0"], env)
    assert "from another dataset, budget or ALC config" in other.stdout and "--max-minutes 0.0 reached" in other.stdout


def test_dropout_placements_are_compared_on_a_validation_dataset(workspace):
    root, env = workspace
    validation = VALIDATION_ID  # the seed-2 draw of tiny2d, in the shared raw folder
    out = root / "dropout"
    args = ["-d", str(DATASET_ID), "--validation", str(validation), "--trainers", "nnUNetTrainerALC",
            "--placements", "lineage", "--p", "0.5", *BUDGET, "--out", str(out)]  # one model: CI's time
    bench("bench_dropout.py", args, env)
    report = json.loads((out / "dropout.json").read_text())
    assert list(report["models"]) == ["ALC (ours) [lineage_p0.5]"]
    lineage = report["models"]["ALC (ours) [lineage_p0.5]"]
    assert lineage["settings"] == {"dropout_placement": "lineage", "dropout_p": 0.5}
    assert len(lineage["evaluation"]["cases"]) == 2 and set(lineage["diagnostics"]) >= set(DIAGNOSTIC_KEYS)
    log = "".join(p.read_text() for p in (out / "models" / "lineage_p0.5").rglob("training_log_*.txt"))
    assert "dropout: lineage p=0.5 at 2 points" in log
    predicted = sorted(p.name for p in (out / "predictions" / f"Dataset{validation}_SyntheticTiny2D"
                                        / "lineage_p0.5" / "nnUNetTrainerALC").glob("*.nii.gz"))
    labels = Path(env["nnUNet_raw"]) / f"Dataset{validation}_SyntheticTiny2D" / "labelsTs"
    assert predicted == sorted(p.name for p in labels.glob("*.nii.gz"))
    bench("bench_dropout.py", args + ["--reuse"], env)  # resumes: nothing left to train or predict
    resumed = json.loads((out / "dropout.json").read_text())["models"]
    assert all(model["run"]["seconds"] == {} for model in resumed.values())
    bad = bench("bench_dropout.py", ["-d", str(DATASET_ID), "--validation", str(validation), "--p", "0.1", *BUDGET,
                                     "--out", str(out)], env, check=False)
    assert bad.returncode != 0 and "--p takes one rate per placement" in bad.stderr


def test_evidence_grid_runs_resumes_and_tests_paired(workspace):
    root, env = workspace
    out = root / "evidence"
    # two trainings (CI's time); the ceiling and the budget check are planned like any run (test_bench_evidence.py)
    args = ["--dataset", f"10% HQ={DATASET_ID}", "--seeds", "0", "--trainers", "nnUNetTrainerHSup", "nnUNetTrainerALC",
            *BUDGET, "--out", str(out)]
    bench("bench_evidence.py", args, env)
    runs = sorted(p.relative_to(out / "runs").as_posix() for p in (out / "runs").rglob("*.json"))
    assert runs == ["10__HQ/seed0/nnUNetTrainerALC.json", "10__HQ/seed0/nnUNetTrainerHSup.json"]
    report = json.loads((out / "evidence.json").read_text())
    assert report["finished"] == report["planned"] == 2
    rows = report["summary"]["10% HQ"]
    assert list(rows) == ["H-Sup", "ALC (ours)"] and rows["H-Sup"]["seeds"] == [0]
    paired = rows["H-Sup"]["alc_minus"]
    assert paired["n"] == 2 and 0 <= paired["p"] <= 1  # 2 test cases x 1 seed, Wilcoxon signed-rank
    assert rows["ALC (ours)"]["alc_minus"] is None
    alc = json.loads((out / "runs" / "10__HQ" / "seed0" / "nnUNetTrainerALC.json").read_text())
    assert len(alc["curves"]["selection_oracle_agreement"]) == 1 and len(alc["per_case"]) == 2
    table = (out / "evidence.md").read_text()
    assert "clean-label ceiling not measured yet" in table and "| ALC - method |" in table
    assert "agreement with oracle" in table and "| ALC (ours) |" in table.split("organ-free slices marked")[1]
    assert set(alc["background"]["volume_ratios"]) == set(alc["per_case"])
    assert (out / "dice_by_seed.png").is_file() and (out / "label_correction.png").is_file()
    again = bench("bench_evidence.py", args, env)  # resumes: every run is done, nothing trains
    assert "== " not in again.stdout and "Runs finished: 2 of 2." in again.stdout
    subset = bench("bench_evidence.py", [a for a in args if a != "nnUNetTrainerALC"] + ["--report-only"], env)
    assert "Runs finished: 1 of 1; the tables use all 2 run files in the folder." in subset.stdout
    mixed = bench("bench_evidence.py", args, {**env, "ALC_HQ_SHARE": "1/6"}, check=False)  # other ALC settings
    assert mixed.returncode != 0 and "'ALC_HQ_SHARE': '1/6'" in mixed.stderr and "another --out" in mixed.stderr
    sixth = root / "evidence_sixth"  # a grid at the paper's share takes H-Sup's run from this one, trains nothing
    borrowed = bench("bench_evidence.py", ["--dataset", f"10% HQ={DATASET_ID}", "--seeds", "0", "--trainers",
                                           "nnUNetTrainerHSup", *BUDGET, "--out", str(sixth), "--borrow-from",
                                           str(out)], {**env, "ALC_HQ_SHARE": "1/6"})
    assert "== " not in borrowed.stdout
    assert f"Runs finished: 1 of 1 (1 borrowed from `{out.as_posix()}`)" in borrowed.stdout


def test_cost_compares_every_trainer_with_stock_nnunet(workspace):
    root, env = workspace
    out = root / "cost.json"
    result = bench("bench_cost.py", ["-d", str(DATASET_ID), "-c", "2d", "--device", "cpu", "--rounds", "2", "--warmup",
                                     "1", "--loader-batches", "2", "--passes", "2", "--trainers", "nnUNetTrainerHSup",
                                     "nnUNetTrainerMeanTeacher", "--out", str(out)], env)
    report = json.loads(out.read_text())
    assert list(report["steps"]) == ["nnUNetTrainer", "nnUNetTrainerHSup", "nnUNetTrainerMeanTeacher",
                                     "nnUNetTrainerALC (m=2)"]
    assert set(report["teacher_passes"]) == {"nnUNetTrainerMeanTeacher", "nnUNetTrainerALC (m=2)"}
    assert report["teacher_passes"]["nnUNetTrainerALC (m=2)"]["passes"] == 2
    assert set(report["loaders"]) == {"nnUNetDataLoader", "HQLQDataLoader"}
    assert report["plans"] == "nnUNetPlans" and report["network_parameters"] > 0
    assert len(report["teacher_passes"]["nnUNetTrainerALC (m=2)"]["all_s"]) == 2  # timed in the 2 rounds
    assert "| nnUNetTrainerALC (m=2) |" in result.stdout and "overhead above floor" in result.stdout
    floor = report["floors"]["nnUNetTrainerALC (m=2)"]
    stock, teacher = report["steps"]["nnUNetTrainer"]["median_s"], report["teacher_passes"]["nnUNetTrainerALC (m=2)"]
    assert floor["floor_s"] == pytest.approx(stock + teacher["teacher_median_s"])
    step = report["steps"]["nnUNetTrainerALC (m=2)"]["median_s"]
    assert floor["overhead"] == pytest.approx(step / floor["floor_s"] - 1)


def test_step_parts_add_up_to_the_step(workspace):
    root, env = workspace
    out = root / "parts.json"
    result = bench("bench_step_parts.py", ["-d", str(DATASET_ID), "-c", "2d", "--device", "cpu", "--rounds", "2",
                                           "--warmup", "1", "--passes", "2", "--out", str(out)], env)
    report = json.loads(out.read_text())
    assert list(report["parts_s"]) == ["nnUNetTrainer", "nnUNetTrainerMeanTeacher", "nnUNetTrainerALC (m=2)"]
    stock, alc = report["parts_s"]["nnUNetTrainer"], report["parts_s"]["nnUNetTrainerALC (m=2)"]
    assert "teacher passes" not in stock and "loss terms" not in stock and stock["l_seg calls"] > 0
    assert all(alc[part] > 0 for part in ("teacher passes", "EMA update", "loss terms", "diagnostics"))
    assert alc["loss terms"] > alc["l_seg calls"]  # the l_seg calls run inside the loss terms
    for parts in (stock, alc):  # the backward is a large part of the rest, and no part exceeds the step
        assert 0 < parts["rest (backward, clipping, statistics)"] < parts["whole step"]
        assert max(v for k, v in parts.items() if k != "whole step") < parts["whole step"]
    assert report["argmax_shape"] == [report["lq_samples"], 2, *report["patch_size"]] and report["lq_samples"] >= 1
    assert set(report["argmax_s"]) == {"torch.argmax(dim=1)", "class_argmax"}
    assert "| teacher passes |" in result.stdout and "Class argmax on a" in result.stdout
