"""``nnUNetv2_alc_make_noisy``: corrupt the LQ labels of a raw dataset, reproducibly (docs/method.md, "Data").

For every training case:

* HQ: ``labelsTr/<case>`` is the clean label.
* LQ: the clean label is dilated or eroded (fair coin) with a ball whose radius is drawn uniformly
  from ``radius = (MIN, MAX)`` (inclusive, voxels). Both draws come from a generator seeded with
  ``(seed, SHA-256 of the case id)``, so a case's corruption does not depend on the other cases or on
  their order, and the same seed gives the same labels voxel for voxel.
* Erosion never empties a class: if the drawn radius would remove every voxel of a class present
  in the clean label, the largest radius that keeps at least one voxel of every class is used
  instead; the manifest records both (``radius_drawn``, ``radius``).
* Axes of length one are left out of the ball (a 2D image stored as 1 x H x W gets a disk).

The clean labels are kept in ``labelsTr_clean/`` (same file names). That folder is created from
``labelsTr`` on the first run only; every run corrupts from it, so running twice never corrupts twice.
The manifest (``noise_manifest.csv`` and ``noise_manifest.json`` in the dataset folder) lists case,
quality, operation, radius, radius_drawn, seed, the Dice of noisy vs clean label and ``volume_ratio``,
the noisy label's foreground voxels over the clean label's. A ball of radius r adds more voxels on
dilation than it removes on erosion, so the paper's fair coin still biases the LQ labels towards
too much foreground; the summary prints that bias beside the Dice (docs/noise_and_conversion.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import os
import shutil
from typing import Sequence

import numpy as np
from tqdm import tqdm

from nnunetv2_alc.label_quality import (
    HQ,
    LABEL_QUALITY_KEY,
    LQ,
    check_cases_tagged,
    read_label_quality,
    require_both_qualities,
)
from nnunetv2_alc.atomic_write import atomic_folder, write_text_atomic
from nnunetv2_alc.raw_dataset import (
    RawDataset,
    add_dataset_argument,
    open_raw_dataset,
    read_label,
    resolve_dataset,
    save_json,
    write_label,
)
from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.cli_runner import run_cli
from nnunetv2_alc.dice import label_dice  # the manifest's Dice; also imported from here
from nnunetv2_alc.label_volume import foreground_volume_ratio
from noise_generation.morphology import OPERATIONS, largest_nonempty_erosion_radius, perturb_mask
from nnunetv2_alc.case_selection import HqList, add_hq_arguments, check_seed, describe_tags, has_hq_choice, select_hq

DEFAULT_RADIUS = (3, 15)
MANIFEST_CSV = "noise_manifest.csv"
MANIFEST_JSON = "noise_manifest.json"
MANIFEST_FIELDS = ("case", "quality", "operation", "radius", "radius_drawn", "seed", "dice", "volume_ratio")
NO_OPERATION = "none"


def case_rng(seed: int, case: str) -> np.random.Generator:
    """Random generator of one case, seeded with (seed, first 8 bytes of SHA-256 of the case id)."""
    digest = hashlib.sha256(case.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def draw_corruption(seed: int, case: str, radius: tuple[int, int]) -> tuple[str, int]:
    """The (operation, radius) of an LQ case: a fair coin between dilate/erode, radius uniform in [MIN, MAX]."""
    rng = case_rng(seed, case)
    operation = OPERATIONS[int(rng.integers(2))]
    return operation, int(rng.integers(radius[0], radius[1], endpoint=True))


def corrupt_label(label: np.ndarray, operation: str, radius: int) -> tuple[np.ndarray, int]:
    """Perturb a label array (axes of length one ignored); returns (noisy label, radius actually used).

    An erosion that would remove a class entirely is done with the largest radius that keeps one.
    """
    flat_axes = tuple(axis for axis, size in enumerate(label.shape) if size == 1)
    core = np.squeeze(label, axis=flat_axes)
    noisy = perturb_mask(core, operation, radius)
    if operation == "erode" and not np.array_equal(np.unique(noisy), np.unique(core)):
        radius = largest_nonempty_erosion_radius(core)
        noisy = perturb_mask(core, operation, radius)
    return noisy.reshape(label.shape), radius


def _check_radius(radius: Sequence[int]) -> tuple[int, int]:
    """The (MIN, MAX) radius range as integers, checked."""
    low, high = (int(r) for r in radius)
    if not 0 <= low <= high:
        raise InputDataError(f"the radius range must satisfy 0 <= MIN <= MAX, got {low} {high}")
    return low, high


def _resolve_tags(
    raw: RawDataset, hq_fraction: float | None, hq_count: int | None, hq_list: HqList | None, seed: int
) -> dict[str, str]:
    """New tags if an HQ option is given, else the dataset's own; either way both HQ and LQ must occur."""
    if has_hq_choice(hq_fraction, hq_count, hq_list):
        tags = select_hq(raw.training_cases, hq_fraction=hq_fraction, hq_count=hq_count, hq_list=hq_list, seed=seed)
    else:
        tags = read_label_quality(raw.dataset_json, str(raw.dataset_json_path))
        check_cases_tagged(tags, raw.training_cases, str(raw.dataset_json_path))
        tags = {case: tags[case] for case in raw.training_cases}
    require_both_qualities(raw.training_cases, tags, str(raw.folder))
    return tags


