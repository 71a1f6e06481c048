"""Training batches of ``B_n`` LQ followed by ``B_h`` HQ samples (METHOD.md, "Data").

The global batch is laid out as ``[LQ] * B_n + [HQ] * B_h``. Under DDP every rank takes the slice of
that layout nnU-Net would give it (the first ``B % world_size`` ranks get one sample more), so the
global batch looks the same on any number of GPUs. HQ samples come last because nnU-Net forces
foreground into the last ~33% of a batch: with the usual batch of 2 the HQ patch is the one that is
guaranteed to contain foreground. Everything else (patch sampling, augmentation, workers) is nnU-Net's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader


def rank_slice(global_batch_size: int, world_size: int, rank: int) -> slice:
    """The positions of the global batch that ``rank`` loads, following nnU-Net's DDP batch split."""
    sizes = [global_batch_size // world_size + (1 if r < global_batch_size % world_size else 0) for r in range(world_size)]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def local_composition(num_hq: int, num_lq: int, world_size: int = 1, rank: int = 0) -> tuple[int, int]:
    """(LQ samples, HQ samples) this rank loads, from the global (B_h, B_n)."""
    layout = np.array([False] * num_lq + [True] * num_hq)[rank_slice(num_hq + num_lq, world_size, rank)]
    return int((~layout).sum()), int(layout.sum())


class HQLQDataLoader(nnUNetDataLoader):
    """nnU-Net's data loader whose batches hold ``num_lq`` LQ cases, then the HQ cases.

    Cases are drawn uniformly with replacement within each group, as nnU-Net draws from all cases.
    """

    def __init__(self, data, batch_size: int, patch_size, final_patch_size, label_manager,
                 hq_keys: Sequence[str], lq_keys: Sequence[str], num_lq: int, **kwargs):
        super().__init__(data, batch_size, patch_size, final_patch_size, label_manager, **kwargs)
        num_hq = batch_size - num_lq
        if not 0 <= num_lq <= batch_size:
            raise ValueError(f"num_lq={num_lq} must lie in [0, batch_size={batch_size}]")
        if num_hq and not hq_keys:
            raise ValueError("the batch needs HQ samples but there are no HQ training cases")
        if num_lq and not lq_keys:
            raise ValueError("the batch needs LQ samples but there are no LQ training cases")
        self.hq_keys = list(hq_keys)
        self.lq_keys = list(lq_keys)
        self.num_lq = num_lq

    def get_indices(self):
        lq = np.random.choice(self.lq_keys, self.num_lq, replace=True) if self.num_lq else []
        hq = np.random.choice(self.hq_keys, self.batch_size - self.num_lq, replace=True) if self.batch_size > self.num_lq else []
        return [str(k) for k in lq] + [str(k) for k in hq]
