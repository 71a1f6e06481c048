"""The paper's ablation rows (Table II: Left Atrium, Table III: NIH Pancreas-CT; H-Sup and HL-Sup from Table I).

Dice and Jaccard in %, 95HD and ASD in mm, per trainer of ours that runs the same method. The paper's
levels come from a V-Net at full resolution on a GPU, so our reports put its orderings and differences
beside ours, never its levels against ours (docs/benchmarks.md, "Real data").
"""

from __future__ import annotations

MEAN_TEACHER, NO_LS, NO_LR, ALC = ("nnUNetTrainerMeanTeacher", "nnUNetTrainerALC_noLS", "nnUNetTrainerALC_noLR",
                                   "nnUNetTrainerALC")
# "<dataset><HQ percent>" -> trainer -> (Dice, Jaccard, 95HD, ASD)
ABLATION = {
    "LA10": {MEAN_TEACHER: (83.79, 72.62, 20.07, 4.01), NO_LS: (84.42, 73.59, 10.49, 2.87),
             NO_LR: (87.31, 77.81, 8.79, 2.81), ALC: (88.87, 80.23, 8.36, 2.29)},
    "LA20": {MEAN_TEACHER: (87.51, 77.92, 8.83, 2.86), NO_LS: (88.11, 79.19, 6.76, 1.99),
             NO_LR: (88.53, 79.53, 9.13, 2.77), ALC: (89.29, 80.99, 6.30, 1.22)},
    "NIH10": {"nnUNetTrainerHSup": (70.86, 56.50, 21.15, 8.87), "nnUNetTrainerHLSup": (69.45, 54.68, 22.18, 9.75),
              MEAN_TEACHER: (70.59, 55.48, 23.58, 7.43), NO_LS: (71.17, 56.12, 22.56, 6.38),
              NO_LR: (73.23, 58.66, 19.67, 6.51), ALC: (75.21, 60.94, 18.13, 5.37)},
    "NIH20": {"nnUNetTrainerHSup": (73.64, 59.98, 12.18, 4.65), "nnUNetTrainerHLSup": (72.90, 58.68, 13.72, 4.83),
              MEAN_TEACHER: (74.77, 60.51, 15.09, 4.78), NO_LS: (75.48, 61.50, 11.07, 3.96),
              NO_LR: (76.23, 62.29, 10.45, 3.74), ALC: (79.62, 66.32, 5.86, 2.02)},
}


def paper_dice(table: str) -> dict[str, float]:
    """Trainer -> the paper's Dice in ``table`` (a key of :data:`ABLATION`)."""
    if table not in ABLATION:
        raise KeyError(f"no paper table {table!r}; known: {', '.join(ABLATION)}")
    return {trainer: row[0] for trainer, row in ABLATION[table].items()}
