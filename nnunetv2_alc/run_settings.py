"""Run settings every trainer of ours takes from :class:`ALCConfig`: schedule, seed, final validation.

:class:`RunSettings` goes before ``nnUNetTrainer`` in a trainer's bases. It reads the settings
(``ALC_*`` environment variables, ``ALC_CONFIG``) and applies the ones that are not part of the method,
so that ALC, its baselines and the stock-nnU-Net reference (``nnUNetTrainerStock``) train on one budget.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from nnunetv2_alc.config import ALCConfig


class RunSettings:
    # the method's name in tables, plots and logs; each trainer module of nnunetv2_alc.trainers sets its own
    display_name: str = ""
    # a trainer's own defaults for ALCConfig fields (environment variables still override them)
    config_defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unknown = set(cls.config_defaults) - set(ALCConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"{cls.__name__}.config_defaults names unknown ALC settings {sorted(unknown)}; "
                            f"known: {sorted(ALCConfig.__dataclass_fields__)}")

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.alc = ALCConfig.from_sources(**self.config_defaults)
        self.num_epochs = self.alc.num_epochs or self.num_epochs
        self.num_iterations_per_epoch = self.alc.iterations_per_epoch or self.num_iterations_per_epoch
        self.num_val_iterations_per_epoch = self.alc.val_iterations_per_epoch or self.num_val_iterations_per_epoch
        self.trained_in_this_run = False  # -> on_train_end; lets final_validation=False skip only after training

    def initialize(self):
        if self.alc.seed >= 0:  # before the network's weights are drawn
            seed = self.alc.seed + self.local_rank
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            self.print_to_log_file(f"Seeded Python, NumPy and torch with {seed} (ALC seed {self.alc.seed} + rank)")
        super().initialize()

    def on_train_end(self):
        super().on_train_end()
        self.trained_in_this_run = True

    def perform_actual_validation(self, save_probabilities: bool = False):
        """nnU-Net's validation of the fold, unless ``final_validation`` is off and training just ran.

        ``nnUNetv2_train --val`` (validation only) always validates.
        """
        if not self.alc.final_validation and self.trained_in_this_run:
            self.print_to_log_file("Final validation skipped (ALC setting final_validation = False)",
                                   also_print_to_console=True)
            return
        super().perform_actual_validation(save_probabilities)
