"""nnunetv2_alc.dice against references written out here in float64 numpy, and its empty-mask rule."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnunetv2_alc.dice import (BOTH_EMPTY_DICE, ONE_EMPTY_DICE, binary_dice, dice_from_counts, dice_score,
                               jaccard_score, label_counts, label_dice, mean_present_dice, overlap_counts,
                               present_class_dice)
from nnunetv2_alc.evaluation import segmentation_metrics
from nnunetv2_alc.synthetic import best_threshold_dice


def reference_counts(reference: np.ndarray, other: np.ndarray, value) -> tuple[int, int, int]:
    a, b = reference == value, other == value
    return int(np.sum(a & b)), int(np.sum(~a & b)), int(np.sum(a & ~b))


def reference_dice(tp, fp, fn) -> float:
    tp, fp, fn = float(tp), float(fp), float(fn)
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2.0 * tp + fp + fn)


def reference_label_dice(reference: np.ndarray, other: np.ndarray) -> float:
    values = sorted(set(reference.ravel().tolist()) | set(other.ravel().tolist()))
    scores = []
    for value in values:
        if value == 0:
            continue
        a, b = reference == value, other == value
        both, sizes = np.sum(a & b, dtype=np.float64), np.sum(a, dtype=np.float64) + np.sum(b, dtype=np.float64)
        scores.append(2.0 * both / sizes)
    return sum(scores) / len(scores) if scores else 1.0


def reference_count_mean(counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    scores = [2 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts.T if tp + fp + fn > 0]
    return sum(scores) / len(scores) if scores else math.nan


def random_counts(rng: np.random.Generator, classes: int) -> np.ndarray:
    counts = rng.integers(0, 40, (3, classes))
    counts[:, rng.random(classes) < 0.3] = 0  # some classes absent from both maps
    counts[0, rng.random(classes) < 0.2] = 0  # some with no overlap
    return counts


def test_the_rule() -> None:
    assert BOTH_EMPTY_DICE == 1.0 and ONE_EMPTY_DICE == 0.0
    assert dice_score(0, 0, 0) == BOTH_EMPTY_DICE and jaccard_score(0, 0, 0) == BOTH_EMPTY_DICE
    assert dice_score(0, 5, 0) == ONE_EMPTY_DICE == dice_score(0, 0, 7) == jaccard_score(0, 3, 0)


@pytest.mark.parametrize("seed", range(5))
def test_scores_of_count_arrays_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tp, fp, fn = random_counts(rng, 50)
    dice, jaccard = dice_score(tp, fp, fn), jaccard_score(tp, fp, fn)
    assert dice.dtype == np.float64 and dice.shape == (50,)
    for i in range(50):
        assert dice[i] == pytest.approx(reference_dice(tp[i], fp[i], fn[i]), rel=1e-15)
        union = float(tp[i] + fp[i] + fn[i])
        assert jaccard[i] == pytest.approx(1.0 if union == 0 else tp[i] / union, rel=1e-15)
    assert isinstance(dice_score(int(tp[0]), int(fp[0]), int(fn[0])), float)


def test_floating_counts_keep_their_dtype() -> None:
    counts = random_counts(np.random.default_rng(9), 20).astype(np.float32)
    assert dice_score(*counts).dtype == np.float32
    expected = [reference_dice(*column) for column in counts.T.astype(np.float64)]
    assert dice_score(*counts) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_binary_dice_and_counts_match_reference(seed: int) -> None:
    rng = np.random.default_rng(10 + seed)
    shape = tuple(int(n) for n in rng.integers(1, 15, 3))
    reference, other = rng.random(shape) < 0.4, rng.random(shape) < rng.random()
    tp, fp, fn = reference_counts(reference, other, True)
    assert overlap_counts(reference, other) == (tp, fp, fn)
    assert binary_dice(reference, other) == pytest.approx(
        2.0 * tp / (np.sum(reference, dtype=np.float64) + np.sum(other, dtype=np.float64)), rel=1e-15)
    assert binary_dice(reference.astype(np.int16) * 4, other) == binary_dice(reference, other)


def test_binary_dice_empty_masks() -> None:
    empty, full = np.zeros((4, 5), bool), np.ones((4, 5), bool)
    assert binary_dice(empty, empty) == 1.0
    assert binary_dice(empty, full) == 0.0 and binary_dice(full, empty) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        binary_dice(empty, np.zeros((5, 4), bool))


@pytest.mark.parametrize("seed", range(8))
def test_label_dice_matches_reference_on_random_label_maps(seed: int) -> None:
    rng = np.random.default_rng(20 + seed)
    shape = tuple(int(n) for n in rng.integers(1, 12, int(rng.integers(1, 4))))
    classes = int(rng.integers(2, 6))
    reference = rng.integers(0, classes, shape).astype(np.uint8)
    other = rng.integers(0, classes + 2, shape).astype(np.int64)  # some classes only in ``other``
    assert label_dice(reference, other) == pytest.approx(reference_label_dice(reference, other), rel=1e-14)
    values, counts = label_counts(reference, other)
    assert values.tolist() == sorted((set(np.unique(reference)) | set(np.unique(other))) - {0})
    for column, value in enumerate(values):
        assert tuple(counts[:, column]) == reference_counts(reference, other, value)


def test_label_dice_multiclass_and_empty_cases() -> None:
    reference = np.zeros((8, 8), np.uint8)
    reference[:4, :4] = 1  # 16 voxels
    reference[6:, 6:] = 2  # 4 voxels
    other = reference.copy()
    other[:4, :2] = 0  # class 1: tp 8, fn 8
    other[0, 7] = 3  # class 3 only in ``other``
    assert label_dice(reference, reference) == 1.0
    assert label_dice(reference, other) == pytest.approx((2 * 8 / 24 + 1.0 + 0.0) / 3)
    assert label_dice(np.zeros_like(reference), np.zeros_like(reference)) == 1.0  # no foreground: the rule
    assert label_dice(reference, np.zeros_like(reference)) == 0.0  # every class in one map only
    assert label_dice(np.full((3, 3), 5), np.full((3, 3), 5)) == 1.0  # a class absent from both is not averaged
    with pytest.raises(ValueError, match="shapes differ"):
        label_dice(reference, reference[:4])


@pytest.mark.parametrize("seed", range(6))
def test_count_means_match_reference(seed: int) -> None:
    rng = np.random.default_rng(30 + seed)
    counts = random_counts(rng, int(rng.integers(1, 7)))
    expected = reference_count_mean(counts)
    for result in (dice_from_counts(counts), mean_present_dice(*counts)):
        assert (math.isnan(result) and math.isnan(expected)) or result == pytest.approx(expected, rel=1e-14)
    per_class = present_class_dice(*counts)
    absent = counts.sum(0) == 0
    assert np.isnan(per_class[absent]).all()
    assert per_class[~absent] == pytest.approx([reference_dice(*c) for c in counts.T[~absent]], rel=1e-15)


def test_count_means_skip_absent_classes_and_are_nan_without_any() -> None:
    counts = np.array([[3, 0, 0], [1, 0, 4], [1, 0, 0]])  # class 1: 6/8; class 2 absent; class 3 only predicted
    assert dice_from_counts(counts) == pytest.approx((6 / 8 + 0.0) / 2)
    assert mean_present_dice(*counts) == dice_from_counts(counts)
    assert math.isnan(dice_from_counts(np.zeros((3, 2))))
    assert math.isnan(mean_present_dice(np.zeros(4), np.zeros(4), np.zeros(4)))
    assert math.isnan(mean_present_dice([], [], []))


def test_label_dice_equals_count_mean_of_label_counts() -> None:
    rng = np.random.default_rng(40)
    reference, other = rng.integers(0, 4, (9, 11)), rng.integers(0, 4, (9, 11))
    assert label_dice(reference, other) == dice_from_counts(label_counts(reference, other)[1])


def test_evaluation_dice_and_jaccard_are_those_of_this_module() -> None:
    rng = np.random.default_rng(50)
    prediction, reference = rng.random((7, 8, 9)) < 0.5, rng.random((7, 8, 9)) < 0.3
    metrics = segmentation_metrics(prediction, reference)
    tp, fp, fn = overlap_counts(reference, prediction)
    assert metrics["dice"] == binary_dice(reference, prediction) == dice_score(tp, fp, fn)
    assert metrics["jaccard"] == jaccard_score(tp, fp, fn) == pytest.approx(tp / (tp + fp + fn), rel=1e-15)
    empty = np.zeros_like(prediction)
    assert segmentation_metrics(empty, empty)["dice"] == binary_dice(empty, empty) == BOTH_EMPTY_DICE
    assert segmentation_metrics(prediction, empty)["dice"] == binary_dice(empty, prediction) == ONE_EMPTY_DICE


@pytest.mark.parametrize("seed", range(4))
def test_threshold_sweep_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(60 + seed)
    image = rng.standard_normal((6, 7, 5))  # no ties, so every prefix of the sorted voxels is a threshold
    mask = image + rng.standard_normal(image.shape) > 0.8
    best, threshold = -1.0, None
    for value in np.unique(image):
        predicted = image >= value
        score = 2.0 * np.sum(predicted & mask) / (np.sum(predicted, dtype=np.float64) + np.sum(mask))
        if score > best:
            best, threshold = score, value
    dice, found = best_threshold_dice(image, mask)
    assert dice == pytest.approx(best, rel=1e-14) and found == threshold
    assert best_threshold_dice(image, np.zeros_like(mask))[0] == 0.0  # the prediction is never empty
