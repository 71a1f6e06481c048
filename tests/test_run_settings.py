"""RunSettings: the schedule, seed and final-validation settings every trainer of ours takes from ALCConfig."""

from __future__ import annotations

import torch

from nnunetv2_alc.run_settings import RunSettings


class RecordingTrainer:
    """Stands in for nnUNetTrainer's few members that RunSettings touches (a unit test of the mixin alone)."""

    def __init__(self, plans, configuration, fold, dataset_json, device):
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 1000, 250, 50
        self.local_rank, self.validated, self.initialized, self.log = 0, False, False, []

    def print_to_log_file(self, *args, also_print_to_console=False):
        self.log.append(" ".join(map(str, args)))

    def initialize(self):
        self.initialized = True
        self.first_draw = torch.rand(3)

    def on_train_end(self):
        pass

    def perform_actual_validation(self, save_probabilities=False):
        self.validated = True


class Trainer(RunSettings, RecordingTrainer):
    pass


def make(monkeypatch, **env) -> Trainer:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Trainer({}, "2d", 0, {}, torch.device("cpu"))


def test_schedule_defaults_to_nnunet_and_follows_settings(monkeypatch):
    assert make(monkeypatch).num_epochs == 1000
    trainer = make(monkeypatch, ALC_NUM_EPOCHS="3", ALC_ITERATIONS_PER_EPOCH="7", ALC_VAL_ITERATIONS_PER_EPOCH="2")
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (3, 7, 2)


def test_seed_makes_initialisation_repeatable(monkeypatch):
    draws = []
    for _ in range(2):
        trainer = make(monkeypatch, ALC_SEED="5")
        trainer.initialize()
        draws.append(trainer.first_draw)
    assert trainer.initialized and torch.equal(draws[0], draws[1])
    assert any("Seeded Python, NumPy and torch with 5" in line for line in trainer.log)


def test_final_validation_is_skipped_only_after_training(monkeypatch):
    validation_only = make(monkeypatch, ALC_FINAL_VALIDATION="false")
    validation_only.perform_actual_validation()  # nnUNetv2_train --val: no training in this run
    assert validation_only.validated
    trained = make(monkeypatch, ALC_FINAL_VALIDATION="false")
    trained.on_train_end()
    trained.perform_actual_validation()
    assert not trained.validated and any("Final validation skipped" in line for line in trained.log)
    monkeypatch.delenv("ALC_FINAL_VALIDATION")
    default = make(monkeypatch)
    default.on_train_end()
    default.perform_actual_validation()
    assert default.validated
