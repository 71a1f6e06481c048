"""Shared back end of the converters: check the target, write cases, dataset.json (with HQ/LQ tags), split, summary.

A converter supplies a :class:`DatasetSpec`, one loader per case (returning a :class:`CaseData`) and a
:class:`~dataset_conversion.splits.Split`; :func:`convert_cases` does the rest. The dataset is
built in a temporary folder next to ``$nnUNet_raw/DatasetXXX_Name`` and moved into place only when
every case converted; otherwise the errors of all failed cases are reported together and nothing
is left behind.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk
from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
from tqdm import tqdm

from dataset_conversion.splits import Split, write_split
from dataset_conversion.volume_checks import grid_mismatch
from nnunetv2_alc.atomic_write import atomic_folder
from nnunetv2_alc.raw_dataset import NIFTI_FILE_ENDING as FILE_ENDING, raw_root
from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.case_selection import add_hq_arguments, describe_tags, select_hq


@dataclass(frozen=True)
class DatasetSpec:
    """What the dataset.json of a converted dataset says (the dataset id is chosen per conversion)."""

    name: str
    channel_name: str
    labels: dict[str, int]
    description: str
    reference: str


@dataclass
class CaseData:
    """One loaded case: 3D image, binary {0,1} uint8 label on its own grid, and the files they came from."""

    image: sitk.Image
    label: sitk.Image
    image_source: str
    label_source: str


CaseLoader = Callable[[], CaseData]


@dataclass(frozen=True)
class ConversionSummary:
    """What a conversion produced."""

    folder: Path
    split: Split
    tags: dict[str, str]
    spacing_min: tuple[float, ...]
    spacing_max: tuple[float, ...]

    def __str__(self) -> str:
        ranges = ", ".join(f"{axis} {lo:.4g}..{hi:.4g}"
                           for axis, lo, hi in zip("xyz", self.spacing_min, self.spacing_max))
        return "\n".join([
            f"Converted {len(self.split.train) + len(self.split.test)} cases into {self.folder}",
            f"Split: {len(self.split.train)} train (imagesTr), {len(self.split.test)} test (imagesTs); "
            f"{self.split.source}",
            f"Spacing range (mm): {ranges}",
            f"Tags: {describe_tags(self.tags)}",
        ])


def target_folder(name: str, dataset_id: int, overwrite: bool) -> Path:
    """``$nnUNet_raw/DatasetXXX_Name``; refuses an id used by another dataset, and an existing one without overwrite."""
    if not 1 <= dataset_id <= 999:
        raise InputDataError(f"the dataset id must lie in 1..999, got {dataset_id}")
    root = raw_root()
    prefix = f"Dataset{dataset_id:03d}_"
    target = root / f"{prefix}{name}"
    clashes = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name.startswith(prefix) and d != target)
    if clashes:
        raise InputDataError(f"dataset id {dataset_id} is already used by {', '.join(clashes)} in {root}")
    if target.exists() and not overwrite:
        raise InputDataError(f"{target} already exists; pass --overwrite to replace it")
    return target


def _write_case(case: str, data: CaseData, folder: Path, subset: str) -> tuple[float, ...]:
    """Check one case and write it as ``images<subset>/<case>_0000`` and ``labels<subset>/<case>``.

    Returns its spacing.
    """
    if data.image.GetDimension() != 3 or data.image.GetNumberOfComponentsPerPixel() != 1:
        raise InputDataError(f"image {data.image_source} must be a 3D single-channel volume")
    problem = grid_mismatch(data.image, data.label)
    if problem:
        raise InputDataError(f"label {data.label_source} does not match the grid of image {data.image_source}: "
                             f"{problem}")
    data.label.CopyInformation(data.image)  # within tolerance: give the label the image's exact geometry
    sitk.WriteImage(data.image, str(folder / f"images{subset}" / f"{case}_0000{FILE_ENDING}"), True)
    sitk.WriteImage(data.label, str(folder / f"labels{subset}" / f"{case}{FILE_ENDING}"), True)
    return data.image.GetSpacing()


def convert_cases(
    spec: DatasetSpec,
    dataset_id: int,
    loaders: dict[str, CaseLoader],
    split: Split,
    hq_fraction: float | None,
    hq_count: int | None,
    seed: int,
    overwrite: bool,
    show_progress: bool = True,
) -> ConversionSummary:
    """Write ``$nnUNet_raw/DatasetXXX_<spec.name>`` from the case loaders, tagging the training cases (module doc)."""
    target = target_folder(spec.name, dataset_id, overwrite)
    tags = select_hq(split.train, hq_fraction=hq_fraction, hq_count=hq_count, seed=seed)
    subsets = {case: "Tr" for case in split.train} | {case: "Ts" for case in split.test}
    errors, spacings = [], []
    with atomic_folder(target, replace=overwrite) as folder:
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            (folder / sub).mkdir()
        for case in tqdm(sorted(subsets), desc=target.name, unit="case", disable=not show_progress):
            try:
                spacings.append(_write_case(case, loaders[case](), folder, subsets[case]))
            except InputDataError as error:
                errors.append(f"{case}: {error}")
        if errors:
            raise InputDataError(f"{len(errors)} case(s) could not be converted, nothing was written: "
                                 f"{' | '.join(errors)}")
        generate_dataset_json(
            str(folder), {0: spec.channel_name}, dict(spec.labels), len(split.train), FILE_ENDING,
            dataset_name=target.name, description=spec.description, reference=spec.reference,
            license="see the reference", converted_by="nnunetv2_alc dataset_conversion",
            numTest=len(split.test), label_quality=tags,
        )
        write_split(folder, split)
    spacings = np.array(spacings)
    low, high = (tuple(float(v) for v in values) for values in (spacings.min(0), spacings.max(0)))
    return ConversionSummary(target, split, tags, low, high)


def conversion_parser(prog: str, description: str, test_fraction: float) -> argparse.ArgumentParser:
    """Argument parser with the options every converter shares (-d, HQ choice, --seed, --overwrite, --test-fraction)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-d", "--dataset-id", type=int, required=True, metavar="ID",
                        help="nnU-Net dataset id of the new raw dataset (1..999)")
    add_hq_arguments(parser, required=True, with_list=False)
    parser.add_argument("--test-fraction", type=float, default=test_fraction, metavar="F",
                        help=f"share of test cases when no split lists are used (seeded); default {test_fraction:.4g}")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of the same name")
    return parser
