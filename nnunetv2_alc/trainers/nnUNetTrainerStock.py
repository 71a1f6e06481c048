"""Stock nnU-Net (the paper's HL-Sup) on a budget: ``nnUNetTrainer`` unchanged, except that the schedule,
the seed and the final validation follow the ``ALC_*`` settings like every trainer of ours.

For benchmarks that compare ALC with nnU-Net as it ships under the same number of epochs and
iterations; nnU-Net's own ``nnUNetTrainer`` would run 1000 epochs whatever the budget.
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_alc.run_settings import RunSettings


class nnUNetTrainerStock(RunSettings, nnUNetTrainer):
    display_name = "HL-Sup (stock nnU-Net)"  # in tables, plots and logs
