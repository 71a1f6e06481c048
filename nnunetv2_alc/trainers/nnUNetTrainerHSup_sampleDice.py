"""H-Sup with nnU-Net's Dice computed per sample instead of over the batch (a diagnostic, not a method).

nnU-Net's 2d configurations compute the Dice over the whole batch (``batch_dice``): a patch without
foreground then still pays, in the Dice, for the foreground it predicts, because the batch's other patches
hold some. A term with one sample a step (ALC's HQ term at nnU-Net's batch of 2) loses that coupling.
This variant removes it from H-Sup at an unchanged batch, so the two effects can be told apart
(docs/method.md, "Data and batches"). Where ``batch_dice`` is false (LA's 3d configurations) it is plain H-Sup.
"""

from nnunetv2_alc.trainers.nnUNetTrainerALC import loss_parts
from nnunetv2_alc.trainers.nnUNetTrainerHSup import nnUNetTrainerHSup


class nnUNetTrainerHSup_sampleDice(nnUNetTrainerHSup):
    display_name = "H-Sup, Dice per sample"  # in tables, plots and logs

    def _build_loss(self):
        loss = super()._build_loss()
        _, dice = loss_parts(loss)
        dice.batch_dice = False
        return loss
