"""Voxel grids in millimetres and seeded smooth random fields on them.

Everything the generator draws (shape deformations, textures, the bias field) is a *smooth random
field*: Gaussian random numbers on a coarse lattice, interpolated onto the voxel grid with separable
Gaussian radial basis functions. Separability makes this three small matrix products instead of a
3D filter, so a 96^3 field costs a few milliseconds, and the lattice spacing sets the correlation
length in millimetres, which keeps anisotropic grids physically consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOAT = np.float32


@dataclass(frozen=True)
class Grid:
    """A voxel grid in nnU-Net array order (z, y, x); coordinates are millimetres from its centre."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    def axis_mm(self, axis: int) -> np.ndarray:
        """Voxel-centre coordinates (mm) along ``axis``, centred on zero."""
        n = self.shape[axis]
        return ((np.arange(n, dtype=FLOAT) - (n - 1) / 2) * self.spacing[axis]).astype(FLOAT)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three coordinate arrays, broadcastable to ``shape`` (no full-size copies)."""
        z, y, x = (self.axis_mm(a) for a in range(3))
        return z[:, None, None], y[None, :, None], x[None, None, :]

    @property
    def half_extent(self) -> np.ndarray:
        """Half the field of view per axis (mm)."""
        return np.array([n * s / 2 for n, s in zip(self.shape, self.spacing)])

    @property
    def active(self) -> np.ndarray:
        """1.0 for axes with more than one voxel, 0.0 for a singleton axis (single-slice volumes)."""
        return np.array([float(n > 1) for n in self.shape])


def smooth_fields(rng: np.random.Generator, grid: Grid, scale_mm: float, count: int = 1) -> np.ndarray:
    """``count`` independent smooth random fields of shape ``(count, *grid.shape)``, float32.

    Each field has zero mean and unit variance at every voxel; ``scale_mm`` is the lattice spacing
    and RBF width, i.e. roughly the size of a bump.
    """
    weights = [_rbf_weights(grid, axis, scale_mm) for axis in range(3)]
    lattice = rng.standard_normal((count, *(w.shape[1] for w in weights))).astype(FLOAT)
    fields = np.einsum("ia,jb,kc,fabc->fijk", *weights, lattice, optimize="optimal")
    return fields.astype(FLOAT, copy=False)


def _rbf_weights(grid: Grid, axis: int, scale_mm: float) -> np.ndarray:
    """Interpolation matrix (voxels x lattice points) along one axis, rows scaled to unit norm.

    Unit row norm makes the interpolated field's variance exactly one everywhere, since the lattice
    values are independent standard normals and the weights factorise over the axes.
    """
    coords = grid.axis_mm(axis)
    reach = np.abs(coords).max() + 2 * scale_mm
    nodes = np.arange(-np.ceil(reach / scale_mm), np.ceil(reach / scale_mm) + 1) * scale_mm
    weights = np.exp(-0.5 * ((coords[:, None] - nodes[None, :]) / scale_mm) ** 2)
    return (weights / np.linalg.norm(weights, axis=1, keepdims=True)).astype(FLOAT)
