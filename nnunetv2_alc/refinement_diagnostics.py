"""How much Eq. 5-7 actually do, per training epoch (docs/method.md, "Diagnostics").

Three numbers tell whether the refinement and the selection have any effect:

- the entropy of the pass weights ``w`` of Eq. 5 relative to ``log m``, averaged over LQ voxels: 1 means
  uniform weights (Eq. 6 then equals ``argmax Psi_avg``), lower means some passes dominate;
- the fraction of LQ voxels where the refined label (Eq. 6) differs from the pseudo label ``argmax Psi_avg``;
- the spread of ``U`` (Eq. 7) across LQ samples, and, where clean labels exist, the Spearman rank
  correlation between ``U`` and the Dice of the sample's refined label to its clean label (negative: the
  more certain samples have the better refined labels, which is what selection relies on).

Where clean labels exist, :func:`selection_check` also asks whether selection selects: the Dice to the
clean label of the noisy and of the refined label, for the selected and for the unselected LQ samples,
and how often the selection agrees with an oracle that selects a sample exactly when its refined label
beats its noisy one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr
from torch import Tensor


def weight_entropy_sum(weights: Tensor) -> float:
    """Sum over voxels of ``H(w) / log m`` for weights of shape ``(m, B, *spatial)``; NaN for ``m == 1``.

    ``H(w) = -sum_j w_j log w_j``; divided by the number of voxels this is the mean relative entropy.
    """
    num_passes = weights.shape[0]
    if num_passes < 2:
        return float("nan")
    w = weights.float()
    entropy = -(w * w.clamp_min(1e-12).log()).sum(dim=0)
    return float(entropy.sum()) / math.log(num_passes)


def changed_voxels(refined: Tensor, pseudo: Tensor) -> int:
    """Number of voxels where the refined and the pseudo labels differ."""
    if refined.shape != pseudo.shape:
        raise ValueError(f"shapes differ: refined {tuple(refined.shape)}, pseudo {tuple(pseudo.shape)}")
    return int((refined != pseudo).sum())


def rank_correlation(uncertainty: np.ndarray, quality: np.ndarray) -> float:
    """Spearman's rho between per-sample ``U`` and a per-sample label quality; NaN if undefined.

    Undefined: fewer than 3 pairs with a finite quality, or either side constant.
    """
    uncertainty, quality = np.asarray(uncertainty, float), np.asarray(quality, float)
    if uncertainty.shape != quality.shape:
        raise ValueError(f"shapes differ: uncertainty {uncertainty.shape}, quality {quality.shape}")
    finite = np.isfinite(uncertainty) & np.isfinite(quality)
    u, q = uncertainty[finite], quality[finite]
    if u.size < 3 or np.ptp(u) == 0 or np.ptp(q) == 0:
        return float("nan")
    return float(spearmanr(u, q).statistic)


def spread(values: np.ndarray) -> float:
    """Population standard deviation of the finite values; NaN when there are none."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.std()) if values.size else float("nan")


SELECTION_CHECK_KEYS = ("label_dice_noisy_selected", "label_dice_refined_selected", "label_dice_noisy_unselected",
                        "label_dice_refined_unselected", "selection_oracle_agreement")


def selection_check(noisy_dice: np.ndarray, refined_dice: np.ndarray, selected: np.ndarray) -> dict[str, float]:
    """Per-sample Dice means of the noisy and refined labels by selection, and the agreement with the oracle.

    Inputs are per LQ sample: the Dice to the clean label of its noisy and of its refined label, and whether
    it was selected (trained on the refined label). Samples whose Dice is undefined (NaN: no foreground in
    either label) are left out; a mean over no sample is NaN. The oracle selects a sample when its refined
    Dice is higher than its noisy Dice; the agreement is the fraction of samples where selection and oracle
    decide alike.
    """
    noisy, refined = np.asarray(noisy_dice, float), np.asarray(refined_dice, float)
    selected = np.asarray(selected, bool)
    if not noisy.shape == refined.shape == selected.shape:
        raise ValueError(f"shapes differ: noisy {noisy.shape}, refined {refined.shape}, selected {selected.shape}")
    finite = np.isfinite(noisy) & np.isfinite(refined)
    noisy, refined, selected = noisy[finite], refined[finite], selected[finite]

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float("nan")

    return {"label_dice_noisy_selected": mean(noisy[selected]), "label_dice_refined_selected": mean(refined[selected]),
            "label_dice_noisy_unselected": mean(noisy[~selected]),
            "label_dice_refined_unselected": mean(refined[~selected]),
            "selection_oracle_agreement": mean((refined > noisy) == selected)}
