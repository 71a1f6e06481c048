"""Foreground volume of one label map over another's: how much a noisy label or a prediction over- or
under-segments, a measure Dice does not show (both a mask twice the reference and one of 0.5 times it, nested
in it, score 0.67).

Used by the noise manifest (``noise_generation.make_noisy``) and by the background counts of the evaluation
(``nnunetv2_alc.evaluation.background``). NumPy only, so that importing it costs the command-line tools nothing.
"""

from __future__ import annotations

import numpy as np


def foreground_volume_ratio(reference: np.ndarray, other: np.ndarray) -> float:
    """Foreground (non-zero) voxels of ``other`` over those of ``reference``; 1.0 for an empty reference.

    A noisy label of an empty clean one is empty too (neither dilation nor erosion adds a voxel to it), so
    the noise manifest's ratio of such a case is 1; the background counts leave those cases out.
    """
    reference_voxels = np.count_nonzero(reference)
    return float(np.count_nonzero(other) / reference_voxels) if reference_voxels else 1.0