def _ensure_clean_labels(raw: RawDataset) -> None:
    """Create labelsTr_clean from labelsTr on the first run; later runs require it to be complete."""
    if raw.clean_labels_dir.is_dir():
        missing = [c for c in raw.training_cases if not (raw.clean_labels_dir / raw.label_name(c)).is_file()]
        if missing:
            raise InputDataError(
                f"{raw.clean_labels_dir} lacks the clean label of {len(missing)} case(s): {', '.join(missing[:10])}. "
                f"Restore them, or delete {raw.clean_labels_dir.name} if {raw.labels_dir.name} is clean."
            )
        return
    with atomic_folder(raw.clean_labels_dir) as temporary:
        for case in raw.training_cases:
            shutil.copy2(raw.labels_dir / raw.label_name(case), temporary / raw.label_name(case))


def _copy_other_files(raw: RawDataset, destination: os.PathLike) -> None:
    """Carry over anything in labelsTr that is not a training label, so replacing the folder loses nothing."""
    expected = {raw.label_name(c) for c in raw.training_cases}
    for entry in raw.labels_dir.iterdir():
        if entry.name not in expected:
            copy = shutil.copytree if entry.is_dir() else shutil.copy2
            copy(entry, os.path.join(destination, entry.name))


def _manifest_csv(rows: list[dict]) -> str:
    """The manifest rows as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def make_noisy_dataset(
    dataset: int | str | os.PathLike,
    hq_fraction: float | None = None,
    hq_count: int | None = None,
    hq_list: HqList | None = None,
    radius: tuple[int, int] = DEFAULT_RADIUS,
    seed: int = 0,
    show_progress: bool = True,
) -> list[dict]:
    """Tag (optionally) and corrupt the LQ labels of ``dataset`` (id, name or folder); return the manifest rows.

    Without an HQ option the dataset's existing tags are used. labelsTr is rebuilt from
    labelsTr_clean in a temporary folder and swapped in at the end, together with the tags in
    dataset.json and the manifest; on error nothing is changed (except creating labelsTr_clean).
    """
    seed = check_seed(seed)
    radius = _check_radius(radius)
    raw = open_raw_dataset(dataset)
    tags = _resolve_tags(raw, hq_fraction, hq_count, hq_list, seed)
    _ensure_clean_labels(raw)
    reader_writer = raw.reader_writer()
    rows = []
    with atomic_folder(raw.labels_dir, replace=True) as new_labels:
        for case in tqdm(raw.training_cases, desc="noisy labels", unit="case", disable=not show_progress):
            clean_file = raw.clean_labels_dir / raw.label_name(case)
            row = {"case": case, "quality": tags[case], "operation": NO_OPERATION, "radius": 0, "radius_drawn": 0,
                   "seed": seed, "dice": 1.0, "volume_ratio": 1.0}
            if tags[case] == HQ:
                shutil.copy2(clean_file, new_labels / raw.label_name(case))
            else:
                clean, properties = read_label(reader_writer, clean_file)
                operation, drawn = draw_corruption(seed, case, radius)
                noisy, used = corrupt_label(clean, operation, drawn)
                write_label(reader_writer, noisy, new_labels / raw.label_name(case), properties)
                row.update(operation=operation, radius=used, radius_drawn=drawn,
                           dice=round(label_dice(clean, noisy), 6),
                           volume_ratio=round(foreground_volume_ratio(clean, noisy), 6))
            rows.append(row)
        _copy_other_files(raw, new_labels)
        write_text_atomic(raw.folder / MANIFEST_CSV, _manifest_csv(rows))
        save_json(raw.folder / MANIFEST_JSON, {"seed": seed, "radius": list(radius), "cases": rows})
        raw.dataset_json[LABEL_QUALITY_KEY] = tags
        raw.save_dataset_json()
    return rows


def mean_lq_dice(rows: list[dict]) -> float:
    """Mean Dice of the LQ cases' noisy labels to their clean ones over manifest rows (NaN without LQ rows)."""
    lq = [row["dice"] for row in rows if row["quality"] == LQ]
    return float(np.mean(lq)) if lq else math.nan


