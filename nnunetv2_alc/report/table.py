"""The ranked CSV of the label-quality report."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from nnunetv2_alc.report.scoring import CaseScore

CSV_NAME = "label_report.csv"
COLUMNS = ("rank", "case", "dice_given_vs_refined", "uncertainty", "changed_fraction", "disagreement_slice",
           "refined_label")
CLEAN_COLUMNS = ("dice_given_vs_clean", "dice_refined_vs_clean")


def write_report_csv(ranked: list[CaseScore], output: Path, refined_names: dict[str, str]) -> Path:
    """``label_report.csv``: one row per LQ case in ranked order; clean-label columns when every case has them."""
    with_clean = bool(ranked) and all(s.dice_given_vs_clean is not None for s in ranked)
    columns = COLUMNS + (CLEAN_COLUMNS if with_clean else ())
    path = output / CSV_NAME
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for position, score in enumerate(ranked, start=1):
            writer.writerow({**dataclasses.asdict(score), "rank": position, "refined_label": refined_names[score.case]})
    return path


def format_summary(ranked: list[CaseScore], shown: int) -> str:
    """A few console lines: the most suspicious cases and, with clean labels, the mean Dice to them."""
    lines = [f"{'rank':>4}  {'case':<20} {'Dice given/refined':>18} {'uncertainty':>12}"]
    for position, score in enumerate(ranked[:shown], start=1):
        lines.append(f"{position:>4}  {score.case:<20} {score.dice_given_vs_refined:>18.4f} {score.uncertainty:>12.3e}")
    if ranked and all(s.dice_given_vs_clean is not None for s in ranked):
        given = sum(s.dice_given_vs_clean for s in ranked) / len(ranked)
        refined = sum(s.dice_refined_vs_clean for s in ranked) / len(ranked)
        lines.append(f"Mean Dice to the clean labels over {len(ranked)} LQ cases: "
                     f"given {given:.4f}, refined {refined:.4f}")
    return "\n".join(lines)
