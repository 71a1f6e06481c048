"""ALC w/o LR (paper Tables II-III): selected LQ samples train on the plain pseudo-label argmax(Psi_avg)."""

from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_noLR(nnUNetTrainerALC):
    lq_targets = "pseudo"
