"""Mean Teacher baseline: L_hs + lambda(t) * L_c; LQ labels are not used.

Classic Mean Teacher compares the student with one noisy teacher pass, so ``num_passes`` defaults to 1
here (``ALC_NUM_PASSES`` still overrides it). Batch composition, architecture and loss are ALC's.
"""

from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerMeanTeacher(nnUNetTrainerALC):
    display_name = "Mean Teacher"  # in tables, plots and logs
    select_lq = False
    config_defaults = {"num_passes": 1}

    def corrected_labels(self, passes: TeacherPasses) -> None:
        return None
