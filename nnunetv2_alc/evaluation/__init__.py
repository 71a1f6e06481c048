"""Evaluation with the paper's metrics (Dice, Jaccard, 95HD, ASD); see docs/evaluation.md.

``evaluate_folders`` and ``EvaluationInputError`` are imported on first use, so that the
metrics alone do not import nnU-Net.
"""
from importlib import import_module
from typing import Any

from nnunetv2_alc.evaluation.metrics import multiclass_metrics, segmentation_metrics
from nnunetv2_alc.evaluation.table import format_comparison_table

_LAZY_ATTRIBUTES = {
    "evaluate_folders": "nnunetv2_alc.evaluation.folders",
    "EvaluationInputError": "nnunetv2_alc.evaluation.cases",
}

__all__ = ["segmentation_metrics", "multiclass_metrics", "format_comparison_table", *_LAZY_ATTRIBUTES]


def __getattr__(name: str) -> Any:
    """Import ``evaluate_folders`` / ``EvaluationInputError`` when first accessed."""
    if name not in _LAZY_ATTRIBUTES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY_ATTRIBUTES[name]), name)
