"""ALC w/o LR (paper Tables II-III): selected LQ samples train on the plain pseudo-label argmax(Psi_avg)."""

from torch import Tensor

from nnunetv2_alc.label_correction import TeacherPasses
from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_noLR(nnUNetTrainerALC):
    def corrected_labels(self, passes: TeacherPasses) -> Tensor:
        return passes.pseudo
