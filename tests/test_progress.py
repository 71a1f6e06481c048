"""ALCLocalLogger inside nnU-Net's own MetaLogger: ALC keys, the NaN-safe EMA pseudo Dice, progress.png."""

from __future__ import annotations

import math

import pytest
from nnunetv2.training.logging.nnunet_logger import MetaLogger

from nnunetv2_alc.progress import ALC_KEYS, ALCLocalLogger


def logger_with(tmp_path) -> MetaLogger:
    logger = MetaLogger(str(tmp_path), resume=False)
    logger.local_logger = ALCLocalLogger()
    return logger


def emas(tmp_path, pseudo_dice):
    logger = logger_with(tmp_path)
    for epoch, value in enumerate(pseudo_dice):
        logger.log("mean_fg_dice", value, epoch)
    return logger.get_value("ema_fg_dice", step=None)


def test_ema_follows_nnunet_when_every_value_is_defined(tmp_path):
    assert emas(tmp_path, [0.5, 0.7, 0.2]) == pytest.approx([0.5, 0.52, 0.488])


def test_an_undefined_epoch_keeps_the_previous_ema(tmp_path):
    assert emas(tmp_path, [0.5, float("nan"), 0.7]) == pytest.approx([0.5, 0.5, 0.52])


def test_an_undefined_first_epoch_does_not_stick(tmp_path):
    values = emas(tmp_path, [float("nan"), 0.4, 0.6])
    assert math.isnan(values[0]) and values[1:] == pytest.approx([0.4, 0.42])


def test_checkpoints_without_alc_keys_load_and_progress_png_is_drawn(tmp_path):
    logger = logger_with(tmp_path)
    stock = {key: [] for key in logger.local_logger.my_fantastic_logging if key not in ALC_KEYS}
    stock["train_losses"] = [0.1]
    for key in stock:
        stock[key] = [0.1] if key != "dice_per_class_or_region" else [[0.1]]
    logger.load_checkpoint(stock)
    assert all(math.isnan(logger.get_value(key, step=0)) for key in ALC_KEYS)
    logger.plot_progress_png(str(tmp_path))
    assert (tmp_path / "progress.png").stat().st_size > 0