def summarize(rows: list[dict]) -> str:
    """Multi-line summary of manifest rows: counts, operations, mean Dice and volume ratio of noisy vs clean labels."""
    tags = {row["case"]: row["quality"] for row in rows}
    lq = [row for row in rows if row["quality"] == LQ]
    counts = ", ".join(f"{sum(row['operation'] == op for row in lq)} {op}" for op in OPERATIONS)
    shrunk = sum(row["radius"] != row["radius_drawn"] for row in lq)
    lines = [
        f"Cases: {describe_tags(tags)}",
        f"LQ corruptions: {counts}; erosion radius reduced to keep every class: {shrunk} case(s)",
        f"Mean Dice noisy vs clean: LQ {mean_lq_dice(rows):.4f}, "
        f"all {np.mean([row['dice'] for row in rows]):.4f}",
    ]
    if lq:
        ratios = {op: [row["volume_ratio"] for row in lq if row["operation"] == op] for op in OPERATIONS}
        by_operation = ", ".join(f"{op} {np.mean(values):.2f}" for op, values in ratios.items() if values)
        lines.append(f"LQ foreground volume noisy / clean: mean {np.mean([row['volume_ratio'] for row in lq]):.2f} "
                     f"({by_operation})")
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="nnUNetv2_alc_make_noisy",
        description="Corrupt the LQ labels of an nnU-Net raw dataset by random ball dilation/erosion. Clean labels "
                    "are kept in labelsTr_clean/; a manifest is written to the dataset folder.",
    )
    add_dataset_argument(parser)
    add_hq_arguments(parser, required=False)
    parser.add_argument("--radius", type=int, nargs=2, metavar=("MIN", "MAX"), default=DEFAULT_RADIUS,
                        help="ball radius range in voxels, drawn uniformly (inclusive); default 3 15")
    return parser.parse_args(argv)


def _main(argv: Sequence[str] | None) -> None:
    """Run the command; errors are turned into exit status 2 by :func:`main`."""
    args = _parse(argv)
    rows = make_noisy_dataset(args.dataset, args.hq_fraction, args.hq_count, args.hq_list, tuple(args.radius),
                              args.seed)
    print(summarize(rows))
    folder = resolve_dataset(args.dataset)
    print(f"Manifest: {folder / MANIFEST_CSV}, {folder / MANIFEST_JSON}")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    run_cli(_main, argv, "nnUNetv2_alc_make_noisy")
