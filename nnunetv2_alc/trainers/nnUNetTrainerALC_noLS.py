"""ALC w/o LS (paper Tables II-III): no label selection, every LQ sample trains on its refined label."""

from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_noLS(nnUNetTrainerALC):
    select_lq = False
