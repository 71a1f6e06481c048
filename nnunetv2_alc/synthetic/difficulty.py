"""How hard a case is for a trivial segmenter: the Dice of the best single intensity threshold."""

from __future__ import annotations

import numpy as np

from nnunetv2_alc.dice import dice_score


def best_threshold_dice(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """``(dice, threshold)`` of the best rule ``image >= threshold`` against the boolean ``mask``.

    Every threshold between two sorted intensities is scored at once (cumulative true positives over
    the voxels sorted by decreasing intensity), so this is an exact oracle: it picks the threshold
    with the ground truth in hand, which no real thresholding method could do.
    """
    order = np.argsort(image, axis=None)[::-1]
    true_positives = np.cumsum(mask.ravel()[order], dtype=np.int64)
    predicted = np.arange(1, order.size + 1)  # never empty, so an empty mask scores 0 everywhere
    dice = dice_score(true_positives, predicted - true_positives, int(mask.sum()) - true_positives)
    best = int(np.argmax(dice))
    return float(dice[best]), float(image.ravel()[order[best]])
