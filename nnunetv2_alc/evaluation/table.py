"""The comparison table in the layout of the paper's Table I, as Markdown."""
from __future__ import annotations

from typing import Any, Mapping

COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("dice", "Dice [%] ↑", 100.0),
    ("jaccard", "Jaccard [%] ↑", 100.0),
    ("hd95", "95HD [mm] ↓", 1.0),
    ("asd", "ASD [mm] ↓", 1.0),
)
"""(metric, column header, scale) of each column after the method name."""


def format_comparison_table(results: Mapping[str, Any]) -> str:
    """Markdown table(s) of ``evaluate_folders`` results: methods as rows, mean ± std per metric.

    One table per evaluated label (a heading names the label when there are several).
    A cell whose metric was undefined in some cases (exactly one mask empty) shows the number
    of cases averaged, e.g. ``8.36 ± 2.10 (n=19)``; ``n/a`` means undefined in every case.
    """
    labels = [str(label) for label in results["labels"]]
    methods: Mapping[str, Any] = results["methods"]
    lines = [f"Mean ± std over {len(results['cases'])} cases; Dice and Jaccard in %, distances in mm."]
    for label in labels:
        lines.append("")
        if len(labels) > 1:
            lines += [f"### Label {label}", ""]
        lines.append("| Method | " + " | ".join(header for _, header, _ in COLUMNS) + " |")
        lines.append("|---|" + "---:|" * len(COLUMNS))
        for name, method in methods.items():
            cells = [_cell(method["summary"][label][metric], scale) for metric, _, scale in COLUMNS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if any(method["summary"][label][metric]["n_undefined"]
           for method in methods.values() for label in labels for metric, _, _ in COLUMNS):
        lines += ["", "(n=k): the distance is undefined (exactly one mask empty) in the other cases, "
                      "which are left out of mean and std."]
    return "\n".join(lines) + "\n"


def _cell(stats: Mapping[str, float | int], scale: float) -> str:
    """``mean ± std`` of one summary entry, scaled, with the case count if some were undefined."""
    if stats["n"] == 0:
        return "n/a"
    text = f"{stats['mean'] * scale:.2f} ± {stats['std'] * scale:.2f}"
    return text + (f" (n={stats['n']})" if stats["n_undefined"] else "")
