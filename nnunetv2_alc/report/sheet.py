"""The PNG sheet of the worst cases: image, given label and refined label on the slice of largest disagreement."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from nnunetv2_alc.report.scoring import CaseScore  # noqa: E402

PNG_NAME = "worst_cases.png"
# class 1, 2, ... colours of the label overlays
CLASS_COLOURS = ListedColormap(["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"])


@dataclass(frozen=True)
class SheetRow:
    """One case of the sheet: arrays in the original geometry (first array axis = slice axis)."""

    rank: int
    score: CaseScore
    image: np.ndarray  # first image channel
    given: np.ndarray
    refined: np.ndarray
    spacing: tuple[float, ...]  # mm per array axis


def draw_worst_cases(rows: list[SheetRow], path: Path) -> Path:
    """One row per case, columns image / given label / refined label (given label outlined in yellow)."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(11, 3.6 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        index = row.score.disagreement_slice
        image, given, refined = row.image[index], row.given[index], row.refined[index]
        aspect = row.spacing[-2] / row.spacing[-1]
        low, high = np.percentile(image, (1, 99))
        for ax in ax_row:
            ax.imshow(image, cmap="gray", vmin=low, vmax=high, aspect=aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        _overlay(ax_row[1], given, aspect)
        _overlay(ax_row[2], refined, aspect)
        if given.any():
            ax_row[2].contour(given > 0, levels=[0.5], colors="yellow", linewidths=1.0)
        score = row.score
        ax_row[0].set_title(f"#{row.rank} {score.case}, slice {index}", fontsize=10)
        ax_row[1].set_title("given label", fontsize=10)
        ax_row[2].set_title(f"refined (Eq. 6): Dice to given {score.dice_given_vs_refined:.3f}, "
                            f"U {score.uncertainty:.2e}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _overlay(ax, label: np.ndarray, aspect: float) -> None:
    masked = np.ma.masked_where(label == 0, label)
    ax.imshow(masked, cmap=CLASS_COLOURS, vmin=1, vmax=CLASS_COLOURS.N, alpha=0.45, aspect=aspect,
              interpolation="nearest")
