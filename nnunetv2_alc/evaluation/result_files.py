"""Writing evaluation results: per-method JSON and CSV, and the comparison Markdown."""
from __future__ import annotations

import csv
import json
import math
import os
import re
from typing import Any, Iterable, Mapping

from nnunetv2_alc.evaluation.cases import EvaluationInputError
from nnunetv2_alc.evaluation.metrics import METRIC_NAMES
from nnunetv2_alc.evaluation.table import format_comparison_table

COMPARISON_FILE = "comparison.md"


def method_file_stems(names: Iterable[str]) -> dict[str, str]:
    """``{name: file-name-safe stem}`` (runs of other characters become ``_``); stems must differ."""
    stems = {name: re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "method" for name in names}
    if len(set(stems.values())) < len(stems):
        raise EvaluationInputError(f"method names {list(stems)} collide as file names {list(stems.values())}")
    return stems


def write_results(results: Mapping[str, Any], output_folder: str) -> list[str]:
    """Write ``<method>.json``, ``<method>.csv`` per method and ``comparison.md``; return the paths.

    JSON holds per-case values and the summary (NaN written as ``null``); CSV has one row per
    case and label, then ``mean`` and ``std`` rows per label (NaN written as ``nan``).
    """
    stems = method_file_stems(results["methods"])
    os.makedirs(output_folder, exist_ok=True)
    written = []
    for name, method in results["methods"].items():
        base = os.path.join(output_folder, stems[name])
        record = {"method": name, "reference_folder": results["reference_folder"],
                  "file_ending": results["file_ending"], "labels": results["labels"], **method}
        with open(base + ".json", "w") as handle:
            json.dump(_nan_to_none(record), handle, indent=2, allow_nan=False)
        _write_csv(base + ".csv", method)
        written += [base + ".json", base + ".csv"]
    comparison = os.path.join(output_folder, COMPARISON_FILE)
    with open(comparison, "w") as handle:
        handle.write(format_comparison_table(results))
    return written + [comparison]


def _write_csv(path: str, method: Mapping[str, Any]) -> None:
    """Per-case rows then ``mean``/``std`` rows of one method."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "label", *METRIC_NAMES])
        for case, by_label in method["per_case"].items():
            for label, metrics in by_label.items():
                writer.writerow([case, label, *(repr(float(metrics[m])) for m in METRIC_NAMES)])
        for statistic in ("mean", "std"):
            for label, stats in method["summary"].items():
                writer.writerow([statistic, label, *(repr(float(stats[m][statistic])) for m in METRIC_NAMES)])


def _nan_to_none(value: Any) -> Any:
    """Copy of a JSON-like structure with NaN floats replaced by ``None``."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    return value
