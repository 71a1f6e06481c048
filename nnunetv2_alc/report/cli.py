"""``nnUNetv2_alc_report``: command-line front end of :func:`write_label_report`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

from nnunetv2_alc.raw_dataset import add_dataset_argument
from nnunetv2_alc.cli_runner import run_cli

from nnunetv2_alc.report.model import TEACHER_CHECKPOINT, parse_device, parse_fold
from nnunetv2_alc.report.run import REFINED_FOLDER, write_label_report
from nnunetv2_alc.report.sheet import PNG_NAME
from nnunetv2_alc.report.table import CSV_NAME, format_summary

PROG = "nnUNetv2_alc_report"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nnUNetv2_alc_report``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Label-quality report of the LQ training cases: the teacher's m stochastic passes "
                    "(Eq. 3-4, sliding window), refined labels (Eq. 5-6), sample uncertainty (Eq. 7), a ranked "
                    "CSV (lowest Dice between given and refined label first) and a PNG of the worst cases.")
    parser.add_argument("-m", "--model", required=True, metavar="MODEL_FOLDER",
                        help="trained model folder <trainer>__<plans>__<configuration> (in $nnUNet_results)")
    add_dataset_argument(parser)
    parser.add_argument("-f", "--fold", default="0", help="fold (a number or 'all'; default: 0)")
    parser.add_argument("-chk", "--checkpoint", default=TEACHER_CHECKPOINT,
                        help=f"checkpoint file in the fold folder (default: {TEACHER_CHECKPOINT})")
    parser.add_argument("-o", "--output", default="alc_label_report",
                        help="output folder (default: ./alc_label_report)")
    parser.add_argument("--num-passes", type=int,
                        help="m, stochastic passes per case (default: the training's m, saved in the checkpoint)")
    parser.add_argument("--worst", type=int, default=6, help="cases on the PNG sheet (default: 6; 0: no sheet)")
    parser.add_argument("-device", choices=("cpu", "cuda"), help="device (default: cuda if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise and dropout (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: bad input ends with a one-line error and exit status 2."""
    run_cli(_main, argv, PROG)


def _main(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    ranked = write_label_report(args.model, args.dataset, args.output, fold=parse_fold(args.fold),
                                checkpoint=args.checkpoint, num_passes=args.num_passes, worst=args.worst,
                                device=parse_device(args.device), seed=args.seed)
    output = Path(args.output)
    print(format_summary(ranked, shown=min(10, len(ranked))))
    print(f"Wrote {len(ranked)} refined labels to {output / REFINED_FOLDER}, the ranking to {output / CSV_NAME}"
          + (f" and the worst cases to {output / PNG_NAME}" if args.worst else "")
          + f" in {time.perf_counter() - start:.1f} s")
