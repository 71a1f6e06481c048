"""One synthetic case (image and label), reproducible from (seed, split, case index)."""

from __future__ import annotations

import numpy as np

from .appearance import render
from .fields import Grid
from .presets import Preset
from .shapes import rasterise, sample_anatomy

SPLITS = ("train", "test")


def case_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The case's own generator: changing the number of cases never changes the other cases."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def generate_case(preset: Preset, seed: int, split: str, index: int,
                  num_classes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(image float32, label uint8)`` in array order (z, y, x).

    Label 1 is the target; with ``num_classes=2`` the neighbouring structure is label 2. The image does
    not depend on ``num_classes``.
    """
    rng = case_rng(seed, split, index)
    grid = Grid(preset.shape, preset.spacing)
    anatomy = sample_anatomy(rng, grid, preset.geometry)
    masks = rasterise(anatomy, grid)
    image = render(rng, grid, anatomy, masks, preset.appearance)
    label = masks.target.astype(np.uint8)
    if num_classes == 2:
        label[masks.neighbour] = 2
    return image, label
