"""Before and after: the test Dice of each method in two runs of one setting, paired per case.

Each side is either a ``bench_accuracy.py`` report (its ``accuracy.json``) or the ``--out`` folder of a
``bench_evidence.py`` grid, e.g. the Left Atrium test table at the default batch share against the same
grid at ``ALC_HQ_SHARE=1/6``::

    python benchmarks/compare_runs.py benchmarks/results/accuracy_cpu2d/accuracy.json \\
        benchmarks/results/accuracy_cpu2d_after/accuracy.json --setting 10% --out comparison.md
    python benchmarks/compare_runs.py benchmarks/results/la_test_cpu2d \\
        benchmarks/results/la_test_cpu2d_share16 --setting "10% HQ"

A report's pairs are its test cases (both reports must evaluate the same ones); a grid's are its
(training seed, test case) pairs, and only the pairs both sides finished count (the table names how many).
Prints (and with ``--out`` writes) a Markdown table per method on both sides: Dice mean ± std over those
pairs (population std, as the evaluation tables), and after minus before paired (sample std), the pairs
where after is better and the Wilcoxon signed-rank p.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_evidence import paired, setting_folder
from harness import write_report


def report_dice(path: Path, setting: str) -> dict[str, dict]:
    """Per method of a ``bench_accuracy.py`` report: Dice (mean over labels) per test case of ``setting``."""
    report = json.loads(path.read_text())
    if setting not in report["settings"]:
        raise SystemExit(f"setting {setting!r} is not in {path} (it has {', '.join(report['settings'])})")
    evaluation = report["settings"][setting]["evaluation"]
    return {method: {case: float(np.mean([m["dice"] for m in result["per_case"][case].values()]))
                     for case in evaluation["cases"]} for method, result in evaluation["methods"].items()}


def grid_dice(folder: Path, setting: str) -> dict[str, dict]:
    """Per method of a ``bench_evidence.py`` grid: Dice per (training seed, test case) of ``setting``."""
    runs = sorted(setting_folder(folder, setting).glob("seed*/*.json"))
    if not runs:
        raise SystemExit(f"{folder} has no finished run of setting {setting!r}: give a bench_evidence.py --out "
                         "folder and one of its settings (the names of its evidence.md headings)")
    table: dict[str, dict] = {}
    for path in runs:
        run = json.loads(path.read_text())
        pairs = {(run["seed"], case): m["dice"] for case, m in run["per_case"].items()}
        table.setdefault(run["method"], {}).update(pairs)
    return table


def compare(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """The Markdown table of the methods on both sides."""
    lines = ["| Method | pairs | Dice before [%] | Dice after [%] | after - before (paired) | after better | p |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for method in after:
        if method not in before:
            continue
        keys = sorted(set(before[method]) & set(after[method]))
        if not keys:
            continue
        old, new = (100 * np.array([side[method][k] for k in keys]) for side in (before, after))
        test = paired(after[method], before[method])  # over the same shared keys
        lines.append(f"| {method} | {len(keys)} | {old.mean():.2f} ± {old.std():.2f} | {new.mean():.2f} ± "
                     f"{new.std():.2f} | {test['mean']:+.2f} ± {test['std']:.2f} | {test['wins']}/{test['n']} | "
                     f"{test['p']:.2g} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path,
                        help="accuracy.json of bench_accuracy.py, or a bench_evidence.py --out folder")
    parser.add_argument("after", type=Path, help="the same kind as before")
    parser.add_argument("--setting", required=True, help="setting name on both sides, e.g. 10%% or \"10%% HQ\"")
    parser.add_argument("--out", type=Path, help="write the table to this Markdown file (and the raw JSON beside it)")
    args = parser.parse_args()
    for path in (args.before, args.after):
        if not path.exists():
            raise SystemExit(f"{path} does not exist: give an accuracy.json or a bench_evidence.py --out folder")
    grids = args.before.is_dir()
    if grids != args.after.is_dir():
        raise SystemExit(f"{args.before} and {args.after}: compare two reports or two grid folders, not one of each")
    before, after = ((grid_dice if grids else report_dice)(path, args.setting) for path in (args.before, args.after))
    if not grids and any(set(before[m]) != set(after[m]) for m in set(before) & set(after)):
        raise SystemExit("the two reports evaluate different test cases; compare runs of one dataset")
    lines = compare(before, after)
    print("\n".join(lines))
    if args.out is not None:
        header = [f"# Before and after ({args.setting})", "", f"Before: `{args.before}`, after: `{args.after}`", ""]
        write_report(args.out.parent, args.out.stem, {"before": str(args.before), "after": str(args.after),
                                                      "setting": args.setting, "table": lines}, header + lines)


if __name__ == "__main__":
    main()
