"""Before and after: the test Dice of each method in two ``bench_accuracy.py`` reports of one setting.

::

    python benchmarks/compare_runs.py benchmarks/results/accuracy_cpu2d/accuracy.json \\
        benchmarks/results/accuracy_cpu2d_after/accuracy.json --setting 10% --out comparison.md

Both reports must hold the setting and evaluate the same test cases. Prints (and with ``--out`` writes)
a Markdown table: Dice mean ± std over cases before and after (population std, as the evaluation tables),
and after minus before paired per case (sample std, as bench_accuracy's paired table).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from harness import write_report


def case_dice(evaluation: dict, method: str) -> np.ndarray:
    """Per-case Dice in % (mean over labels), in the evaluation's case order."""
    per_case = evaluation["methods"][method]["per_case"]
    return np.array([100 * np.mean([m["dice"] for m in per_case[case].values()]) for case in evaluation["cases"]])


def compare(before: dict, after: dict) -> list[str]:
    if before["cases"] != after["cases"]:
        raise SystemExit("the two reports evaluate different test cases; compare runs of one dataset")
    lines = ["| Method | Dice before [%] | Dice after [%] | after - before (paired) |", "|---|---:|---:|---:|"]
    for method in after["methods"]:
        if method not in before["methods"]:
            continue
        old, new = case_dice(before, method), case_dice(after, method)
        difference = new - old
        lines.append(f"| {method} | {old.mean():.2f} ± {old.std():.2f} | {new.mean():.2f} ± {new.std():.2f}"
                     f" | {difference.mean():+.2f} ± {difference.std(ddof=1):.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--setting", required=True, help="setting name in both reports, e.g. 10%%")
    parser.add_argument("--out", type=Path, help="write the table to this Markdown file (and the raw JSON beside it)")
    args = parser.parse_args()
    reports = [json.loads(path.read_text()) for path in (args.before, args.after)]
    missing = [str(path) for path, report in zip((args.before, args.after), reports)
               if args.setting not in report["settings"]]
    if missing:
        raise SystemExit(f"setting {args.setting!r} is not in {', '.join(missing)}")
    before, after = (report["settings"][args.setting]["evaluation"] for report in reports)
    lines = compare(before, after)
    print("\n".join(lines))
    if args.out is not None:
        header = [f"# Before and after ({args.setting} HQ)", "", f"Before: `{args.before}`, after: `{args.after}`", ""]
        write_report(args.out.parent, args.out.stem, {"before": str(args.before), "after": str(args.after),
                                                      "setting": args.setting, "table": lines}, header + lines)


if __name__ == "__main__":
    main()
