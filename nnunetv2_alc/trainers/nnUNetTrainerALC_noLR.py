"""ALC w/o LR (paper Tables II-III): selected LQ samples train on the plain pseudo-label argmax(Psi_avg)."""

from torch import Tensor

from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_noLR(nnUNetTrainerALC):
    display_name = "ALC w/o LR"  # in tables, plots and logs
    def corrected_labels(self, passes: TeacherPasses) -> Tensor:
        return passes.pseudo
