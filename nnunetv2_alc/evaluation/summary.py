"""Mean and standard deviation of per-case metrics."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from nnunetv2_alc.evaluation.metrics import METRIC_NAMES

PerCase = Mapping[str, Mapping[str, Mapping[str, float]]]
"""``{case: {label: {metric: value}}}``, labels as strings."""


def summarize(per_case: PerCase, labels: list[str]) -> dict[str, dict[str, dict[str, float | int]]]:
    """``{label: {metric: {"mean", "std", "n", "n_undefined"}}}`` over the cases of ``per_case``.

    Undefined (NaN) values, i.e. distances where exactly one mask is empty, are left out of
    mean and std and counted in ``n_undefined``; ``n`` counts the cases that entered.
    ``std`` is the population standard deviation (numpy's default, ``ddof=0``); mean and std
    are NaN when no case has a defined value.
    """
    summary: dict[str, dict[str, dict[str, float | int]]] = {}
    for label in labels:
        summary[label] = {}
        for metric in METRIC_NAMES:
            values = np.array([case_metrics[label][metric] for case_metrics in per_case.values()], dtype=float)
            defined = values[~np.isnan(values)]
            summary[label][metric] = {
                "mean": float(defined.mean()) if defined.size else float("nan"),
                "std": float(defined.std()) if defined.size else float("nan"),
                "n": int(defined.size),
                "n_undefined": int(values.size - defined.size),
            }
    return summary
