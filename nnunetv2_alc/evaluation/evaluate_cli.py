"""``nnUNetv2_alc_evaluate``: the paper's metrics of prediction folders against references."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from nnunetv2_alc.evaluation.cases import EvaluationInputError
from nnunetv2_alc.evaluation.folders import DEFAULT_NUM_PROCESSES, evaluate_folders
from nnunetv2_alc.evaluation.table import format_comparison_table

PROG = "nnUNetv2_alc_evaluate"


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``nnUNetv2_alc_evaluate``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Dice, Jaccard, 95HD and ASD (distances in mm from the reference spacing) of one or more "
                    "prediction folders against a reference folder; writes per-case and mean ± std results "
                    "as JSON and CSV per folder and a Markdown comparison table (paper's Table I layout).")
    parser.add_argument("-ref", required=True, metavar="REF_FOLDER", help="reference segmentations")
    parser.add_argument("-pred", required=True, nargs="+", metavar="PRED_FOLDER",
                        help="prediction folder(s), one per method; files matched to references by name")
    parser.add_argument("--names", nargs="+", metavar="NAME",
                        help="method names for the table, one per PRED_FOLDER (default: folder names)")
    parser.add_argument("-o", default="alc_evaluation", metavar="OUT_DIR",
                        help="output folder (default: ./alc_evaluation)")
    parser.add_argument("--labels", nargs="+", type=int, metavar="LABEL",
                        help="foreground labels to evaluate (default: every non-zero label found)")
    parser.add_argument("-np", type=int, default=DEFAULT_NUM_PROCESSES, metavar="N",
                        help=f"worker processes (default: {DEFAULT_NUM_PROCESSES})")
    parser.add_argument("--file-ending", metavar="ENDING",
                        help="segmentation file ending, e.g. .nii.gz (default: inferred from REF_FOLDER)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns 0, or 2 after a one-line error on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    names = args.names or [os.path.basename(os.path.normpath(folder)) for folder in args.pred]
    if len(names) != len(args.pred):
        parser.error(f"--names gives {len(names)} names for {len(args.pred)} prediction folders")
    if len(set(names)) != len(names):
        parser.error(f"method names must be unique, got {names}; use --names")
    try:
        results = evaluate_folders(args.ref, dict(zip(names, args.pred)), labels=args.labels,
                                   num_processes=args.np, output_folder=args.o, file_ending=args.file_ending)
    except EvaluationInputError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(f"Results written to {args.o}\n")
    print(format_comparison_table(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
