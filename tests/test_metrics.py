"""segmentation_metrics / multiclass_metrics against medpy (the reference) and the empty-mask rule."""
from __future__ import annotations

import math

import numpy as np
import pytest
from medpy.metric import binary as medpy_binary
from scipy.ndimage import gaussian_filter

from nnunetv2_alc.evaluation import multiclass_metrics, segmentation_metrics
from nnunetv2_alc.dice import BOTH_EMPTY_DICE, ONE_EMPTY_DICE
from nnunetv2_alc.evaluation import format_comparison_table
from nnunetv2_alc.evaluation.metrics import BOTH_EMPTY, METRIC_NAMES, METRICS, ONE_EMPTY
from nnunetv2_alc.evaluation.table import TABLE_METRICS, units_caption


def medpy_reference(prediction: np.ndarray, reference: np.ndarray, spacing) -> dict[str, float]:
    """The five metrics as medpy computes them."""
    return {"dice": medpy_binary.dc(prediction, reference), "jaccard": medpy_binary.jc(prediction, reference),
            "hd95": medpy_binary.hd95(prediction, reference, spacing),
            "asd": medpy_binary.asd(prediction, reference, spacing),
            "assd": medpy_binary.assd(prediction, reference, spacing)}


def assert_matches_medpy(prediction: np.ndarray, reference: np.ndarray, spacing) -> None:
    ours = segmentation_metrics(prediction, reference, spacing)
    expected = medpy_reference(prediction, reference, spacing)
    assert set(ours) == set(METRIC_NAMES)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        assert type(ours[name]) is float


def blob(shape: tuple[int, ...], rng: np.random.Generator, threshold: float = 0.1) -> np.ndarray:
    """Thresholded smoothed noise, never empty."""
    mask = gaussian_filter(rng.standard_normal(shape), 1.5) > threshold
    mask.flat[rng.integers(mask.size)] = True
    return mask


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_random_blobs_match_medpy_with_anisotropic_spacing(ndim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(size) for size in rng.integers(6, 28 if ndim == 3 else 60, ndim))
    spacing = tuple(rng.uniform(0.3, 3.0, ndim))
    assert_matches_medpy(blob(shape, rng), blob(shape, rng), spacing)


@pytest.mark.parametrize("seed", range(3))
def test_small_far_apart_objects_match_medpy(seed: int) -> None:
    """Sparse masks whose bounding boxes are disjoint."""
    rng = np.random.default_rng(100 + seed)
    prediction, reference = np.zeros((30, 25, 20), bool), np.zeros((30, 25, 20), bool)
    prediction[2:6, 3:9, 1:4] = True
    reference[20:29, 15:24, 12:19] = blob((9, 9, 7), rng, threshold=0.0)
    assert_matches_medpy(prediction, reference, (2.5, 0.7, 0.9))


def test_single_voxel_masks_match_medpy() -> None:
    rng = np.random.default_rng(7)
    reference = blob((12, 14, 9), rng)
    voxel = np.zeros_like(reference)
    voxel[3, 11, 4] = True
    other = np.zeros_like(reference)
    other[0, 0, 8] = True
    spacing = (1.2, 0.5, 3.0)
    assert_matches_medpy(voxel, reference, spacing)
    assert_matches_medpy(reference, voxel, spacing)
    assert_matches_medpy(voxel, other, spacing)
    assert segmentation_metrics(voxel, voxel, spacing) == {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0,
                                                           "asd": 0.0, "assd": 0.0}


@pytest.mark.parametrize("ndim", [2, 3])
def test_border_touching_masks_match_medpy(ndim: int) -> None:
    """The image border counts as background: voxels on it are surface voxels."""
    rng = np.random.default_rng(11)
    shape = (10, 13, 8)[:ndim]
    full = np.ones(shape, bool)
    half = np.zeros(shape, bool)
    half[:4] = True
    corner = np.zeros(shape, bool)
    corner[(slice(-3, None),) * ndim] = True
    spacing = (0.8, 2.0, 1.3)[:ndim]
    for prediction, reference in [(full, half), (half, corner), (corner, full), (blob(shape, rng), full)]:
        assert_matches_medpy(prediction, reference, spacing)


def test_thin_and_one_slice_arrays_match_medpy() -> None:
    rng = np.random.default_rng(3)
    assert_matches_medpy(blob((1, 15, 17), rng), blob((1, 15, 17), rng), (5.0, 1.0, 0.5))
    assert_matches_medpy(blob((40,), rng), blob((40,), rng), (0.7,))


def test_integer_masks_and_default_spacing() -> None:
    rng = np.random.default_rng(5)
    prediction, reference = blob((9, 10, 11), rng), blob((9, 10, 11), rng)
    as_labels = prediction.astype(np.int16) * 3
    assert segmentation_metrics(as_labels, reference) == segmentation_metrics(prediction, reference, (1, 1, 1))


def test_both_empty_is_a_perfect_score() -> None:
    empty = np.zeros((5, 6, 7), bool)
    assert segmentation_metrics(empty, empty, (1.0, 2.0, 3.0)) == dict(BOTH_EMPTY)
    assert dict(BOTH_EMPTY) == {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0, "asd": 0.0, "assd": 0.0}


def test_one_empty_gives_zero_overlap_and_undefined_distances() -> None:
    empty = np.zeros((5, 6), bool)
    full = np.ones((5, 6), bool)
    for prediction, reference in [(empty, full), (full, empty)]:
        result = segmentation_metrics(prediction, reference)
        assert result["dice"] == 0.0 and result["jaccard"] == 0.0
        assert all(math.isnan(result[name]) for name in ("hd95", "asd", "assd"))
    assert ONE_EMPTY["dice"] == 0.0 and math.isnan(ONE_EMPTY["hd95"])


