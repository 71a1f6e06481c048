"""benchmarks/bench_la_diagnostics.py without training: row budgets, curve points, and the report of finished runs.

``--report-only`` runs the script's command line on run files written here; the training path it shares
with the other benchmarks (harness.Bench) runs end to end in tests/test_benchmarks.py.
"""

from __future__ import annotations

import json
import math
import runpy
import sys

import bench_la_diagnostics as la  # benchmarks/, on sys.path through conftest.py
import numpy as np
import pytest
from harness import Budget
from scipy.stats import wilcoxon

from shared_runs import BENCHMARKS

CASES = ("c1", "c2", "c3", "c4", "c5")


def test_row_budget_takes_the_batch_twin_and_multiplies_the_iterations():
    budget = Budget("2d_cpu", 40, 25, 0, "cpu", False, None, False)
    row = next(r for r in la.ROWS if r.key == "alc_b2")
    assert la.row_budget(budget, row, 3) == Budget("2d_cpu_b2", 40, 150, 3, "cpu", False, None, False)
    assert la.row_budget(budget, la.ROWS[0], 1) == Budget("2d_cpu", 40, 25, 1, "cpu", False, None, False)


def test_matched_hsup_is_hsup_at_the_same_batch_and_iterations():
    matched = {row.key: la.matched_hsup(row) for row in la.ROWS}
    assert (matched["alc_hq05_x4"], matched["alc_x4"], matched["stock_x2"]) == ("hsup_x4", "hsup_x4", "hsup_x2")
    assert (matched["alc_b2"], matched["alc_mild"], matched["hsup_2hq"]) == ("hsup_b2", "hsup", "hsup_2hq")


def test_a_run_file_counts_for_its_row_only_with_the_same_budget_trainer_and_settings():
    budget = Budget("2d_cpu", 40, 25, 0, "cpu", False, None, False)
    row = {r.key: r for r in la.ROWS}
    done = {"budget": budget.record(), "trainer": la.ALC, "settings": {"hq_share": 0.5}}
    assert la.same_run(done, row["alc_hq05"], budget)
    assert not la.same_run(done | {"settings": {"hq_share": 1 / 6}}, row["alc_hq05"], budget)
    assert not la.same_run(done | {"trainer": la.ORACLE}, row["alc_hq05"], budget)
    assert not la.same_run(done, row["alc_hq05"], la.replace(budget, epochs=80))
    # the first rows ran at the then-default share and saved no hq_share; their other settings still count
    assert la.same_run(done | {"settings": {"beta": 0}}, row["alc_beta0"], budget)
    assert la.same_run(done | {"settings": {"hq_share": 1 / 6, "beta": 0}}, row["alc_beta0"], budget)  # rerun
    assert not la.same_run(done | {"settings": {}}, row["alc_beta0"], budget)
    other_environment = done["budget"] | {"alc_environment": {"ALC_BETA": "0"}}  # an ALC_* variable of the command
    assert not la.same_run(done | {"budget": other_environment}, row["alc_hq05"], budget)
    assert la.budget_tag(budget, row["alc"]) != la.budget_tag(budget, row["alc_hq05"])


def test_budget_points_follow_each_row_over_its_iteration_multiples(tmp_path):
    def row(iterations, dice):
        return {"iterations": iterations, "per_seed": {"dice": dice}}
    summary = {"hsup_x2": row(2000, [0.74, 0.76]), "hsup": row(1000, [0.7]), "alc": row(1000, [0.6]),
               "alc_hq05": row(1000, [0.71]), "alc_hq05_x4": row(4000, [0.79])}
    points = la.budget_points(summary)
    assert points == {"hsup": [(1000, pytest.approx(70.0)), (2000, pytest.approx(75.0))],
                      "alc_hq05": [(1000, pytest.approx(71.0)), (4000, pytest.approx(79.0))]}
    la.plot_budget(summary, tmp_path)
    assert (tmp_path / "budget.png").stat().st_size > 0


def test_curve_points_are_half_three_quarters_and_the_end():
    assert la.curve_points(list(range(1, 41))) == [20, 30, 40]
    assert all(math.isnan(v) for v in la.curve_points([]))


def run(row: str, dice: list[float], seed: int = 0) -> dict:
    curves = {"ema_fg_dice": [0.5, 0.6, 0.7, 0.8], "train_losses": [0.0, -0.1, -0.2, -0.3]}
    if row.startswith("alc"):
        curves |= {"label_dice_noisy": [0.5] * 4, "label_dice_refined": [0.6, 0.6, 0.7, 0.9]}
    return {"row": row, "label": next(r.label for r in la.ROWS if r.key == row), "seed": seed, "iterations": 100,
            "seconds": {"train": 60.0, "predict": 30.0}, "background": {"rate": 0.25, "volume_ratio": 1.5},
            "per_case": {c: {"dice": d, "jaccard": d / (2 - d), "hd95": 3.0, "asd": 1.0} for c, d in zip(CASES, dice)},
            "curves": curves}


def write_datasets(raw, *ids: int) -> None:
    for dataset_id in ids:
        folder = raw / f"Dataset{dataset_id}_LeftAtrium"
        for sub in ("imagesTs", "labelsTs"):
            (folder / sub).mkdir(parents=True)
        (folder / "dataset.json").write_text(json.dumps({"label_quality": {"a": "HQ"}, "file_ending": ".nii.gz"}))


