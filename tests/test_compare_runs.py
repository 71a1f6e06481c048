"""benchmarks/compare_runs.py: before/after Dice of two accuracy reports or two evidence grids, paired per case."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"


def report(dice_by_method: dict[str, list[float]], cases=("a", "b", "c")) -> dict:
    methods = {name: {"per_case": {case: {"1": {"dice": d}} for case, d in zip(cases, values)}}
               for name, values in dice_by_method.items()}
    return {"settings": {"10%": {"evaluation": {"cases": list(cases), "methods": methods}}}}


def cli(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, encoding="utf-8")


def run(tmp_path, before, after, *extra):
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    return cli(tmp_path / "before.json", tmp_path / "after.json", *extra)


def test_paired_difference_per_method(tmp_path):
    before = report({"ALC": [0.5, 0.6, 0.7], "Gone": [0.1, 0.1, 0.1]})
    after = report({"ALC": [0.6, 0.8, 0.7], "New": [0.9, 0.9, 0.9]})
    result = run(tmp_path, before, after, "--setting", "10%", "--out", str(tmp_path / "cmp.md"))
    assert result.returncode == 0, result.stderr
    # before 60 ± 8.16, after 70 ± 8.16 (population std); differences +10, +20, 0 -> +10 ± 10 (sample std), 2 of
    # 3 better; Wilcoxon on (+10, +20, 0) drops the zero: exact p of two positive ranks = 0.5
    assert "| ALC | 3 | 60.00 ± 8.16 | 70.00 ± 8.16 | +10.00 ± 10.00 | 2/3 | 0.5 |" in result.stdout
    assert "Gone" not in result.stdout and "New" not in result.stdout
    assert "| ALC |" in (tmp_path / "cmp.md").read_text()


def test_bad_input_is_named(tmp_path):
    result = run(tmp_path, report({"ALC": [0.5] * 3}), report({"ALC": [0.5] * 3}), "--setting", "20%")
    assert result.returncode != 0 and "setting '20%' is not in" in result.stderr
    other = report({"ALC": [0.5] * 2}, cases=("a", "x"))
    result = run(tmp_path, report({"ALC": [0.5] * 3}), other, "--setting", "10%")
    assert result.returncode != 0 and "different test cases" in result.stderr


def grid(folder: Path, dice_by_seed: dict[int, dict[str, list[float]]], cases=("a", "b")) -> Path:
    """A bench_evidence.py --out folder holding run files of setting "10% HQ" (slug 10__HQ)."""
    for seed, methods in dice_by_seed.items():
        for method, values in methods.items():
            path = folder / "runs" / "10__HQ" / f"seed{seed}" / f"{method}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"method": method, "seed": seed,
                                        "per_case": {c: {"dice": d} for c, d in zip(cases, values)}}))
    return folder


def test_grids_pair_the_seeds_and_cases_both_finished(tmp_path):
    before = grid(tmp_path / "before", {0: {"ALC": [0.8, 0.9], "H-Sup": [0.7, 0.7]}, 1: {"ALC": [0.6, 0.7]}})
    after = grid(tmp_path / "after", {0: {"ALC": [0.7, 0.85]}})
    result = cli(before, after, "--setting", "10% HQ")
    assert result.returncode == 0, result.stderr
    # seed 1 is in before only: pairs (0, a), (0, b); differences -10, -5 -> -7.50 ± 3.54, after better on none
    assert "| ALC | 2 | 85.00 ± 5.00 | 77.50 ± 7.50 | -7.50 ± 3.54 | 0/2 | 0.5 |" in result.stdout
    assert "H-Sup" not in result.stdout


def test_grid_input_errors_are_named(tmp_path):
    before = grid(tmp_path / "before", {0: {"ALC": [0.8, 0.9]}})
    (tmp_path / "report.json").write_text(json.dumps(report({"ALC": [0.5] * 3})))
    for other, message in [(tmp_path / "report.json", "not one of each"),
                           (tmp_path / "missing", "does not exist"),
                           (tmp_path, "no finished run of setting '10% HQ'")]:
        result = cli(before, other, "--setting", "10% HQ")
        assert result.returncode != 0 and message in result.stderr, (other, result.stderr)
