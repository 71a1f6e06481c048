"""Per-epoch ALC curves in nnU-Net's logger and its ``progress.png``.

nnU-Net's local logger keeps one list per key with exactly one value per epoch and is saved in every
checkpoint. :class:`ALCLocalLogger` adds the ALC keys and draws them in ``progress.png`` below nnU-Net's
usual panels (losses and pseudo Dice, epoch time, learning rate).
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
from nnunetv2.training.logging.nnunet_logger import LocalLogger  # noqa: E402

from nnunetv2_alc.refinement_diagnostics import SELECTION_CHECK_KEYS  # noqa: E402

LOSS_KEYS = ("L_hs", "L_ls", "L_n", "L_c")
SELECTION_KEYS = ("lambda", "selected_fraction", "mean_uncertainty")
QUALITY_DICE_KEYS = ("pseudo_dice_hq", "pseudo_dice_lq")
LABEL_DICE_KEYS = ("label_dice_noisy", "label_dice_pseudo", "label_dice_refined")
# how much Eq. 5-7 do (nnunetv2_alc.refinement_diagnostics)
DIAGNOSTIC_KEYS = ("weight_entropy", "refined_changed_fraction", "uncertainty_std", "uncertainty_dice_rho")
ALC_KEYS = (LOSS_KEYS + SELECTION_KEYS + QUALITY_DICE_KEYS + LABEL_DICE_KEYS + DIAGNOSTIC_KEYS
            + SELECTION_CHECK_KEYS)


class ALCLocalLogger(LocalLogger):
    """nnU-Net's local logger with the ALC keys; ``progress.png`` gains three ALC panels."""

    def __init__(self, verbose: bool = False):
        super().__init__(verbose)
        for key in ALC_KEYS:
            self.my_fantastic_logging[key] = []

    def log(self, key, value, epoch: int):
        """nnU-Net's logging, except that a NaN EMA pseudo Dice does not stick.

        nnU-Net updates ``ema_fg_dice = 0.9 * previous + 0.1 * mean_fg_dice``; one epoch whose pseudo Dice
        is undefined (no foreground predicted or present in its validation patches) would make the EMA NaN
        for good and freeze ``checkpoint_best``. Such an epoch keeps the previous EMA instead, and an EMA
        that was NaN restarts from the current pseudo Dice.
        """
        if key == "ema_fg_dice" and not math.isfinite(value):
            previous = self.my_fantastic_logging["ema_fg_dice"][epoch - 1] if epoch > 0 else float("nan")
            current = self.my_fantastic_logging["mean_fg_dice"][epoch]
            value = previous if not math.isfinite(current) else current
        super().log(key, value, epoch)

    def load_checkpoint(self, checkpoint: dict):
        """Accept checkpoints without ALC keys (e.g. from a stock trainer) by padding them with NaN."""
        epochs = len(checkpoint.get("train_losses", []))
        for key in ALC_KEYS:
            checkpoint.setdefault(key, [float("nan")] * epochs)
        super().load_checkpoint(checkpoint)

    def plot_progress_png(self, output_folder: str):
        log = self.my_fantastic_logging
        epochs = min(len(values) for values in log.values())
        x = list(range(epochs))
        fig, axes = plt.subplots(6, 1, figsize=(14, 31))

        ax = axes[0]
        ax.plot(x, log["train_losses"][:epochs], "b-", lw=2, label="loss_tr (L_total)")
        ax.plot(x, log["val_losses"][:epochs], "r-", lw=2, label="loss_val")
        ax.set_ylabel("loss")
        dice_ax = ax.twinx()
        dice_ax.plot(x, log["mean_fg_dice"][:epochs], "g:", lw=2, label="pseudo dice (model selection)")
        dice_ax.plot(x, log["ema_fg_dice"][:epochs], "g-", lw=2, label="pseudo dice (mov. avg.)")
        dice_ax.plot(x, log["pseudo_dice_hq"][:epochs], "c-", lw=1.5, label="pseudo dice HQ val")
        dice_ax.plot(x, log["pseudo_dice_lq"][:epochs], "m-", lw=1.5, label="pseudo dice LQ val")
        dice_ax.set_ylabel("pseudo dice")
        _legend(ax, dice_ax)

        ax = axes[1]
        for key, style in zip(LOSS_KEYS, ("b-", "g-", "r-", "k-")):
            ax.plot(x, log[key][:epochs], style, lw=2, label=key)
        ax.set_ylabel("ALC loss terms (Eq. 1, 8-10)")
        ax.legend(loc="upper right")

        ax = axes[2]
        ax.plot(x, log["lambda"][:epochs], "k-", lw=2, label="lambda(t)")
        ax.plot(x, log["selected_fraction"][:epochs], "b-", lw=2, label="LQ selected fraction")
        for key, style in zip(LABEL_DICE_KEYS, ("r:", "m--", "g-")):
            ax.plot(x, log[key][:epochs], style, lw=1.5, label=key.replace("label_dice_", "Dice vs clean: "))
        ax.set_ylim(-0.02, 1.02)
        unc_ax = ax.twinx()
        unc_ax.plot(x, log["mean_uncertainty"][:epochs], "y-", lw=2, label="mean LQ uncertainty (Eq. 7)")
        unc_ax.set_ylabel("uncertainty")
        _legend(ax, unc_ax)

        ax = axes[3]
        ax.plot(x, log["weight_entropy"][:epochs], "b-", lw=2, label="entropy of Eq. 5 weights / log m (1 = uniform)")
        ax.plot(x, log["uncertainty_dice_rho"][:epochs], "g-", lw=2,
                label="rank corr. of U with refined-label Dice (< 0: selection picks better labels)")
        ax.set_ylim(-1.02, 1.02)
        ax.set_ylabel("refinement diagnostics")
        small_ax = ax.twinx()
        small_ax.plot(x, log["refined_changed_fraction"][:epochs], "r-", lw=2,
                      label="refined != pseudo (voxel fraction)")
        small_ax.plot(x, log["uncertainty_std"][:epochs], "y-", lw=2, label="std of U over LQ samples")
        small_ax.set_ylabel("fraction / std")
        _legend(ax, small_ax)

        ax = axes[4]
        durations = [end - start for start, end in zip(log["epoch_start_timestamps"][:epochs],
                                                       log["epoch_end_timestamps"][:epochs])]
        ax.plot(x, durations, "b-", lw=2, label="epoch duration")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("time [s]")
        ax.legend(loc="upper right")

        ax = axes[5]
        ax.plot(x, log["lrs"][:epochs], "b-", lw=2, label="learning rate")
        ax.set_ylabel("learning rate")
        ax.legend(loc="upper right")

        for ax in axes:
            ax.set_xlabel("epoch")
        fig.tight_layout()
        fig.savefig(os.path.join(output_folder, "progress.png"))
        plt.close(fig)


def _legend(ax, twin_ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin_ax.get_legend_handles_labels()
    ax.legend(handles + twin_handles, labels + twin_labels, loc="upper left", fontsize=9)
