"""``given_vs_refined.png``: does the report's score find the bad labels?

Each LQ case is a point: its given label's Dice to the refined label (the report's ranking score, x) and,
when the dataset keeps the clean labels (``labelsTr_clean/``), its given label's Dice to the clean one (y,
the truth the score stands in for), with Spearman's rank correlation of the two in the title. Without clean
labels the figure is the histogram of the score.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from nnunetv2_alc.report.scoring import CaseScore  # noqa: E402

AGREEMENT_PNG = "given_vs_refined.png"


def draw_agreement(scores: list[CaseScore], path: Path) -> None:
    """The scatter (with clean labels) or histogram (without) of the cases' ``dice_given_vs_refined``."""
    score = np.array([s.dice_given_vs_refined for s in scores])
    clean = [s.dice_given_vs_clean for s in scores]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.set_xlabel("Dice of the given label to the refined label (the report's score)")
    if all(c is not None for c in clean) and len(scores) > 1:
        truth = np.array(clean)
        ax.scatter(score, truth, s=14)
        rho = spearmanr(score, truth).statistic
        ax.set_ylabel("Dice of the given label to the clean label")
        ax.set_title(f"{len(scores)} LQ cases; Spearman rho = {rho:.2f}", fontsize=10)
    else:
        ax.hist(score, bins=min(20, max(1, len(scores))))
        ax.set_ylabel("LQ cases")
        ax.set_title(f"{len(scores)} LQ cases (no clean labels to compare with)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
