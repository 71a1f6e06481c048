"""The parts of benchmarks/bench_evidence.py that need no training: run plan, clean twin, statistics, table.

The script itself runs end to end in tests/test_benchmarks.py.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import replace

import bench_evidence as ev  # benchmarks/, on sys.path through conftest.py
import numpy as np
import pytest
import SimpleITK as sitk
from harness import Budget
from scipy.stats import wilcoxon

from nnunetv2_alc.synthetic import make_synthetic_dataset
from shared_runs import BENCHMARKS


def test_plan_runs_setting_by_setting_with_ceiling_and_budget_check():
    plan = ev.plan_runs({"a": "1", "b": "2"}, "9", [0, 1], ["T1", "T2"], budget_check=True)
    assert plan == [("ceiling", "9", ev.STOCK, 0, 1), ("a", "1", "T1", 0, 1), ("a", "1", "T2", 0, 1),
                    ("ceiling", "9", ev.STOCK, 1, 1), ("a", "1", "T1", 1, 1), ("a", "1", "T2", 1, 1),
                    (f"a [{ev.BUDGET_CHECK}]", "1", ev.HSUP, 0, 2),
                    ("b", "2", "T1", 0, 1), ("b", "2", "T2", 0, 1), ("b", "2", "T1", 1, 1), ("b", "2", "T2", 1, 1)]
    assert ev.plan_runs({"a": "1"}, None, [3], ["T1"], budget_check=False) == [("a", "1", "T1", 3, 1)]


def test_clean_twin_has_every_label_clean_and_tagged_hq(tmp_path):
    source = make_synthetic_dataset(951, kind="tiny2d", seed=0, output_root=tmp_path)
    name = ev.clean_twin(tmp_path, source.name, 952)
    twin = tmp_path / name
    assert name == "Dataset952_SyntheticTiny2DClean"
    content = json.loads((twin / "dataset.json").read_text())
    assert set(content["label_quality"].values()) == {"HQ"}
    tags = json.loads((source / "dataset.json").read_text())["label_quality"]
    for case, quality in tags.items():
        clean = source / ("labelsTr_clean" if quality == "LQ" else "labelsTr") / f"{case}.nii.gz"
        assert (twin / "labelsTr" / f"{case}.nii.gz").read_bytes() == clean.read_bytes()
    names = [sorted(p.name for p in (folder / "imagesTs").iterdir()) for folder in (twin, source)]
    assert names[0] == names[1]
    assert ev.clean_twin(tmp_path, source.name, 952) == name  # exists: kept as it is
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left


def test_paired_difference_and_wilcoxon_against_scipy():
    rng = np.random.default_rng(4)
    ours = {f"{s}/{c}": float(v) for s in range(3) for c, v in enumerate(rng.random(8))}
    theirs = {k: v - 0.05 + 0.1 * rng.random() for k, v in ours.items()} | {"9/extra": 0.5}
    got = ev.paired(ours, theirs)
    keys = sorted(ours)
    difference = [100 * (ours[k] - theirs[k]) for k in keys]
    assert got["n"] == 24 and got["wins"] == sum(d > 0 for d in difference)
    assert got["mean"] == pytest.approx(sum(difference) / 24, rel=1e-12)
    mean = sum(difference) / 24
    assert got["std"] == pytest.approx((sum((d - mean) ** 2 for d in difference) / 23) ** 0.5, rel=1e-12)
    assert got["p"] == pytest.approx(wilcoxon(difference).pvalue)
    assert ev.paired({"0/a": 0.5}, {"0/a": 0.5})["p"] == 1.0
    assert ev.paired({"0/a": 0.5}, {"1/a": 0.5}) == {"n": 0}


def _run(trainer, seed, dice, setting="s", ratios=None):
    per_case = {f"c{i}": {"dice": d, "jaccard": d / 2, "hd95": 1.0, "asd": 0.5} for i, d in enumerate(dice)}
    run = {"trainer": trainer, "method": ev.display_name(trainer), "seed": seed, "setting": setting,
           "per_case": per_case, "empty_predictions": all(d == 0 for d in dice), "curves": {}}
    if ratios is not None:  # background counts as run_one records them: 10 organ-free slices, `seed` marked
        run["background"] = {"organ_free_slices": 10, "marked": seed, "rate": seed / 10,
                             "volume_ratio": float(np.mean(ratios)),
                             "volume_ratios": {f"c{i}": r for i, r in enumerate(ratios)}}
    return run


def test_summary_orders_methods_flags_empty_models_and_pairs_with_alc():
    runs = [_run(ev.ALC, 0, [0.8, 0.9]), _run(ev.ALC, 1, [0.7, 0.9]), _run(ev.HSUP, 0, [0.6, 0.7]),
            _run(ev.HSUP, 1, [0.5, 0.8]), _run("nnUNetTrainerMeanTeacher", 0, [0.0, 0.0])]
    summary = ev.summarise(runs)["s"]
    assert list(summary) == ["H-Sup", "Mean Teacher", "ALC (ours)"]
    assert summary["H-Sup"]["per_seed"]["dice"] == pytest.approx([0.65, 0.65])
    assert summary["H-Sup"]["alc_minus"]["n"] == 4 and summary["H-Sup"]["alc_minus"]["wins"] == 4
    assert summary["Mean Teacher"]["empty"]
    report = {"budget": {"device_name": "CPU", "configuration": "2d", "epochs": 1, "iterations": 1},
              "command": "x", "finished": 5, "planned": 5, "datasets": {"s": "D"}, "lq_dice": {"s": 0.7},
              "summary": {"s": summary}, "selection": {}, "gap_closed": {}}
    table = "\n".join(ev.markdown(report))
    assert "| Mean Teacher | 0 | empty on every test case |" in table
    assert "| H-Sup | 0,1 | 65.00 ± 0.00 |" in table and "clean-label ceiling not measured yet" in table


def test_background_pools_slices_and_cases_over_the_runs_that_counted_them():
    runs = [_run(ev.ALC, 1, [0.8, 0.9], ratios=[1.0, 5.0]), _run(ev.ALC, 3, [0.7, 0.9, 0.9], ratios=[1.2, 0.9, 1.0]),
            _run(ev.HSUP, 0, [0.6, 0.7], ratios=[1.0, 1.1]), _run(ev.HSUP, 1, [0.5, 0.8]),
            _run("nnUNetTrainerMeanTeacher", 0, [0.6, 0.7])]
    summary = ev.summarise(runs)["s"]
    # 4 of 20 organ-free slices marked; ratios pooled over the 5 (seed, case) pairs: mean 1.82, median 1.0
    # (the mean of the two runs' means would be 2.02)
    assert summary["ALC (ours)"]["background"] == pytest.approx(
        {"seeds": [1, 3], "organ_free_marked": 0.2, "volume_ratio": 1.82, "volume_ratio_median": 1.0})
    assert summary["H-Sup"]["background"]["seeds"] == [0]  # its seed-1 run was made before runs counted it
    assert summary["Mean Teacher"]["background"] is None
    lines = "\n".join(ev.background_lines(summary))
    assert "| ALC (ours) | 1,3 | 20.0 % | 1.82 | 1.00 |" in lines and "| H-Sup | 0 | 0.0 % | 1.05 | 1.05 |" in lines
    assert "| Mean Teacher |" not in lines and ev.background_lines(ev.summarise(runs[4:])["s"]) == []
    single_slice = _run(ev.ALC, 0, [0.8], ratios=[1.5])
    single_slice["background"] |= {"organ_free_slices": 0, "marked": 0}  # 2d data of one slice a case
    assert "| ALC (ours) | 0 | – | 1.50 | 1.50 |" in "\n".join(ev.background_lines(ev.summarise([single_slice])["s"]))


def test_runs_made_before_the_counts_get_them_from_their_saved_predictions(tmp_path):
    reference = np.zeros((3, 4, 4), np.uint8)
    reference[1, 1:3, 1:3] = 1  # 4 voxels on slice 1
    prediction = reference.copy()
    prediction[0, 0, 0] = 1  # one voxel on an organ-free slice
    raw, work = tmp_path / "raw", tmp_path / "work"
    folders = {"ref": raw / "D" / "labelsTs", "pred": ev.predictions_folder(work, "D", 0, "", ev.ALC)}
    for key, array in (("ref", reference), ("pred", prediction)):
        folders[key].mkdir(parents=True)
        sitk.WriteImage(sitk.GetImageFromArray(array), str(folders[key] / "c0.nii.gz"))
    old = _run(ev.ALC, 0, [0.9]) | {"dataset": "D"}
    old["per_case"] = {"c0": old["per_case"]["c0"]}
    target, borrowed = tmp_path / "run.json", tmp_path / "borrowed.json"
    target.write_text(json.dumps(old))
    borrowed.write_text(json.dumps(old | {"borrowed_from": "elsewhere"}))
    for run in (target, borrowed):
        ev.add_background(run, work, raw, "")
    counts = json.loads(target.read_text())["background"]
    assert counts["marked"] == 1 and counts["organ_free_slices"] == 2 and counts["volume_ratios"] == {"c0": 1.25}
    assert "background" not in json.loads(borrowed.read_text())  # its predictions are in the grid that trained it
    ev.add_background(target, tmp_path / "elsewhere", raw, "")  # no predictions there: the file is kept as it is
    assert json.loads(target.read_text())["background"] == counts


def test_gap_closed_and_the_paper_rows_beside_ours():
    # a partial grid: seeds that ALC has not trained yet count neither in the gap nor beside the paper (listed
    # first, so each row's seeds come out of order)
    runs = [_run("nnUNetTrainerMeanTeacher", 1, [0.90, 0.90]), _run(ev.HSUP, 1, [0.0, 0.0]),
            _run("nnUNetTrainerALC_noLS", 1, [0.5, 0.5]),
            _run(ev.ALC, 0, [0.80, 0.84]), _run(ev.HSUP, 0, [0.70, 0.74]), _run(ev.STOCK, 0, [0.90, 0.94], "ceiling"),
            _run("nnUNetTrainerMeanTeacher", 0, [0.60, 0.64]), _run("nnUNetTrainerALC_noLR", 0, [0.85, 0.89])]
    summary = ev.summarise(runs)
    ceiling = summary["ceiling"][ev.display_name(ev.STOCK)]
    # (82 - 72) / (92 - 72) of the mean Dice over seed 0, the one seed of all three rows; nan without a ceiling
    assert ev.gap_closed(summary["s"], ceiling) == pytest.approx(0.5)
    assert np.isnan(ev.gap_closed(summary["s"], None))
    report = {"budget": {"device_name": "CPU", "configuration": "2d", "epochs": 1, "iterations": 1},
              "command": "x", "finished": 5, "planned": 5, "datasets": {"s": "D"}, "lq_dice": {"s": 0.7},
              "summary": summary, "selection": {}, "paper": {"s": "LA10"},
              "gap_closed": {"s": ev.gap_closed(summary["s"], ceiling)}}
    table = "\n".join(ev.markdown(report))
    assert "that ALC closes, (ALC - H-Sup) / (ceiling - H-Sup) of the mean Dice: 0.50." in table
    # ours: ALC 82, Mean Teacher 62, w/o LR 87; the paper's Table II at 10 % HQ: 88.87, 83.79, 87.31
    assert "| Mean Teacher | 0 | 62.00 | 83.79 | +20.00 | +5.08 |" in table
    assert "| ALC w/o LR | 0 | 87.00 | 87.31 | -5.00 | +1.56 |" in table
    assert "| ALC (ours) | 0 | 82.00 | 88.87 | +0.00 | +0.00 |" in table
    assert "| ALC w/o LS |" not in table.split("Beside the paper")[1]  # no seed shared with ALC


def test_an_unknown_paper_table_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_evidence.py", "--dataset", "a=1", "--paper", "a=LA30"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(BENCHMARKS / "bench_evidence.py"), run_name="__main__")
    assert "--paper a=LA30: no paper table 'LA30'; known: LA10, LA20, NIH10, NIH20" in capsys.readouterr().err


def test_borrowing_from_a_folder_without_runs_is_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["bench_evidence.py", "--dataset", "a=1", "--borrow-from", str(tmp_path)])
    with pytest.raises(SystemExit):
        runpy.run_path(str(BENCHMARKS / "bench_evidence.py"), run_name="__main__")
    assert f"--borrow-from {tmp_path}: no runs/ folder there" in capsys.readouterr().err


def test_the_report_names_the_alc_settings_of_the_environment():
    assert ev.environment_text({"alc_environment": {"ALC_HQ_SHARE": "1/6"}}) == " with `ALC_HQ_SHARE=1/6`"
    assert ev.environment_text({"alc_environment": {}}) == ev.environment_text({}) == ""


def test_runs_the_share_does_not_reach_are_borrowed_from_a_grid_at_another_share(tmp_path, monkeypatch, capsys):
    budget = Budget("2d", epochs=4, iterations=5, seed=1, device="cpu", tiny_network=True, batch_size=None, tta=False)
    monkeypatch.delenv("ALC_BETA", raising=False)
    monkeypatch.delenv(ev.SHARE, raising=False)
    first, second = tmp_path / "share_half", tmp_path / "share_sixth"
    for trainer in (ev.HSUP, ev.ALC):  # trained by the first grid, without any ALC_* variable
        source = ev.run_file(first, "10% HQ", 1, trainer)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(json.dumps({"trainer": trainer, "setting": "10% HQ", "dataset": "Dataset1_A",
                                      "budget": budget.record()}))
    source, target = (ev.run_file(folder, "10% HQ", 1, ev.HSUP) for folder in (first, second))
    monkeypatch.setenv(ev.SHARE, "1/6")  # the second grid runs at the paper's share
    assert ev.reaching(ev.HSUP, {ev.SHARE: "1/6", "ALC_BETA": "0"}) == {"ALC_BETA": "0"}
    assert ev.reaching(ev.ALC, {ev.SHARE: "1/6"}) == {ev.SHARE: "1/6"}
    alc_target = ev.run_file(second, "10% HQ", 1, ev.ALC)
    assert not ev.borrow(ev.run_file(first, "10% HQ", 1, ev.ALC), alc_target, "10% HQ", "Dataset1_A", budget)
    assert "nnUNetTrainerALC depends on the share" in capsys.readouterr().out
    assert not ev.borrow(source, target, "10%_HQ", "Dataset2_B", replace(budget, epochs=8))  # same folder slug
    assert ("its setting is '10% HQ'; its dataset is Dataset1_A; its budget differs in epochs"
            in capsys.readouterr().out)
    monkeypatch.setenv("ALC_BETA", "0")  # a variable that reaches H-Sup too
    assert not ev.borrow(source, target, "10% HQ", "Dataset1_A", budget)
    assert "it was trained with the ALC settings {}" in capsys.readouterr().out
    assert not target.exists() and not alc_target.exists()
    monkeypatch.delenv("ALC_BETA")
    assert ev.borrow(source, target, "10% HQ", "Dataset1_A", budget)
    copied = json.loads(target.read_text())
    assert copied["borrowed_from"] == str(source) and copied["grid_alc_environment"] == {ev.SHARE: "1/6"}
    ev.require_same_environment(target, {ev.SHARE: "1/6"})  # resumes at its grid's share, no other
    for other in ({}, {ev.SHARE: "1/2"}):
        with pytest.raises(SystemExit, match="belongs to a grid with the ALC settings"):
            ev.require_same_environment(target, other)
    ev.require_same_environment(source, {})
    with pytest.raises(SystemExit, match="another --out"):  # a trained run: the settings it was trained with
        ev.require_same_environment(source, {ev.SHARE: "1/6"})
    third = ev.run_file(tmp_path / "third", "10% HQ", 1, ev.HSUP)  # borrowed again: still names who trained it
    assert ev.borrow(target, third, "10% HQ", "Dataset1_A", budget)
    assert json.loads(third.read_text())["borrowed_from"] == str(source)
    assert ev.borrowed_folders([copied, {"trainer": ev.ALC}]) == {first.as_posix(): 1}
    assert ev.borrowed_text({"borrowed": {"a/b": 4}}) == " (4 borrowed from `a/b`)"
