"""ALC whose single HQ sample is always forced to contain foreground (a diagnostic, not a method).

At nnU-Net's planned batch of 2 (1 HQ + 1 LQ) ALC's HQ group holds one sample, forced to foreground with
probability 1/3 (``nnunetv2_alc/batch_composition.py``). Stock nnU-Net forces the last of its two
samples, so forcing the HQ one is the obvious alternative; this variant measures it
(docs/method.md, "Data and batches"). The validation batches, composed the same way, get it too: that
moves the EMA pseudo Dice and ``checkpoint_best``, not what ``checkpoint_final`` predicts. Any other
composition is ALC's.
"""

from nnunetv2_alc.batch_composition import local_composition
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_hqforced(nnUNetTrainerALC):
    display_name = "ALC, HQ sample forced"  # in tables, plots and logs

    def _composed_loader(self, dataset, patch_size, hq_keys, lq_keys, num_hq: int, num_lq: int, transforms):
        loader = super()._composed_loader(dataset, patch_size, hq_keys, lq_keys, num_hq, num_lq, transforms)
        if num_hq == 1 and num_lq == 1 and local_composition(num_hq, num_lq, *self._world())[1] == 1:
            loader.plan[-1] = True  # this rank holds the HQ sample, last in the layout [LQ, HQ]
        return loader
