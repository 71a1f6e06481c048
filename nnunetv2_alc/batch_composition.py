"""Batches of ``B_n`` LQ followed by ``B_h`` HQ samples, foreground forced within each group (docs/method.md, "Data").

The global batch is laid out as ``[LQ] * B_n + [HQ] * B_h``. Under DDP every rank takes the slice of
that layout nnU-Net would give it (the first ``B % world_size`` ranks get one sample more), so the
global batch looks the same on any number of GPUs.

Foreground oversampling follows nnU-Net's rule within each group instead of over the whole batch: of a
group of ``n`` samples the positions ``i >= round(n * (1 - p))`` are forced to contain foreground
(``p`` = nnU-Net's ``oversample_foreground_percent``, 0.33), so LQ and HQ patches are forced at nnU-Net's
rate alike, and each group also gets background-only patches. A group of one sample is forced with
probability ``p`` (nnU-Net's probabilistic oversampling), since the rule would never force it. With
nnU-Net's ``probabilistic_oversampling`` every position is forced with probability ``p``.
Everything else (patch sampling, augmentation, workers) is nnU-Net's.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader


def rank_slice(global_batch_size: int, world_size: int, rank: int) -> slice:
    """The positions of the global batch that ``rank`` loads, following nnU-Net's DDP batch split."""
    sizes = [global_batch_size // world_size + (1 if r < global_batch_size % world_size else 0)
             for r in range(world_size)]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def local_composition(num_hq: int, num_lq: int, world_size: int = 1, rank: int = 0) -> tuple[int, int]:
    """(LQ samples, HQ samples) this rank loads, from the global (B_h, B_n)."""
    layout = np.array([False] * num_lq + [True] * num_hq)[rank_slice(num_hq + num_lq, world_size, rank)]
    return int((~layout).sum()), int(layout.sum())


def composition_warning(num_hq: int, num_lq: int, batch_dice: bool, world_size: int = 1) -> Optional[str]:
    """The warning for a batch composition on which ALC was measured weak on the Left Atrium, None otherwise.

    Fewer than half as many HQ as LQ samples a step (e.g. the paper's 2 + 10): ALC's HQ term sees far fewer
    trusted samples than H-Sup at the same batch and iterations, which cost several Dice points. An HQ term
    of one sample on some GPU (each GPU computes its own Dice) under nnU-Net's Dice over the batch
    (``batch_dice``: its 2d configurations, and ``3d_fullres`` where it also plans a ``3d_lowres``): a patch
    without foreground then no longer pays in the Dice for the foreground it predicts. Measured at 1 HQ + 1 LQ
    in 2d: ALC level with H-Sup in Dice, foreground on most organ-free slices. Without batch Dice (LA's
    ``3d_fullres``) ALC at 1 + 1 was not weak (docs/method.md, "Data and batches").
    """
    if num_lq and 2 * num_hq < num_lq:
        return (f"WARNING: only {num_hq} of the {num_hq + num_lq} samples of each batch are HQ. On real data (Left "
                "Atrium) this kind of composition ended several Dice points below H-Sup and below half the batch "
                "HQ, at the same iterations (docs/method.md, \"Data and batches\"). ALC_HQ_SHARE=0.5, the default, "
                "gives the HQ cases half of each batch.")
    lone_hq = any(local_composition(num_hq, num_lq, world_size, rank)[1] == 1 for rank in range(world_size))
    if num_lq and lone_hq and batch_dice:
        where = "on some GPU " if world_size > 1 else ""
        return (f"WARNING: each batch holds {num_hq} HQ + {num_lq} LQ samples, so the HQ term holds one sample {where}"
                "while this configuration computes the Dice over the batch (batch_dice). On real data (Left Atrium, "
                "2d) ALC at 1 HQ + 1 LQ was no better than H-Sup in Dice and marked foreground on most organ-free "
                "slices, where at 6 HQ + 6 LQ it was 2.6 points above H-Sup (docs/method.md, \"Data and batches\"). "
                "If memory allows, train a configuration with a larger batch_size (README, \"First, the batch\").")
    return None


def group_foreground_plan(group_size: int, percent: float, probabilistic: bool = False) -> list[Optional[bool]]:
    """Per position of one group: forced to foreground (True), not (False) or with probability ``percent`` (None)."""
    if probabilistic or group_size == 1:
        return [None] * group_size
    first_forced = round(group_size * (1 - percent))
    return [i >= first_forced for i in range(group_size)]


def foreground_plan(num_hq: int, num_lq: int, percent: float, probabilistic: bool = False,
                    world_size: int = 1, rank: int = 0) -> list[Optional[bool]]:
    """The oversampling of the positions ``rank`` loads (see the module docstring), from the global (B_h, B_n)."""
    plan = group_foreground_plan(num_lq, percent, probabilistic) + group_foreground_plan(num_hq, percent, probabilistic)
    return plan[rank_slice(num_hq + num_lq, world_size, rank)]


class HQLQDataLoader(nnUNetDataLoader):
    """nnU-Net's data loader whose batches hold ``num_lq`` LQ cases, then the HQ cases.

    Cases are drawn uniformly with replacement within each group, as nnU-Net draws from all cases.
    ``plan`` (one entry per batch position, see :func:`foreground_plan`) says which patches are forced to
    contain foreground; it replaces nnU-Net's ``oversample_foreground_percent`` rule.
    """

    def __init__(self, data, batch_size: int, patch_size, final_patch_size, label_manager,
                 hq_keys: Sequence[str], lq_keys: Sequence[str], num_lq: int, plan: Sequence[Optional[bool]],
                 oversample_foreground_percent: float, **kwargs):
        super().__init__(data, batch_size, patch_size, final_patch_size, label_manager,
                         oversample_foreground_percent=oversample_foreground_percent, **kwargs)
        num_hq = batch_size - num_lq
        if not 0 <= num_lq <= batch_size:
            raise ValueError(f"num_lq={num_lq} must lie in [0, batch_size={batch_size}]")
        if len(plan) != batch_size:
            raise ValueError(f"the foreground plan has {len(plan)} positions for a batch of {batch_size}")
        if num_hq and not hq_keys:
            raise ValueError("the batch needs HQ samples but there are no HQ cases")
        if num_lq and not lq_keys:
            raise ValueError("the batch needs LQ samples but there are no LQ cases")
        self.hq_keys = list(hq_keys)
        self.lq_keys = list(lq_keys)
        self.num_lq = num_lq
        self.plan = list(plan)
        self.get_do_oversample = self._planned_oversample  # nnU-Net binds its rule per instance

    def _planned_oversample(self, sample_idx: int) -> bool:
        forced = self.plan[sample_idx]
        return bool(np.random.uniform() < self.oversample_foreground_percent) if forced is None else forced

    def get_indices(self):
        lq = np.random.choice(self.lq_keys, self.num_lq, replace=True) if self.num_lq else []
        num_hq = self.batch_size - self.num_lq
        hq = np.random.choice(self.hq_keys, num_hq, replace=True) if num_hq > 0 else []
        return [str(k) for k in lq] + [str(k) for k in hq]
