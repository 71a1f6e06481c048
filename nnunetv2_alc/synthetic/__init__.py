"""Seeded synthetic noisy-label datasets in nnU-Net v2 raw format (see docs/synthetic.md).

``make_synthetic_dataset`` writes a preset's images and clean labels, then tags the training cases
HQ/LQ and corrupts the LQ labels with ``noise_generation.make_noisy``; ``main`` is the
``nnUNetv2_alc_synthetic`` command.
"""

from .case import generate_case
from .cli import main
from .dataset import SyntheticDatasetError, make_synthetic_dataset
from .difficulty import best_threshold_dice
from .presets import PRESETS, Preset

__all__ = [
    "PRESETS",
    "Preset",
    "SyntheticDatasetError",
    "best_threshold_dice",
    "generate_case",
    "main",
    "make_synthetic_dataset",
]
