"""HL-Sup with ALC's architecture, loss and schedule: every case trains on its own label as if it were HQ.

The paper's HL-Sup is plain supervised training on all labels; stock ``nnUNetTrainer`` is that too, with
nnU-Net's own loss scale and no dropout. This variant isolates the effect of the method from those
differences, and follows the ``ALC_NUM_EPOCHS``/``ALC_ITERATIONS_PER_EPOCH`` schedule.
"""

from nnunetv2_alc.trainers.nnUNetTrainerALC import nnUNetTrainerALC


class nnUNetTrainerHLSup(nnUNetTrainerALC):
    display_name = "HL-Sup"  # in tables, plots and logs
    tags_as_hq = True
