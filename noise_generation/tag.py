"""``nnUNetv2_alc_tag``: write HQ/LQ tags into a raw dataset's dataset.json, leaving the labels alone.

The tags go under ``"label_quality"`` ({case id: "HQ" | "LQ"} for every training case); the HQ
cases are chosen by :func:`nnunetv2_alc.case_selection.select_hq`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from nnunetv2_alc.label_quality import LABEL_QUALITY_KEY
from nnunetv2_alc.raw_dataset import add_dataset_argument, open_raw_dataset
from nnunetv2_alc.cli_runner import run_cli
from nnunetv2_alc.case_selection import HqList, add_hq_arguments, describe_tags, select_hq


def tag_dataset(
    dataset: int | str | os.PathLike,
    hq_fraction: float | None = None,
    hq_count: int | None = None,
    hq_list: HqList | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Tag the training cases of ``dataset`` (id, name or folder) and return the ``case -> HQ/LQ`` map."""
    raw = open_raw_dataset(dataset)
    tags = select_hq(raw.training_cases, hq_fraction=hq_fraction, hq_count=hq_count, hq_list=hq_list, seed=seed)
    previous = raw.dataset_json.get(LABEL_QUALITY_KEY)
    raw.dataset_json[LABEL_QUALITY_KEY] = tags
    raw.save_dataset_json()
    if previous is not None and previous != tags and raw.clean_labels_dir.is_dir():
        print(
            f"warning: {raw.labels_dir} holds labels corrupted under the previous tags. Run "
            f"`nnUNetv2_alc_make_noisy -d {raw.folder}` (no HQ option) to rebuild them from "
            f"{raw.clean_labels_dir.name} under the new tags.",
            file=sys.stderr,
        )
    return tags


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="nnUNetv2_alc_tag",
        description="Tag the training cases of an nnU-Net raw dataset HQ or LQ (dataset.json key 'label_quality'). "
                    "Labels are not touched.",
    )
    add_dataset_argument(parser)
    add_hq_arguments(parser, required=True)
    return parser.parse_args(argv)


def _main(argv: Sequence[str] | None) -> None:
    """Run the command; errors are turned into exit status 2 by :func:`main`."""
    args = _parse(argv)
    tags = tag_dataset(args.dataset, args.hq_fraction, args.hq_count, args.hq_list, args.seed)
    print(f"Tagged {describe_tags(tags)}.")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    run_cli(_main, argv, "nnUNetv2_alc_tag")
