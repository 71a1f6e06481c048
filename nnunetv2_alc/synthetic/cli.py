"""``nnUNetv2_alc_synthetic``: command-line front end of :func:`make_synthetic_dataset`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import NoReturn, Sequence

from nnunetv2_alc.raw_dataset import DATASET_JSON
from nnunetv2_alc.cli_runner import run_cli
from noise_generation.make_noisy import MANIFEST_JSON, summarize

from .dataset import make_synthetic_dataset
from .presets import PRESETS

PROG = "nnUNetv2_alc_synthetic"


class _OneLineParser(argparse.ArgumentParser):
    """Reports bad arguments in one line (no usage block) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nnUNetv2_alc_synthetic``."""
    parser = _OneLineParser(
        prog=PROG,
        description="Write a seeded synthetic nnU-Net v2 raw dataset with HQ/LQ tags and corrupted LQ labels.",
    )
    parser.add_argument("-d", "--dataset-id", type=int, required=True, help="dataset id (1..999)")
    parser.add_argument("--kind", choices=list(PRESETS), default="tiny3d", help="preset (default: tiny3d)")
    parser.add_argument("--num-train", type=int, help="training cases (default: the preset's)")
    parser.add_argument("--num-test", type=int, help="test cases (default: the preset's)")
    quality = parser.add_mutually_exclusive_group()
    quality.add_argument("--hq-fraction", type=float, default=0.2, help="fraction of HQ training cases (default: 0.2)")
    quality.add_argument("--hq-count", type=int, help="number of HQ training cases")
    parser.add_argument("--radius", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="label-noise ball radius range in voxels (default: the preset's)")
    parser.add_argument("--num-classes", type=int, default=1, help="foreground classes, 1 or 2 (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of images, HQ draw and label noise (default: 0)")
    parser.add_argument("-o", "--output-root", help="parent folder of the dataset (default: $nnUNet_raw)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset with this id")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: bad input ends with a one-line error and exit status 2."""
    run_cli(_main, argv, PROG)


def _main(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    folder = make_synthetic_dataset(
        args.dataset_id,
        kind=args.kind,
        num_train=args.num_train,
        num_test=args.num_test,
        hq_fraction=args.hq_fraction,
        hq_count=args.hq_count,
        radius=args.radius,
        num_classes=args.num_classes,
        seed=args.seed,
        output_root=args.output_root,
        overwrite=args.overwrite,
    )
    print(summary(folder, time.perf_counter() - start))


def summary(folder: Path, seconds: float) -> str:
    """A few lines describing a written dataset (from its dataset.json and noise manifest)."""
    info = json.loads((folder / DATASET_JSON).read_text())
    manifest = json.loads((folder / MANIFEST_JSON).read_text())
    preset = PRESETS[info["synthetic"]["kind"]]
    classes = ", ".join(f"{value}={name}" for name, value in info["labels"].items())
    return "\n".join([
        f"Wrote {folder} in {seconds:.1f} s",
        f"Kind {preset.kind}: shape {preset.shape}, spacing {preset.spacing} mm (z, y, x), labels {classes}, "
        f"seed {info['synthetic']['seed']}",
        f"Test cases (clean labels in labelsTs): {info['synthetic']['num_test']}",
        f"Label noise radius range: {manifest['radius'][0]}..{manifest['radius'][1]} voxels",
        summarize(manifest["cases"]),
    ])
