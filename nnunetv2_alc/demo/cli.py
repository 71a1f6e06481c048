"""``nnUNetv2_alc_demo``: command-line front end of :func:`run_demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from nnunetv2_alc.cli_runner import run_cli
from nnunetv2_alc.demo.pipeline import DEFAULT_TRAINERS, DemoSettings, run_demo
from nnunetv2_alc.jobs import StepFailed

PROG = "nnUNetv2_alc_demo"
DEFAULTS = DemoSettings(root=Path("alc_demo"))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nnUNetv2_alc_demo``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ALC end to end on a synthetic noisy-label dataset: dataset, nnU-Net planning, training of ALC "
                    "and baselines, prediction, evaluation (paper Table I layout) and the label-quality report.")
    parser.add_argument("-o", "--output", default=str(DEFAULTS.root), help="work folder (default: ./alc_demo)")
    parser.add_argument("--overwrite", action="store_true",
                        help="reuse a non-empty work folder, deleting the demo's folders in it")
    parser.add_argument("--kind", choices=("tiny3d", "benchmark"), default=DEFAULTS.kind,
                        help="synthetic preset (default: tiny3d with 20 training / 10 test cases)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help=f"epochs (default: {DEFAULTS.epochs})")
    parser.add_argument("--iterations", type=int, default=DEFAULTS.iterations,
                        help=f"training iterations per epoch (default: {DEFAULTS.iterations}; validation: a tenth)")
    parser.add_argument("--trainers", nargs="+", default=list(DEFAULT_TRAINERS), metavar="TRAINER",
                        help="trainers to compare, in table order; must include nnUNetTrainerALC "
                             f"(default: {' '.join(DEFAULT_TRAINERS)})")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=DEFAULTS.device, help="default: cpu")
    parser.add_argument("--planned-network", action="store_true",
                        help="train the network as nnU-Net planned it (default: shrunk to 4..32 features for CPUs)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed,
                        help="seed of the synthetic dataset and of training (ALC_SEED; default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: bad input ends with a one-line error (exit 2), a failed step with its log (exit 1)."""
    try:
        run_cli(_main, argv, PROG)
    except StepFailed as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(1)


def _main(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    run_demo(DemoSettings(root=Path(args.output), kind=args.kind, epochs=args.epochs, iterations=args.iterations,
                          trainers=tuple(args.trainers), device=args.device, tiny_network=not args.planned_network,
                          seed=args.seed, overwrite=args.overwrite))
