"""Dilation and erosion of masks and label maps with a Euclidean ball, via distance transforms.

Definitions (all distances in voxel units, whatever the image spacing):

* The ball of radius ``r`` is every integer offset whose Euclidean length is at most ``r``
  (:func:`ball_structure`). Radius 0 is the single centre voxel, so it changes nothing.
* Dilation: a voxel is foreground iff some foreground voxel lies within distance ``r`` of it,
  i.e. ``d2 <= r*r`` with ``d2`` the squared distance to the nearest foreground voxel.
* Erosion: a foreground voxel stays foreground iff no background voxel *of the image* lies within
  distance ``r``, i.e. ``d2 > r*r`` with ``d2`` the squared distance to the nearest background voxel.
* Border rule: only voxels inside the image count. Space outside the image is neither foreground
  (dilation cannot grow in from outside) nor background (erosion does not eat a structure from the
  image edge). Equivalently, with ``ball = ball_structure(r, ndim)``::

      dilate == scipy.ndimage.binary_dilation(mask, ball, border_value=0)
      erode  == scipy.ndimage.binary_erosion(mask, ball, border_value=1)

  and erosion is the exact complement of dilating the background.

The squared distances come from :func:`scipy.ndimage.distance_transform_edt`, whose cost does not
depend on the radius. They are exact integers: the transform returns the square root of an integer
sum of squared offsets, so squaring and rounding to the nearest integer recovers that sum, and the
comparisons with ``r*r`` (and between classes) are exact.
Work is limited to the bounding box of the structure plus the margin that can change: ``r`` for
dilation, one voxel for erosion (the nearest background voxel of a foreground voxel is always inside
the box grown by one).

Label maps (integer arrays, 0 = background) are perturbed class by class:

* Erosion erodes every class on its own (all other labels count as background of that class); the
  voxels it removes become background (0).
* Dilation grows every class into the voxels within ``r`` of it. A voxel claimed by several classes
  goes to the class with the nearest original voxel; on a tie, the lower label wins. Original
  voxels are at distance 0 from their own class, so dilation never relabels them: it only fills
  background.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt

from nnunetv2_alc.bounding_box import bounding_box

OPERATIONS = ("dilate", "erode")


def ball_structure(radius: int, ndim: int) -> np.ndarray:
    """Boolean ball of the given radius: offsets with Euclidean length <= radius, shape ``(2r+1,)*ndim``."""
    grids = np.ogrid[tuple(slice(-radius, radius + 1) for _ in range(ndim))]
    return sum(g * g for g in grids) <= radius * radius


def _squared_distance_to_false(region: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every voxel to the nearest False voxel of ``region`` (inf if none)."""
    if region.all():
        return np.full(region.shape, np.inf)
    distance = distance_transform_edt(region)
    np.square(distance, out=distance)
    return np.rint(distance, out=distance)  # sqrt(k)**2 can be off by an ulp; k is an integer


def _dilation_distance(mask: np.ndarray, radius: int) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """(box, squared distance to the nearest foreground voxel inside box); the box holds every voxel within ``radius``.
    """
    box = bounding_box(mask, radius)
    if box is None:
        return None
    return box, _squared_distance_to_false(~mask[box])


def _erosion_depth(mask: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """(box, squared distance of every voxel in box to the nearest background voxel of the image)."""
    box = bounding_box(mask, 1)
    if box is None:
        return None
    return box, _squared_distance_to_false(mask[box])


def dilate_binary(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a boolean mask with the ball of ``radius`` (see the module docstring for the exact rule)."""
    out = np.zeros(mask.shape, dtype=bool)
    found = _dilation_distance(mask, radius)
    if found is not None:
        box, d2 = found
        out[box] = d2 <= radius * radius
    return out


def erode_binary(mask: np.ndarray, radius: int) -> np.ndarray:
    """Erode a boolean mask with the ball of ``radius``; outside the image does not count as background."""
    out = np.zeros(mask.shape, dtype=bool)
    found = _erosion_depth(mask)
    if found is not None:
        box, d2 = found
        out[box] = d2 > radius * radius
    return out


def _dilate_labels(labels: np.ndarray, classes: np.ndarray, radius: int) -> np.ndarray:
    """Class-wise dilation; contested voxels go to the nearest class, ties to the lower label."""
    out = labels.copy()
    best = np.full(labels.shape, np.inf, dtype=np.float32)  # exact: only integers <= radius**2 are stored
    for label in classes:  # ascending, and a later class must be strictly nearer: ties stay with the lower label
        box, d2 = _dilation_distance(labels == label, radius)
        claim = (d2 <= radius * radius) & (d2 < best[box])
        best[box][claim] = d2[claim]
        out[box][claim] = label
    return out


def _erode_labels(labels: np.ndarray, classes: np.ndarray, radius: int) -> np.ndarray:
    """Class-wise erosion; eroded voxels become background."""
    out = np.zeros_like(labels)
    for label in classes:
        out[erode_binary(labels == label, radius)] = label
    return out


def _check_arguments(mask: np.ndarray, operation: str, radius: int) -> None:
    """Raise on an unknown operation, a radius that is not an integer >= 0, or a non-integer mask."""
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0 (voxels), got {radius!r}")
    if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)):
        raise TypeError(f"mask must be a boolean mask or an integer label map, got dtype {mask.dtype}")


def perturb_mask(mask: np.ndarray, operation: str, radius: int) -> np.ndarray:
    """Dilate or erode a mask (bool) or label map (integers, 0 = background) with a ball of ``radius`` voxels.

    Works for any number of dimensions (2D and 3D in practice) and returns a new array of the input's
    dtype. The exact rules (ball, image border, classes competing for a voxel) are in the module docstring.
    """
    mask = np.asarray(mask)
    _check_arguments(mask, operation, radius)
    radius = int(radius)
    if radius == 0:
        return mask.copy()
    if mask.dtype == bool:
        return dilate_binary(mask, radius) if operation == "dilate" else erode_binary(mask, radius)
    classes = np.unique(mask)
    classes = classes[classes != 0]
    if operation == "dilate":
        return _dilate_labels(mask, classes, radius)
    return _erode_labels(mask, classes, radius)


def largest_nonempty_erosion_radius(mask: np.ndarray) -> int | None:
    """Largest radius whose erosion keeps at least one voxel of every class present in ``mask``.

    ``mask`` is a boolean mask or an integer label map. Returns None when no radius empties any class
    (nothing to erode, or a class with no background anywhere in the image).
    """
    mask = np.asarray(mask)
    masks = [mask] if mask.dtype == bool else [mask == c for c in np.unique(mask) if c != 0]
    limits = []
    for class_mask in masks:
        found = _erosion_depth(class_mask)
        if found is None:
            continue
        deepest = float(found[1].max())
        if math.isfinite(deepest):
            # a voxel at squared depth D survives radius r iff r*r < D
            limits.append(math.isqrt(int(round(deepest)) - 1))
    return min(limits) if limits else None
