"""H-Sup baseline: trains on the HQ cases only (LQ cases leave the training split; validation keeps them).

Same architecture (with dropout) and loss as ALC; every batch holds HQ samples only and no teacher runs.
"""

from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerHSup(nnUNetTrainerALC):
    display_name = "H-Sup"  # in tables, plots and logs
    train_on_lq = False