@pytest.mark.parametrize("prediction_shape, spacing, message", [
    ((4, 5), None, "differs from reference shape"),
    ((4, 4), (1.0,), "has 1 values for 2D"),
    ((4, 4), (1.0, -1.0), "finite and positive"),
])
def test_invalid_input_raises(prediction_shape, spacing, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segmentation_metrics(np.ones(prediction_shape), np.ones((4, 4)), spacing)


def test_zero_dimensional_input_raises() -> None:
    with pytest.raises(ValueError, match="at least one dimension"):
        segmentation_metrics(np.array(1), np.array(1))


def test_multiclass_equals_per_label_binary_metrics() -> None:
    rng = np.random.default_rng(21)
    shape, spacing = (14, 12, 10), (2.0, 0.75, 0.75)
    reference = blob(shape, rng).astype(np.uint8) + 2 * blob(shape, rng, 0.3)
    prediction = blob(shape, rng).astype(np.uint8) + 2 * blob(shape, rng, 0.3)
    result = multiclass_metrics(prediction, reference, spacing)
    assert list(result) == sorted((set(np.unique(reference)) | set(np.unique(prediction))) - {0})
    for label, metrics in result.items():
        assert metrics == segmentation_metrics(prediction == label, reference == label, spacing)


def test_multiclass_explicit_labels_apply_the_empty_rule() -> None:
    reference = np.zeros((6, 6), np.uint8)
    reference[1:3, 1:3] = 1
    prediction = reference.copy()
    prediction[4, 4] = 2
    result = multiclass_metrics(prediction, reference, labels=[1, 2, 5])
    assert list(result) == [1, 2, 5]
    assert result[1]["dice"] == 1.0 and result[1]["hd95"] == 0.0
    assert result[2]["dice"] == 0.0 and math.isnan(result[2]["asd"])
    assert result[5] == dict(BOTH_EMPTY)


def test_metric_table_drives_names_empty_values_and_headers() -> None:
    assert METRIC_NAMES == tuple(metric.key for metric in METRICS) == ("dice", "jaccard", "hd95", "asd", "assd")
    assert dict(BOTH_EMPTY) == {metric.key: metric.both_empty for metric in METRICS}
    assert list(ONE_EMPTY) == list(METRIC_NAMES)
    assert BOTH_EMPTY["dice"] == BOTH_EMPTY["jaccard"] == BOTH_EMPTY_DICE
    assert ONE_EMPTY["dice"] == ONE_EMPTY["jaccard"] == ONE_EMPTY_DICE
    headers = [metric.header for metric in TABLE_METRICS]
    assert headers == ["Dice [%] ↑", "Jaccard [%] ↑", "95HD [mm] ↓", "ASD [mm] ↓"]
    assert units_caption(TABLE_METRICS) == "Dice and Jaccard in %, distances in mm"
    assert units_caption(METRICS[:1]) == "Dice in %"
    assert units_caption([METRICS[0], METRICS[1], METRICS[0]]) == "Dice and Jaccard in %"
    rng = np.random.default_rng(8)
    assert list(segmentation_metrics(blob((8, 9), rng), blob((8, 9), rng))) == list(METRIC_NAMES)


def test_comparison_table_text() -> None:
    """The Markdown exactly, for a hand-made summary (one label, an undefined distance, an all-undefined one)."""
    def stats(mean, std, n=3, n_undefined=0):
        return {"mean": mean, "std": std, "n": n, "n_undefined": n_undefined}

    summary_a = {"dice": stats(0.9123, 0.0111), "jaccard": stats(0.84, 0.02), "hd95": stats(1.234, 0.5),
                 "asd": stats(0.456, 0.1), "assd": stats(0.4, 0.1)}
    summary_b = {"dice": stats(0.5, 0.25), "jaccard": stats(0.4, 0.2),
                 "hd95": stats(5.0, 1.0, n=2, n_undefined=1),
                 "asd": stats(float("nan"), float("nan"), n=0, n_undefined=3), "assd": stats(2.0, 0.5)}
    results = {"labels": [1], "cases": ["a", "b", "c"],
               "methods": {"A": {"summary": {"1": summary_a}}, "B (x)": {"summary": {"1": summary_b}}}}
    assert format_comparison_table(results) == (
        "Mean ± std over 3 cases; Dice and Jaccard in %, distances in mm.\n"
        "\n"
        "| Method | Dice [%] ↑ | Jaccard [%] ↑ | 95HD [mm] ↓ | ASD [mm] ↓ |\n"
        "|---|---:|---:|---:|---:|\n"
        "| A | 91.23 ± 1.11 | 84.00 ± 2.00 | 1.23 ± 0.50 | 0.46 ± 0.10 |\n"
        "| B (x) | 50.00 ± 25.00 | 40.00 ± 20.00 | 5.00 ± 1.00 (n=2) | n/a |\n"
        "\n"
        "(n=k): the distance is undefined (exactly one mask empty) in the other cases, which are left out of "
        "mean and std.\n")
    flagged = format_comparison_table(results, flagged={"B (x)": "empty prediction on every test case"})
    assert "| B (x) | **empty prediction on every test case** | – | – | – |\n" in flagged
    assert "| A | 91.23 ± 1.11 |" in flagged
