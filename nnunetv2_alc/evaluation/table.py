"""The comparison table in the layout of the paper's Table I, as Markdown."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from nnunetv2_alc.evaluation.metrics import METRICS, Metric

TABLE_METRICS: tuple[Metric, ...] = tuple(metric for metric in METRICS if metric.in_table)
"""The metrics shown, one column each after the method name (header ``Metric.header``), in the order of
``METRICS``."""


def format_comparison_table(results: Mapping[str, Any], flagged: Mapping[str, str] | None = None) -> str:
    """Markdown table(s) of ``evaluate_folders`` results: methods as rows, mean ± std per metric.

    ``flagged`` maps a method to a note shown instead of its numbers (e.g. a model whose predictions are
    empty on every case, whose "Dice 0" would read as a result).

    One table per evaluated label (a heading names the label when there are several).
    A cell whose metric was undefined in some cases (exactly one mask empty) shows the number
    of cases averaged, e.g. ``8.36 ± 2.10 (n=19)``; ``n/a`` means undefined in every case.
    """
    labels = [str(label) for label in results["labels"]]
    methods: Mapping[str, Any] = results["methods"]
    lines = [f"Mean ± std over {len(results['cases'])} cases; {units_caption(TABLE_METRICS)}."]
    for label in labels:
        lines.append("")
        if len(labels) > 1:
            lines += [f"### Label {label}", ""]
        lines.append("| Method | " + " | ".join(metric.header for metric in TABLE_METRICS) + " |")
        lines.append("|---|" + "---:|" * len(TABLE_METRICS))
        for name, method in methods.items():
            if flagged and name in flagged:
                lines.append(f"| {name} | " + " | ".join([f"**{flagged[name]}**"] + ["–"] * (len(TABLE_METRICS) - 1))
                             + " |")
                continue
            cells = [_cell(method["summary"][label][metric.key], metric.scale) for metric in TABLE_METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if any(method["summary"][label][metric.key]["n_undefined"]
           for method in methods.values() for label in labels for metric in TABLE_METRICS):
        lines += ["", "(n=k): the distance is undefined (exactly one mask empty) in the other cases, "
                      "which are left out of mean and std."]
    return "\n".join(lines) + "\n"


def _cell(stats: Mapping[str, float | int], scale: float) -> str:
    """``mean ± std`` of one summary entry, scaled, with the case count if some were undefined."""
    if stats["n"] == 0:
        return "n/a"
    text = f"{stats['mean'] * scale:.2f} ± {stats['std'] * scale:.2f}"
    return text + (f" (n={stats['n']})" if stats["n_undefined"] else "")


def units_caption(metrics: Sequence[Metric]) -> str:
    """The units of the table, e.g. ``Dice and Jaccard in %, distances in mm``.

    Metrics are grouped by unit in order of appearance; distance metrics are named "distances".
    """
    by_unit: dict[str, list[str]] = {}
    for metric in metrics:
        names = by_unit.setdefault(metric.unit, [])
        name = "distances" if metric.distance else metric.name
        if name not in names:
            names.append(name)
    return ", ".join(f"{_enumerate(names)} in {unit}" for unit, names in by_unit.items())


def _enumerate(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
