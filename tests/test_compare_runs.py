"""benchmarks/compare_runs.py: before/after Dice of two accuracy reports, paired per case."""

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


def run(tmp_path, before, after, *extra):
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "before.json"), str(tmp_path / "after.json"),
                           *extra], capture_output=True, encoding="utf-8")


def test_paired_difference_per_method(tmp_path):
    before = report({"ALC": [0.5, 0.6, 0.7], "Gone": [0.1, 0.1, 0.1]})
    after = report({"ALC": [0.6, 0.8, 0.7], "New": [0.9, 0.9, 0.9]})
    result = run(tmp_path, before, after, "--setting", "10%", "--out", str(tmp_path / "cmp.md"))
    assert result.returncode == 0, result.stderr
    # before 60 ± 8.16, after 70 ± 8.16 (population std); differences +10, +20, 0 -> +10 ± 10 (sample std)
    assert "| ALC | 60.00 ± 8.16 | 70.00 ± 8.16 | +10.00 ± 10.00 |" in result.stdout
    assert "Gone" not in result.stdout and "New" not in result.stdout
    assert "| ALC |" in (tmp_path / "cmp.md").read_text()


def test_bad_input_is_named(tmp_path):
    result = run(tmp_path, report({"ALC": [0.5] * 3}), report({"ALC": [0.5] * 3}), "--setting", "20%")
    assert result.returncode != 0 and "setting '20%' is not in" in result.stderr
    other = report({"ALC": [0.5] * 2}, cases=("a", "x"))
    result = run(tmp_path, report({"ALC": [0.5] * 3}), other, "--setting", "10%")
    assert result.returncode != 0 and "different test cases" in result.stderr
