"""ALC w/o LS (paper Tables II-III): no label selection, every LQ sample trains on its refined label."""

from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerALC_noLS(nnUNetTrainerALC):
    display_name = "ALC w/o LS"  # in tables, plots and logs
    select_lq = False
