"""Ball morphology (exact vs scipy), the multi-class rules, HQ selection, per-case draws, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from noise_generation import perturb_mask
from nnunetv2_alc.atomic_write import atomic_folder
from nnunetv2_alc.input_errors import InputDataError
from noise_generation.make_noisy import corrupt_label, draw_corruption, label_dice
from noise_generation.morphology import ball_structure, largest_nonempty_erosion_radius
from nnunetv2_alc.case_selection import select_hq


def scipy_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Reference: scipy with the explicit ball; outside the image is background for dilation."""
    return ndimage.binary_dilation(mask, ball_structure(radius, mask.ndim), border_value=0)


def scipy_erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Reference: scipy with the explicit ball; outside the image does not erode (border_value=1)."""
    return ndimage.binary_erosion(mask, ball_structure(radius, mask.ndim), border_value=1)


def random_masks(ndim: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shape = tuple(int(s) for s in rng.integers(5, 18 if ndim == 3 else 40, ndim))
        if rng.random() < 0.5:
            mask = ndimage.gaussian_filter(rng.random(shape), 1.5) > rng.uniform(0.45, 0.55)
        else:
            mask = rng.random(shape) < rng.uniform(0.05, 0.95)
        yield mask


@pytest.mark.parametrize(("radius", "ndim", "size"), [(0, 3, 1), (1, 3, 7), (2, 3, 33), (1, 2, 5), (2, 2, 13)])
def test_ball_structure_is_every_offset_within_the_radius(radius, ndim, size):
    ball = ball_structure(radius, ndim)
    assert ball.shape == (2 * radius + 1,) * ndim and ball.sum() == size
    offsets = np.argwhere(ball) - radius
    assert ((offsets**2).sum(1) <= radius**2).all()


@pytest.mark.parametrize("ndim", [2, 3])
def test_binary_morphology_equals_scipy_ball_morphology(ndim):
    radii = (0, 1, 2, 3, 5, 9, 14) if ndim == 2 else (0, 1, 2, 4, 7)  # up to beyond half the image
    for i, mask in enumerate(random_masks(ndim, 25 if ndim == 2 else 12, seed=ndim)):
        for radius in radii:
            assert np.array_equal(perturb_mask(mask, "dilate", radius), scipy_dilate(mask, radius)), (i, radius)
            assert np.array_equal(perturb_mask(mask, "erode", radius), scipy_erode(mask, radius)), (i, radius)


@pytest.mark.parametrize("ndim", [2, 3])
def test_masks_touching_the_border(ndim):
    shape = (12,) * ndim
    mask = np.zeros(shape, bool)
    mask[(slice(0, 5),) + (slice(2, 9),) * (ndim - 1)] = True  # touches the low border of axis 0
    for radius in (1, 3, 4, 6):
        eroded = perturb_mask(mask, "erode", radius)
        assert np.array_equal(eroded, scipy_erode(mask, radius))
        assert np.array_equal(perturb_mask(mask, "dilate", radius), scipy_dilate(mask, radius))
        if eroded.any():  # outside the image does not erode: the slab stays attached to the border
            assert eroded[(0,) + (slice(None),) * (ndim - 1)].any()
    full = np.ones(shape, bool)
    assert perturb_mask(full, "erode", 5).all()
    empty = np.zeros(shape, bool)
    assert not perturb_mask(empty, "dilate", 5).any() and not perturb_mask(empty, "erode", 5).any()


def brute_force_dilation(labels: np.ndarray, radius: int) -> np.ndarray:
    """Every voxel against every labelled voxel: nearest class within the radius, ties to the lower label."""
    coords = np.indices(labels.shape).reshape(labels.ndim, -1).T
    flat = labels.ravel()
    out = flat.copy()
    for index in np.flatnonzero(flat == 0):
        d2 = ((coords[flat != 0] - coords[index]) ** 2).sum(1)
        if d2.size and d2.min() <= radius**2:
            out[index] = flat[flat != 0][d2 == d2.min()].min()
    return out.reshape(labels.shape)


@pytest.mark.parametrize("shape", [(15, 13), (7, 8, 9)])
def test_label_map_dilation_nearest_class_ties_to_lower_label(shape):
    rng = np.random.default_rng(7)
    for _ in range(6):
        labels = (rng.random(shape) < 0.06) * rng.integers(1, 4, shape)
        for radius in (1, 2, 4):
            result = perturb_mask(labels.astype(np.uint8), "dilate", radius)
            assert result.dtype == np.uint8
            assert np.array_equal(result, brute_force_dilation(labels, radius))
            assert np.array_equal(result[labels != 0], labels[labels != 0])  # original voxels keep their class


def test_contested_voxel_goes_to_the_lower_label_on_a_tie():
    row = np.array([[2, 0, 1, 0, 0, 3]])
    assert perturb_mask(row, "dilate", 1).tolist() == [[2, 1, 1, 1, 3, 3]]


def test_label_map_erosion_is_class_wise_and_frees_voxels_to_background():
    rng = np.random.default_rng(3)
    labels = np.zeros((14, 15, 16), np.int16)
    for c in (1, 2, 5):
        labels[ndimage.gaussian_filter(rng.random(labels.shape), 2) > 0.52] = c
    for radius in (1, 2, 3):
        result = perturb_mask(labels, "erode", radius)
        expected = np.zeros_like(labels)
        for c in (1, 2, 5):
            expected[scipy_erode(labels == c, radius)] = c
        assert np.array_equal(result, expected)


def test_perturb_mask_rejects_bad_arguments_and_leaves_input_alone():
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    before = mask.copy()
    perturb_mask(mask, "dilate", 2)
    assert np.array_equal(mask, before)
    with pytest.raises(ValueError, match="operation"):
        perturb_mask(mask, "open", 1)
    with pytest.raises(ValueError, match="radius"):
        perturb_mask(mask, "erode", -1)
    with pytest.raises(TypeError, match="dtype"):
        perturb_mask(mask.astype(float), "erode", 1)


def test_largest_nonempty_erosion_radius_is_tight():
    for mask in random_masks(3, 10, seed=11):
        limit = largest_nonempty_erosion_radius(mask)
        if limit is not None:
            assert perturb_mask(mask, "erode", limit).any() and not perturb_mask(mask, "erode", limit + 1).any()
    labels = np.zeros((20, 20), np.uint8)
    labels[2:18, 2:18] = 1
    labels[5, 5:8] = 2  # thin class: only radius 0 keeps it
    assert largest_nonempty_erosion_radius(labels) == 0
    assert largest_nonempty_erosion_radius(np.ones((4, 4), bool)) is None


def test_corrupt_label_shrinks_an_emptying_erosion_and_reports_the_radius():
    label = np.zeros((1, 9, 30, 30), np.uint8)
    label[0, 2:7, 5:25, 5:25] = 1  # 5 slices thick: radius 3 removes it, radius 2 keeps the middle slice
    noisy, used = corrupt_label(label, "erode", 6)
    assert used == 2 and noisy.any()
    assert np.array_equal(noisy, perturb_mask(label[0], "erode", 2)[None])
    assert corrupt_label(label, "erode", 1)[1] == 1


def test_corrupt_label_uses_a_disk_for_2d_data_stored_with_a_singleton_axis():
    label = np.zeros((1, 1, 20, 20), np.uint8)
    label[0, 0, 5:15, 5:15] = 1
    noisy, used = corrupt_label(label, "erode", 2)
    assert used == 2
    assert np.array_equal(noisy[0, 0], perturb_mask(label[0, 0], "erode", 2))


def test_label_dice():
    a = np.zeros((10, 10), np.uint8)
    a[2:6, 2:6] = 1
    assert label_dice(a, a) == 1.0
    assert label_dice(np.zeros_like(a), np.zeros_like(a)) == 1.0
    b = np.zeros_like(a)
    b[2:6, 2:4] = 1
    assert label_dice(a, b) == pytest.approx(2 * 8 / (16 + 8))


def test_per_case_draw_depends_only_on_seed_and_case():
    draws = [draw_corruption(0, f"case_{i}", (3, 15)) for i in range(200)]
    assert draws == [draw_corruption(0, f"case_{i}", (3, 15)) for i in range(200)]
    assert draws != [draw_corruption(1, f"case_{i}", (3, 15)) for i in range(200)]
    assert {op for op, _ in draws} == {"dilate", "erode"}
    assert {r for _, r in draws} == set(range(3, 16))


@pytest.mark.parametrize(("n_cases", "fraction", "n_hq"), [(80, 0.1, 8), (80, 0.2, 16), (62, 0.1, 6), (62, 0.2, 12)])
def test_hq_fraction_counts_of_the_paper_settings(n_cases, fraction, n_hq):
    cases = [f"c{i:03d}" for i in range(n_cases)]
    tags = select_hq(cases, hq_fraction=fraction, seed=0)
    assert list(tags) == sorted(cases) and list(tags.values()).count("HQ") == n_hq
    assert tags == select_hq(list(reversed(cases)), hq_fraction=fraction, seed=0)
    assert tags != select_hq(cases, hq_fraction=fraction, seed=1)
    larger = select_hq(cases, hq_count=n_hq + 5, seed=0)  # same seed: the HQ sets are nested
    assert {c for c, q in tags.items() if q == "HQ"} <= {c for c, q in larger.items() if q == "HQ"}


def test_hq_selection_errors_and_lists(tmp_path):
    cases = ["a", "b", "c", "d"]
    for kwargs in ({"hq_fraction": 0.1}, {"hq_count": 0}, {"hq_count": 4}, {"hq_list": ["a", "b", "c", "d"]},
                   {"hq_fraction": 1.0}, {}, {"hq_count": 1, "hq_fraction": 0.5}):
        with pytest.raises(InputDataError):
            select_hq(cases, **kwargs)
    listing = tmp_path / "hq.txt"
    listing.write_text("# trusted\nb\n\nd\n")
    assert select_hq(cases, hq_list=str(listing)) == {"a": "LQ", "b": "HQ", "c": "LQ", "d": "HQ"}
    listing.write_text("b\nzz\n")
    with pytest.raises(InputDataError, match=r"hq\.txt names 1 unknown training case\(s\): zz"):
        select_hq(cases, hq_list=listing)
    with pytest.raises(InputDataError, match="cannot read case list"):
        select_hq(cases, hq_list=tmp_path / "missing.txt")


def test_atomic_folder_replaces_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as folder:
        (folder / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(InputDataError, match="already exists"):
        with atomic_folder(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_folder(target, replace=True) as folder:
            (folder / "b.txt").write_text("2")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (target / "a.txt").exists()
    with atomic_folder(target, replace=True) as folder:
        (folder / "b.txt").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
