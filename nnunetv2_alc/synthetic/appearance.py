"""Intensities of one case: textured tissues, a faded target edge, partial volume, bias, Rician noise.

Background tissue sits at 1.0 and air at 0. The target is brighter by ``contrast``; the neighbour
and the distractors are within a few percent of the target level, so a global intensity threshold
cannot tell them apart from it. On one side the target fades towards the background level. The
image is then blurred slightly (partial volume), multiplied by a smooth bias field and a random
gain, and corrupted with Rician noise (magnitude of a complex Gaussian-noisy signal), as in MRI.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .fields import FLOAT, Grid, smooth_fields
from .presets import Appearance
from .shapes import Anatomy, Masks, random_direction

_FINE_TEXTURE_MM = 1.5
_COARSE_TEXTURE_MM = 4.0
_PARTIAL_VOLUME_MM = 0.7
_GAIN = (50.0, 150.0)


def render(rng: np.random.Generator, grid: Grid, anatomy: Anatomy, masks: Masks, look: Appearance) -> np.ndarray:
    """The float32 image of one case."""
    contrast = rng.uniform(*look.contrast)
    target_level = 1.0 + contrast
    neighbour_level = target_level * (1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(*look.neighbour_offset))
    distractor_level = target_level * (1.0 + rng.uniform(-look.distractor_offset, look.distractor_offset))
    fine = 1.0 + look.texture * smooth_fields(rng, grid, _FINE_TEXTURE_MM)[0]
    coarse = 1.0 + look.texture * smooth_fields(rng, grid, _COARSE_TEXTURE_MM)[0]

    image = np.where(masks.body, coarse, FLOAT(0.0))
    image[masks.neighbour] = neighbour_level * coarse[masks.neighbour]
    image[masks.distractors] = distractor_level * fine[masks.distractors]
    fade = _edge_fade(rng, grid, anatomy, rng.uniform(*look.edge_fade))
    image[masks.target] = (1.0 + contrast * fade[masks.target]) * fine[masks.target]

    sigma = [_PARTIAL_VOLUME_MM / s if n > 1 else 0.0 for n, s in zip(grid.shape, grid.spacing)]
    image = gaussian_filter(image, sigma)
    half_fov = float(np.max(grid.half_extent))
    image *= np.exp(look.bias * smooth_fields(rng, grid, half_fov)[0])
    gain = rng.uniform(*_GAIN)
    noise_sd = rng.uniform(*look.noise) * contrast
    real = image + rng.normal(0.0, noise_sd, grid.shape).astype(FLOAT)
    imaginary = rng.normal(0.0, noise_sd, grid.shape).astype(FLOAT)
    return (gain * np.sqrt(real * real + imaginary * imaginary)).astype(FLOAT)


def _edge_fade(rng: np.random.Generator, grid: Grid, anatomy: Anatomy, strength: float) -> np.ndarray:
    """Contrast weight, 1 on one side of the target falling smoothly to ``1 - strength`` on the other."""
    direction = random_direction(rng, grid.active)
    projection = sum(float(d) * (c - float(m)) for d, c, m in zip(direction, grid.coordinates(), anatomy.target.centre))
    ramp = 1.0 / (1.0 + np.exp(-projection / (0.35 * anatomy.base_size)))
    return (1.0 - strength * ramp).astype(FLOAT)
