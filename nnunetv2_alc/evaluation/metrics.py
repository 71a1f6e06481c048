"""Overlap and surface-distance metrics of the paper: Dice, Jaccard, 95HD and ASD.

The definitions are those of ``medpy.metric.binary`` (0.5.x), so that values compare with
results computed with medpy:

* The *surface* of a mask is the mask minus its erosion by the connectivity-1 structuring
  element (6-neighbourhood in 3D, 4 in 2D), the outside of the image counting as background.
* ``d(A -> B)`` is, for every surface voxel of ``A``, the Euclidean distance in mm (voxel
  index offsets times ``spacing``) to the nearest surface voxel of ``B``.
* ``hd95`` is the 95th percentile (numpy's linear interpolation) of ``d(P -> R)`` and
  ``d(R -> P)`` pooled; ``asd`` is the mean of ``d(P -> R)`` (directed: prediction to
  reference, medpy's ``asd(result, reference)``); ``assd`` is the mean of both pooled.

medpy obtains ``d`` from a Euclidean distance transform of the full image; here the nearest
surface voxel is found with a k-d tree over the surface voxels of the joint bounding box of
both masks, which gives the same distances (up to float rounding) at a fraction of the cost.

Empty masks (medpy raises for these): both empty -> ``BOTH_EMPTY`` (Dice = Jaccard = 1,
distances 0); exactly one empty -> ``ONE_EMPTY`` (Dice = Jaccard = 0, distances NaN, i.e.
undefined; aggregations skip and count them). Dice and Jaccard come from :mod:`nnunetv2_alc.dice`,
whose empty-mask rule this is.

``METRICS`` declares every metric once: its key (JSON key, CSV column), table header, unit, its
values for empty masks and how it is computed. ``METRIC_NAMES``, ``BOTH_EMPTY``, ``ONE_EMPTY``, the
dict of :func:`segmentation_metrics`, the CSV columns and the comparison table all derive from it,
so adding a metric is one entry there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.spatial import cKDTree

from nnunetv2_alc.bounding_box import bounding_box
from nnunetv2_alc.dice import BOTH_EMPTY_DICE, ONE_EMPTY_DICE, dice_score, jaccard_score

NAN = float("nan")


@dataclass(frozen=True, eq=False)
class MaskComparison:
    """What the metrics of one prediction against its reference are computed from (both masks non-empty)."""

    tp: int  # |P ∩ R|
    fp: int  # |P \ R|
    fn: int  # |R \ P|
    pred_to_ref: np.ndarray  # d(P -> R) in mm, one value per surface voxel of P
    ref_to_pred: np.ndarray  # d(R -> P) in mm, one value per surface voxel of R

    @cached_property
    def pooled(self) -> np.ndarray:
        """``d(P -> R)`` and ``d(R -> P)`` together."""
        return np.concatenate((self.pred_to_ref, self.ref_to_pred))


@dataclass(frozen=True)
class Metric:
    """One metric: how it is named, shown, computed, and what it is for empty masks."""

    key: str  # key in the result dicts and JSON, column of the CSV
    name: str  # short name in the comparison table
    unit: str  # unit in the comparison table
    scale: float  # table value = scale * value (e.g. 100 for fractions shown in %)
    higher_is_better: bool  # arrow in the table header
    both_empty: float  # value when prediction and reference are both empty
    one_empty: float  # value when exactly one is empty (NaN: undefined, left out of mean and std)
    compute: Callable[[MaskComparison], float] = field(repr=False)  # value when both are non-empty
    distance: bool = False  # a surface distance (the table caption groups these as "distances")
    in_table: bool = True  # a column of the comparison table

    @property
    def header(self) -> str:
        """Column header of the comparison table, e.g. ``Dice [%] ↑``."""
        return f"{self.name} [{self.unit}] {'↑' if self.higher_is_better else '↓'}"


METRICS: tuple[Metric, ...] = (
    Metric("dice", "Dice", "%", 100.0, True, BOTH_EMPTY_DICE, ONE_EMPTY_DICE,
           lambda c: dice_score(c.tp, c.fp, c.fn)),
    Metric("jaccard", "Jaccard", "%", 100.0, True, BOTH_EMPTY_DICE, ONE_EMPTY_DICE,
           lambda c: jaccard_score(c.tp, c.fp, c.fn)),
    Metric("hd95", "95HD", "mm", 1.0, False, 0.0, NAN, lambda c: np.percentile(c.pooled, 95), distance=True),
    Metric("asd", "ASD", "mm", 1.0, False, 0.0, NAN, lambda c: c.pred_to_ref.mean(), distance=True),
    Metric("assd", "ASSD", "mm", 1.0, False, 0.0, NAN, lambda c: c.pooled.mean(), distance=True, in_table=False),
)
"""Every metric, in the order of the result dicts, the CSV columns and the table columns."""

METRIC_NAMES: tuple[str, ...] = tuple(metric.key for metric in METRICS)

BOTH_EMPTY: Mapping[str, float] = MappingProxyType({metric.key: metric.both_empty for metric in METRICS})
ONE_EMPTY: Mapping[str, float] = MappingProxyType({metric.key: metric.one_empty for metric in METRICS})


def segmentation_metrics(prediction: np.ndarray, reference: np.ndarray,
                         spacing: Sequence[float] | None = None) -> dict[str, float]:
    """Dice, Jaccard, 95HD, ASD and ASSD of one binary prediction against its reference.

    Args:
        prediction: binary mask (any dtype; non-zero is foreground), 1D, 2D or 3D.
        reference: binary mask of the same shape.
        spacing: voxel size in mm per array axis; ``None`` means 1 mm everywhere.

    Returns:
        ``{"dice", "jaccard", "hd95", "asd", "assd"}`` as floats; Dice and Jaccard in [0, 1],
        distances in mm. If both masks are empty: Dice = Jaccard = 1 and distances 0; if
        exactly one is empty: Dice = Jaccard = 0 and distances NaN (see module docstring).

    Raises:
        ValueError: on differing shapes, 0-d input or a spacing of the wrong length or sign.
    """
    pred = np.asarray(prediction).astype(bool, copy=False)
    ref = np.asarray(reference).astype(bool, copy=False)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    if pred.ndim == 0:
        raise ValueError("masks must have at least one dimension")
    spacing_mm = _spacing_array(spacing, pred.ndim)

    box = bounding_box(pred | ref)
    if box is None:
        return dict(BOTH_EMPTY)
    pred, ref = pred[box], ref[box]
    n_pred, n_ref = np.count_nonzero(pred), np.count_nonzero(ref)
    if n_pred == 0 or n_ref == 0:
        return dict(ONE_EMPTY)
    n_both = int(np.count_nonzero(pred & ref))

    pred_surface = _surface_points(pred, spacing_mm)
    ref_surface = _surface_points(ref, spacing_mm)
    comparison = MaskComparison(tp=n_both, fp=int(n_pred) - n_both, fn=int(n_ref) - n_both,
                                pred_to_ref=cKDTree(ref_surface).query(pred_surface)[0],
                                ref_to_pred=cKDTree(pred_surface).query(ref_surface)[0])
    return {metric.key: float(metric.compute(comparison)) for metric in METRICS}


def multiclass_metrics(prediction: np.ndarray, reference: np.ndarray,
                       spacing: Sequence[float] | None = None,
                       labels: Sequence[int] | None = None) -> dict[int, dict[str, float]]:
    """``segmentation_metrics`` of each foreground label of two label maps.

    Args:
        prediction: integer label map.
        reference: integer label map of the same shape.
        spacing: voxel size in mm per array axis; ``None`` means 1 mm everywhere.
        labels: labels to evaluate (each one against the rest); ``None`` means every non-zero
            value present in either map.

    Returns:
        ``{label: metrics}`` in the order of ``labels`` (ascending when inferred).
    """
    pred = np.asarray(prediction)
    ref = np.asarray(reference)
    if labels is None:
        present = np.union1d(np.unique(pred), np.unique(ref))
        labels = [int(value) for value in present if value != 0]
    return {int(label): segmentation_metrics(pred == label, ref == label, spacing) for label in labels}


def _spacing_array(spacing: Sequence[float] | None, ndim: int) -> np.ndarray:
    """Spacing as a float array of length ``ndim`` (ones when ``None``), validated."""
    if spacing is None:
        return np.ones(ndim)
    spacing_mm = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if spacing_mm.size != ndim:
        raise ValueError(f"spacing {tuple(spacing_mm)} has {spacing_mm.size} values for {ndim}D masks")
    if not np.all(np.isfinite(spacing_mm) & (spacing_mm > 0)):
        raise ValueError(f"spacing {tuple(spacing_mm)} must be finite and positive")
    return spacing_mm


def _surface_points(mask: np.ndarray, spacing_mm: np.ndarray) -> np.ndarray:
    """Coordinates in mm of the surface voxels of a mask, shape ``(n, ndim)``.

    A voxel is interior when it and its 2 * ndim face neighbours are foreground, the outside of
    the array counting as background: the erosion by the connectivity-1 structure with
    ``border_value=0`` (medpy's), done with shifted views, which is several times faster than
    ``scipy.ndimage.binary_erosion``. Eroding inside the joint bounding box equals eroding the
    whole image, since every voxel outside the box is background in both masks.
    """
    interior = mask.copy()
    for axis in range(mask.ndim):
        head, tail = (slice(None),) * axis + (slice(1, None),), (slice(None),) * axis + (slice(None, -1),)
        interior[head] &= mask[tail]  # lower neighbour along axis
        interior[tail] &= mask[head]  # upper neighbour along axis
        interior[(slice(None),) * axis + (0,)] = False
        interior[(slice(None),) * axis + (-1,)] = False
    surface = np.flatnonzero(mask & ~interior)
    return np.stack(np.unravel_index(surface, mask.shape), axis=1) * spacing_mm
