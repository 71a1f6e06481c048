"""The Dice score of the package: every Dice (and Jaccard) value is computed here.

A comparison of a mask ``O`` (prediction, noisy or refined label, ...) with a reference mask ``R`` is
summarised by three counts: ``tp = |O ∩ R|``, ``fp = |O \\ R|`` and ``fn = |R \\ O|``. Then

    Dice = 2 tp / (2 tp + fp + fn)  (= 2 |O ∩ R| / (|O| + |R|)),   Jaccard = tp / (tp + fp + fn).

Empty-mask rule (the one of the evaluation, docs/evaluation.md, "Empty masks"):

* both masks empty (``tp = fp = fn = 0``): Dice = Jaccard = ``BOTH_EMPTY_DICE`` = 1, the two masks agree;
* exactly one mask empty: Dice = Jaccard = ``ONE_EMPTY_DICE`` = 0 (what the formula gives: ``tp = 0``).

Several classes are averaged without weights. Only classes present in at least one of the two maps
enter the mean: a class absent from both would score 1 by the rule above and only pull the mean
towards 1. Callers that sum counts over many samples (the trainer) cannot tell "no voxel of the
class" from "no sample", so the count-based means (:func:`mean_present_dice`, :func:`dice_from_counts`)
return NaN when no class is present at all ("nothing to average"); :func:`label_dice`, which sees the
two label maps, applies the rule to them as a whole instead: two maps without any foreground agree
(``BOTH_EMPTY_DICE``).

Integer counts are computed in float64; floating counts (e.g. float32 tensors from the trainer) keep
their dtype, so that values are those of the former formulas, to the bit.
"""

from __future__ import annotations

import numpy as np

BOTH_EMPTY_DICE = 1.0
"""Dice (and Jaccard) of two empty masks."""
ONE_EMPTY_DICE = 0.0
"""Dice (and Jaccard) when exactly one mask is empty (the formula's value, ``tp = 0``)."""


def _as_float(*counts) -> list[np.ndarray]:
    """``counts`` as arrays of one floating dtype: theirs if floating, else float64."""
    arrays = [np.asarray(count) for count in counts]
    dtype = np.result_type(*arrays)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    return [array.astype(dtype, copy=False) for array in arrays]


def _scalar_or_array(values: np.ndarray):
    return float(values) if values.ndim == 0 else values


def dice_score(tp, fp, fn):
    """``2 tp / (2 tp + fp + fn)`` elementwise, ``BOTH_EMPTY_DICE`` where ``tp = fp = fn = 0``.

    Scalars give a Python float, arrays (broadcast together) an array.
    """
    tp, fp, fn = _as_float(tp, fp, fn)
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(denominator == 0, BOTH_EMPTY_DICE, 2 * tp / denominator)
    return _scalar_or_array(score)


def jaccard_score(tp, fp, fn):
    """``tp / (tp + fp + fn)`` elementwise, with the empty-mask rule of :func:`dice_score`."""
    tp, fp, fn = _as_float(tp, fp, fn)
    denominator = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(denominator == 0, BOTH_EMPTY_DICE, tp / denominator)
    return _scalar_or_array(score)


def overlap_counts(reference: np.ndarray, other: np.ndarray) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of the mask ``other`` against the mask ``reference`` (non-zero is foreground)."""
    reference, other = np.asarray(reference).astype(bool, copy=False), np.asarray(other).astype(bool, copy=False)
    if reference.shape != other.shape:
        raise ValueError(f"mask shapes differ: {reference.shape} and {other.shape}")
    tp = int(np.count_nonzero(reference & other))
    return tp, int(np.count_nonzero(other)) - tp, int(np.count_nonzero(reference)) - tp


def binary_dice(reference: np.ndarray, other: np.ndarray) -> float:
    """Dice of two binary masks (non-zero is foreground); 1 if both are empty, 0 if only one is."""
    return dice_score(*overlap_counts(reference, other))


def present_class_dice(tp, fp, fn) -> np.ndarray:
    """Per-class :func:`dice_score` of count vectors, NaN for the classes absent from both maps.

    A class is absent when ``tp = fp = fn = 0``; the NaN drops it from a ``np.nanmean``.
    """
    tp, fp, fn = _as_float(tp, fp, fn)
    present = (tp != 0) | (fp != 0) | (fn != 0)
    return np.where(present, dice_score(tp, fp, fn), np.nan)


def mean_present_dice(tp, fp, fn) -> float:
    """Mean of :func:`present_class_dice` over the classes present in either map; NaN if there is none.

    For per-class count vectors summed over samples, e.g. the pseudo Dice of validation batches.
    """
    per_class = np.atleast_1d(present_class_dice(tp, fp, fn))
    return float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan")


def dice_from_counts(counts: np.ndarray) -> float:
    """:func:`mean_present_dice` of ``counts = (tp, fp, fn)``, shape ``(3, classes)``; NaN if no class occurs."""
    tp, fp, fn = counts
    return mean_present_dice(tp, fp, fn)


def label_counts(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, counts)``: the non-zero values of either label map (ascending) and their ``(tp, fp, fn)``.

    ``counts`` has shape ``(3, len(classes))``; class ``c`` compares ``other == c`` with ``reference == c``.
    """
    reference, other = np.asarray(reference), np.asarray(other)
    if reference.shape != other.shape:
        raise ValueError(f"label map shapes differ: {reference.shape} and {other.shape}")
    classes = np.union1d(np.unique(reference), np.unique(other))
    classes = classes[classes != 0]
    counts = np.array([overlap_counts(reference == c, other == c) for c in classes], dtype=np.int64)
    return classes, counts.reshape(-1, 3).T


def label_dice(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean Dice of two integer label maps over their foreground classes.

    Averages, without weights, the Dice of ``other == c`` against ``reference == c`` over every non-zero
    value ``c`` present in at least one of the two maps (so no class is empty in both); if neither map
    has a non-zero value, the two maps agree: ``BOTH_EMPTY_DICE``.
    """
    _, counts = label_counts(reference, other)
    return mean_present_dice(*counts) if counts.shape[1] else BOTH_EMPTY_DICE