def test_report_only_tables_the_finished_rows_paired_with_hsup(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    write_datasets(tmp_path / "nnUNet_raw", 701)
    out = tmp_path / "out"
    hsup, alc = [0.70, 0.72, 0.60, 0.80, 0.75], [0.66, 0.70, 0.61, 0.78, 0.70]
    for row, dice in (("hsup", hsup), ("alc", alc)):
        target = la.run_file(out, next(r for r in la.ROWS if r.key == row), 0)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(run(row, dice)))
    monkeypatch.setattr(sys, "argv", ["bench_la_diagnostics.py", "--dev-id", "701", "--rows", "hsup", "alc", "mt",
                                      "-c", "2d_cpu", "--device", "cpu", "--out", str(out), "--report-only"])
    runpy.run_path(str(BENCHMARKS / "bench_la_diagnostics.py"), run_name="__main__")
    report = json.loads((out / "diagnostics.json").read_text())
    difference = 100 * (np.array(alc) - np.array(hsup))
    paired = report["summary"]["alc"]["minus_hsup"]
    assert paired["mean"] == pytest.approx(difference.mean()) and paired["wins"] == 1 and paired["n"] == 5
    assert paired["p"] == pytest.approx(wilcoxon(difference).pvalue)
    assert report["summary"]["alc"]["minus_hsup_matched"] == paired  # ALC's batch and iterations are H-Sup's
    assert report["summary"]["hsup"]["minus_hsup"] is None and report["summary"]["alc"]["minus_alc"] is None
    assert report["summary"]["hsup"]["minus_alc"]["mean"] == pytest.approx(-difference.mean())
    assert report["summary"]["alc"]["labels"]["label_dice_refined"] == pytest.approx(np.mean([0.6, 0.6, 0.7, 0.9]))
    assert math.isnan(report["summary"]["hsup"]["labels"]["label_dice_refined"])
    table = (out / "diagnostics.md").read_text()
    assert f"| H-Sup | 0 | 100 | {100 * np.mean(hsup):.2f} |" in table
    assert "25.0 % | 1.50 | 0.600 → 0.700 → 0.800 | 0.500 / 0.700" in table
    # every row of the script is planned, whatever --rows ran; the milder-noise rows only with --mild-id
    assert f"Rows finished: 2 of {sum(not r.mild for r in la.ROWS)} " in table
    assert "Still to run: stock (seed 0), hsup_2hq (seed 0), mt (seed 0), " in table and "_mild" not in table
    assert "milder noise not given (--mild-id)." in table
    assert (out / "curves.png").stat().st_size > 0


@pytest.mark.parametrize("arguments, message", [(["--rows", "nope"], "invalid choice: 'nope'"),
                                                (["--seed", "3"], "--seed 3: the rows' training seeds are --seeds")])
def test_unknown_row_and_single_seed_are_refused(monkeypatch, capsys, arguments, message):
    monkeypatch.setattr(sys, "argv", ["bench_la_diagnostics.py", "--dev-id", "701", *arguments])
    with pytest.raises(SystemExit):
        runpy.run_path(str(BENCHMARKS / "bench_la_diagnostics.py"), run_name="__main__")
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("state, message", [("unprepared", "has no configuration '2d_cpu'"),
                                            ("other budget", "was trained with another budget")])
def test_grid_refuses_unprepared_data_and_run_files_of_another_budget(tmp_path, monkeypatch, state, message):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    write_datasets(tmp_path / "nnUNet_raw", 701)
    preprocessed = tmp_path / "nnUNet_preprocessed" / "Dataset701_LeftAtrium"
    (preprocessed / "nnUNetPlans_2d_cpu").mkdir(parents=True)
    (preprocessed / "nnUNetPlans_2d_cpu" / "case.pkl").write_bytes(b"")
    configurations = {} if state == "unprepared" else {"2d_cpu": {"data_identifier": "nnUNetPlans_2d_cpu"}}
    (preprocessed / "nnUNetPlans.json").write_text(json.dumps({"configurations": configurations}))
    out = tmp_path / "out"
    finished = run("hsup", [0.7] * 5) | {"budget": Budget("2d_cpu", 10, 25, 0, "cpu", False, None, False).record()}
    la.run_file(out, la.ROWS[0], 0).parent.mkdir(parents=True)
    la.run_file(out, la.ROWS[0], 0).write_text(json.dumps(finished))
    monkeypatch.setattr(sys, "argv", ["bench_la_diagnostics.py", "--dev-id", "701", "--rows", "hsup", "-c", "2d_cpu",
                                      "--device", "cpu", "--epochs", "40", "--iterations", "25", "--out", str(out)])
    with pytest.raises(SystemExit, match=message):
        runpy.run_path(str(BENCHMARKS / "bench_la_diagnostics.py"), run_name="__main__")
    assert not (tmp_path / "nnUNet_results").exists() and not (out / "diagnostics.md").exists()  # nothing ran


def test_label_columns_of_runs_with_a_stale_clean_label_cache_are_left_out():
    stale, fresh = run("alc_hq05", [0.7] * 5, seed=0), run("alc_hq05", [0.8] * 5, seed=1)
    assert ("alc_hq05", 0) in la.STALE_CLEAN_LABELS
    summary = la.summarise([stale])["alc_hq05"]
    assert math.isnan(summary["labels"]["label_dice_refined"]) and summary["per_seed"]["dice"] == [pytest.approx(0.7)]
    both = la.summarise([stale, fresh])["alc_hq05"]  # the Dice of both seeds, the labels of the fresh one
    assert both["labels"]["label_dice_refined"] == pytest.approx(np.mean([0.6, 0.6, 0.7, 0.9]))
    assert both["per_seed"]["dice"] == [pytest.approx(0.7), pytest.approx(0.8)]
