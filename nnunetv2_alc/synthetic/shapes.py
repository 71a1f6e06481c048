"""Random anatomy: a bent, deformed ellipsoid target, a neighbour touching it, distractors, a body.

Every structure is a :class:`Blob`, a bent ellipsoid evaluated analytically at *warped* voxel
coordinates; one smooth random displacement field per case (see :mod:`.fields`) warps all of them,
which turns the ellipsoids into irregular organ-like shapes without any resampling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .fields import FLOAT, Grid, smooth_fields
from .presets import Geometry, Range

_BEND = 0.3  # max |bend|: offset of the second local axis at the tip of the long axis / long semi-axis
_CANDIDATES = 256  # distractor positions tried per distractor
_CENTRE_REACH = 0.8  # distractor centres lie in this fraction of the half field of view


@dataclass(frozen=True)
class Blob:
    """A bent ellipsoid: centre (mm), local axes as rotation columns, semi-axes (mm), bend."""

    centre: np.ndarray
    rotation: np.ndarray
    semi_axes: np.ndarray
    bend: float = 0.0

    def inside(self, coords: tuple[np.ndarray, ...]) -> np.ndarray:
        """Boolean mask of the voxels whose (warped) coordinates lie inside the blob."""
        rel = [c - float(m) for c, m in zip(coords, self.centre)]
        local = [sum(float(self.rotation[j, i]) * rel[j] for j in range(3)) for i in range(3)]
        if self.bend:
            local[1] = local[1] - self.bend * local[0] ** 2 / float(self.semi_axes[0])
        level = sum((u / float(a)) ** 2 for u, a in zip(local, self.semi_axes))
        return level < 1.0

    def support(self, directions: np.ndarray) -> np.ndarray:
        """Extent (mm) of the unbent ellipsoid from its centre along unit ``directions`` (n, 3)."""
        return np.linalg.norm((directions @ self.rotation) * self.semi_axes, axis=-1)


@dataclass(frozen=True)
class Anatomy:
    """The structures of one case and the displacement field that deforms them."""

    body: Blob
    target: Blob
    neighbour: Blob
    distractors: tuple[Blob, ...]
    displacement: np.ndarray  # (3, *grid.shape), mm
    base_size: float  # the target's base semi-axis (mm)


@dataclass(frozen=True)
class Masks:
    """Disjoint boolean masks (target wins over neighbour, both over distractors)."""

    body: np.ndarray
    target: np.ndarray
    neighbour: np.ndarray
    distractors: np.ndarray


def sample_anatomy(rng: np.random.Generator, grid: Grid, geometry: Geometry) -> Anatomy:
    """Draw the structures of one case; only axes with more than one voxel get offsets or tilts."""
    active = grid.active
    half = grid.half_extent
    base = rng.uniform(*geometry.target_size) * float(np.min(half[active > 0]))

    body = Blob(np.zeros(3), np.eye(3), np.where(active > 0, half * rng.uniform(1.05, 1.2, 3), 1.0))
    target = replace(
        _blob_at_origin(rng, base, geometry.elongation, active),
        centre=rng.uniform(-0.15, 0.15, 3) * half * active,
        bend=rng.uniform(-_BEND, _BEND),
    )
    neighbour_shape = _blob_at_origin(rng, base * rng.uniform(*geometry.neighbour_size), (1.0, 1.5), active)
    neighbour = _touching(rng, target, neighbour_shape, active)
    distractors: list[Blob] = []
    for _ in range(rng.integers(geometry.distractors[0], geometry.distractors[1] + 1)):
        shape = _blob_at_origin(rng, base * rng.uniform(*geometry.distractor_size), (1.0, 1.4), active)
        distractors.append(_clear_of(rng, shape, [target, neighbour, *distractors], half, active))

    scale = 0.8 * base
    displacement = geometry.deformation * base * smooth_fields(rng, grid, scale, 3)
    displacement *= active.astype(FLOAT)[:, None, None, None]
    return Anatomy(body, target, neighbour, tuple(distractors), displacement, base)


def rasterise(anatomy: Anatomy, grid: Grid) -> Masks:
    """Evaluate every structure on the warped voxel grid."""
    coords = tuple(c + d for c, d in zip(grid.coordinates(), anatomy.displacement))
    target = anatomy.target.inside(coords)
    neighbour = anatomy.neighbour.inside(coords) & ~target
    distractors = np.zeros(grid.shape, dtype=bool)
    for blob in anatomy.distractors:
        distractors |= blob.inside(coords)
    body = anatomy.body.inside(coords) | target | neighbour
    return Masks(body, target, neighbour, distractors & ~target & ~neighbour & body)


def random_direction(rng: np.random.Generator, active: np.ndarray, count: int | None = None) -> np.ndarray:
    """Uniform random unit vector(s) restricted to the active axes."""
    vectors = rng.standard_normal((1 if count is None else count, 3)) * active
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors[0] if count is None else vectors


def _random_rotation(rng: np.random.Generator, active: np.ndarray) -> np.ndarray:
    """A uniform random 3D rotation, or an in-plane one (long axis in plane) for single-slice grids."""
    if active.all():
        q = rng.standard_normal(4)
        w, x, y, z = q / np.linalg.norm(q)
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
    first = random_direction(rng, active)
    second = np.cross(1.0 - active, first)
    return np.stack([first, second, 1.0 - active], axis=1)


def _blob_at_origin(rng: np.random.Generator, size: float, elongation: Range, active: np.ndarray) -> Blob:
    """An unbent blob at the origin: base semi-axis ``size``, long axis ``size * elongation``, random tilt."""
    semi_axes = size * np.array([rng.uniform(*elongation), 1.0, rng.uniform(0.8, 1.0)])
    return Blob(np.zeros(3), _random_rotation(rng, active), semi_axes)


def _touching(rng: np.random.Generator, target: Blob, blob: Blob, active: np.ndarray) -> Blob:
    """``blob`` moved against ``target`` along a random direction, overlapping it by half its depth."""
    direction = random_direction(rng, active)
    distance = target.support(direction[None])[0] + 0.5 * blob.support(direction[None])[0]
    return replace(blob, centre=target.centre + distance * direction)


def _clear_of(rng: np.random.Generator, blob: Blob, others: list[Blob], half: np.ndarray, active: np.ndarray) -> Blob:
    """``blob`` moved well inside the body, clear of ``others`` (the best of many tries if none is clear)."""
    radii = _CENTRE_REACH * rng.uniform(0.0, 1.0, _CANDIDATES) ** (1.0 / active.sum())
    centres = random_direction(rng, active, _CANDIDATES) * radii[:, None] * half
    clearance = np.full(_CANDIDATES, np.inf)
    for other in others:
        offset = centres - other.centre
        distance = np.linalg.norm(offset, axis=1)
        direction = offset / np.maximum(distance, 1e-6)[:, None]
        needed = 1.15 * (other.support(direction) + blob.support(direction)) + 2.0
        clearance = np.minimum(clearance, distance - needed)
    clear = np.flatnonzero(clearance > 0)
    best = clear[0] if clear.size else int(np.argmax(clearance))
    return replace(blob, centre=centres[best])
