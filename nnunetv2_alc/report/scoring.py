"""Per-case label-quality scores from the teacher's passes: refined label (Eq. 5-6) and uncertainty (Eq. 7)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nnunetv2_alc.dice import label_dice
from nnunetv2_alc.label_correction import refine_labels, sample_uncertainty

# voxels per slab: bounds the float32 temporaries of refine_labels / sample_uncertainty to a few of
# m * C * SLAB_VOXELS * 4 bytes, whatever the image size
SLAB_VOXELS = 2 ** 21


@dataclass(frozen=True)
class CaseScore:
    """The report's row of one LQ case."""

    case: str
    dice_given_vs_refined: float  # mean foreground Dice of the given (LQ) label and Y_ref
    uncertainty: float  # U (Eq. 7) over the whole image
    changed_fraction: float  # fraction of voxels where Y_ref differs from the given label
    disagreement_slice: int  # index along the first array axis with the most differing voxels
    dice_given_vs_clean: Optional[float] = None  # only when the dataset keeps clean labels (labelsTr_clean)
    dice_refined_vs_clean: Optional[float] = None


def refine_and_score(probs: np.ndarray) -> tuple[np.ndarray, float]:
    """``(Y_ref, U)`` of one case from its passes ``probs`` of shape ``(m, C, *spatial)``.

    ``Y_ref = argmax_c sum_j w_j Psi_j,c`` (Eq. 6, weights of Eq. 5) per voxel, and
    ``U = mean over voxels of (1/m) sum_j ||Psi_j - Psi_avg||^2`` (Eq. 7). Both are per-voxel
    quantities (U a mean of them), so they are computed slab by slab along the first spatial axis.
    """
    spatial = probs.shape[2:]
    slice_voxels = math.prod(spatial[1:])
    step = max(1, SLAB_VOXELS // max(1, slice_voxels))
    refined = np.empty(spatial, dtype=np.uint8 if probs.shape[1] <= 256 else np.uint16)
    total = 0.0
    for start in range(0, spatial[0], step):
        slab = torch.from_numpy(probs[:, None, :, start:start + step])  # (m, B=1, C, slab, ...)
        refined[start:start + step] = refine_labels(slab)[0].numpy()
        total += float(sample_uncertainty(slab)[0]) * slab[0, 0, 0].numel()
    return refined, total / math.prod(spatial)


def score_case(case: str, given: np.ndarray, refined: np.ndarray, uncertainty: float,
               clean: Optional[np.ndarray] = None) -> CaseScore:
    """Compare the given label with ``Y_ref`` (and both with the clean label, when there is one)."""
    differs = given != refined
    per_slice = differs.reshape(differs.shape[0], -1).sum(axis=1)
    if not per_slice.any():  # no disagreement: show the slice with the most foreground
        per_slice = (given > 0).reshape(given.shape[0], -1).sum(axis=1)
    return CaseScore(
        case=case,
        dice_given_vs_refined=label_dice(given, refined),
        uncertainty=uncertainty,
        changed_fraction=float(differs.mean()),
        disagreement_slice=int(per_slice.argmax()),
        dice_given_vs_clean=None if clean is None else label_dice(clean, given),
        dice_refined_vs_clean=None if clean is None else label_dice(clean, refined),
    )


def rank(scores: list[CaseScore]) -> list[CaseScore]:
    """Most suspicious first: lowest Dice between given and refined label, then highest uncertainty."""
    return sorted(scores, key=lambda s: (s.dice_given_vs_refined, -s.uncertainty, s.case))
