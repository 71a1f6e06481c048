"""ALC with an oracle (a diagnostic, not a method): selected LQ samples train on their clean label.

Everything else is ALC's (selection by Eq. 7, L_n on the unselected noisy labels, L_c), so the gap
between this trainer and ALC is what a perfect label refinement (Eq. 5-6) could add at most. Needs the
clean label of every LQ training case beside the noisy ones (``labelsTr_clean/`` in nnUNet_raw, as
``nnUNetv2_alc_make_noisy`` keeps them); docs/benchmarks.md, "Real data".
"""

from torch import Tensor

from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_oracle(nnUNetTrainerALC):
    display_name = "ALC, oracle labels"  # in tables, plots and logs
    needs_clean_labels = True  # refused at the start unless every LQ case has one

    def corrected_labels(self, passes: TeacherPasses) -> Tensor:
        # train_step sets lq_clean_labels (the clean labels of this batch's LQ samples) before the loss terms
        if self.lq_clean_labels is None:  # None would silently train Mean Teacher instead
            raise RuntimeError(f"{type(self).__name__}: no clean labels reached this training step (a cascade, or "
                               "label-correction monitoring off); the oracle needs labelsTr_clean/")
        return self.lq_clean_labels
