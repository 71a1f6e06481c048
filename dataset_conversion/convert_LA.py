"""``nnUNetv2_alc_convert_LA``: the 2018 Left Atrium Segmentation Challenge data as an nnU-Net raw dataset.

Two input layouts are recognised:

* Challenge layout: one folder per case, anywhere below INPUT, holding ``lgemri.nrrd`` (LGE-MRI)
  and ``laendo.nrrd`` (label, 255 = left atrium). Geometry comes from the NRRD headers. Point INPUT
  at the "Training Set" folder (the 100 labelled cases).
* UA-MT layout: ``2018LA_Seg_Training Set/<case>/mri_norm2.h5`` with HDF5 datasets ``image`` and
  ``label`` (1 = left atrium), INPUT being that folder or its parent. The arrays are indexed
  (x, y, z) as UA-MT wrote them from the NRRDs; the files hold no geometry, so the volumes get
  0.625 mm isotropic spacing (the LA data's resolution), origin 0 and identity direction.

Split: ``train.list`` and ``test.list`` next to the case folders' parent (UA-MT keeps them beside
``2018LA_Seg_Training Set``; for the challenge layout, in INPUT) are used when both exist; else a
seeded split with 20 % test cases. Result: ``$nnUNet_raw/DatasetXXX_LeftAtrium``, channel ``MRI``,
labels background/left_atrium, ``.nii.gz``, training cases tagged HQ/LQ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import SimpleITK as sitk

from dataset_conversion.raw_dataset_writer import (
    CaseData,
    CaseLoader,
    ConversionSummary,
    DatasetSpec,
    conversion_parser,
    convert_cases,
)
from dataset_conversion.splits import Split, seeded_split, split_from_lists
from dataset_conversion.volume_checks import binary_label, read_binary_label, read_image
from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.cli_runner import run_cli

IMAGE_NRRD = "lgemri.nrrd"
LABEL_NRRD = "laendo.nrrd"
NRRD_FOREGROUND = 255
H5_FOLDER = "2018LA_Seg_Training Set"
H5_FILE = "mri_norm2.h5"
H5_SPACING_MM = 0.625
TRAIN_LIST = "train.list"
TEST_LIST = "test.list"
DEFAULT_TEST_FRACTION = 0.2
CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


LA_DATASET = DatasetSpec(
    name="LeftAtrium",
    channel_name="MRI",
    labels={"background": 0, "left_atrium": 1},
    description="2018 Atrial Segmentation Challenge LGE-MRI, left atrium cavity; HQ/LQ tags for ALC",
    reference="Xiong et al., A global benchmark of algorithms for segmenting the left atrium from late "
              "gadolinium-enhanced cardiac MRI, Medical Image Analysis 2021",
)


def _load_nrrd_case(folder: Path) -> CaseData:
    """A challenge-layout case: lgemri.nrrd and laendo.nrrd (0/255) with their own geometry."""
    image_file, label_file = folder / IMAGE_NRRD, folder / LABEL_NRRD
    image, label = read_image(image_file), read_binary_label(label_file, NRRD_FOREGROUND)
    return CaseData(image, label, str(image_file), str(label_file))


def _load_h5_case(path: Path) -> CaseData:
    """A UA-MT case: mri_norm2.h5 arrays indexed (x, y, z), placed on a 0.625 mm isotropic grid."""
    if not path.is_file():
        raise InputDataError(f"missing file {path}")
    try:
        with h5py.File(path, "r") as handle:
            arrays = {key: handle[key][()] for key in ("image", "label") if key in handle}
    except OSError as error:
        raise InputDataError(f"cannot read {path}: {error}") from None
    for key in ("image", "label"):
        if key not in arrays:
            raise InputDataError(f"{path} has no HDF5 dataset '{key}'")
    image, label = arrays["image"], arrays["label"]
    if image.ndim != 3 or image.shape != label.shape:
        raise InputDataError(f"{path}: 'image' {image.shape} and 'label' {label.shape} must be 3D of the same shape")
    values = binary_label(label, 1, f"{path}['label']")
    image_itk = sitk.GetImageFromArray(np.ascontiguousarray(image.transpose(2, 1, 0), dtype=np.float32))
    image_itk.SetSpacing((H5_SPACING_MM,) * 3)
    label_itk = sitk.GetImageFromArray(np.ascontiguousarray(values.transpose(2, 1, 0)))
    label_itk.CopyInformation(image_itk)
    return CaseData(image_itk, label_itk, f"{path}['image']", f"{path}['label']")


def _case_id(folder: Path) -> str:
    """The case id of a case folder: its name, which must be a plain identifier."""
    if not CASE_ID.fullmatch(folder.name):
        raise InputDataError(f"case folder name {folder} is not usable as a case id (letters, digits, _ and - only)")
    return folder.name


def find_la_cases(input_dir: Path) -> tuple[dict[str, CaseLoader], Path]:
    """Detect the layout; return (case id -> loader, folder where train.list/test.list would be)."""
    if not input_dir.is_dir():
        raise InputDataError(f"input folder {input_dir} does not exist")
    h5_root = input_dir / H5_FOLDER if (input_dir / H5_FOLDER).is_dir() else input_dir
    h5_folders = sorted(d for d in h5_root.iterdir() if d.is_dir()) if list(h5_root.glob(f"*/{H5_FILE}")) else []
    nrrd_folders = sorted({f.parent for name in (IMAGE_NRRD, LABEL_NRRD) for f in input_dir.rglob(name)})
    if h5_folders and nrrd_folders:
        raise InputDataError(f"{input_dir} holds both {H5_FILE} and NRRD cases; point -i at one layout")
    if not (h5_folders or nrrd_folders):
        raise InputDataError(
            f"no LA cases under {input_dir}: expected <case>/{IMAGE_NRRD} + {LABEL_NRRD} folders, "
            f"or {H5_FOLDER}/<case>/{H5_FILE}"
        )
    if h5_folders:
        loaders = {_case_id(d): (lambda d=d: _load_h5_case(d / H5_FILE)) for d in h5_folders}
        list_dir = h5_root.parent
    else:
        loaders = {_case_id(d): (lambda d=d: _load_nrrd_case(d)) for d in nrrd_folders}
        list_dir = input_dir
    folders = h5_folders or nrrd_folders
    if len(loaders) != len(folders):
        names = [d.name for d in folders]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise InputDataError(f"case folder names occur more than once under {input_dir}: {', '.join(duplicates)}")
    return loaders, list_dir


def _list_entry_to_case(entry: str) -> str:
    """A list line is a case folder name, possibly as a path to the folder or to its mri_norm2.h5."""
    path = Path(entry.replace("\\", "/"))
    return path.parent.name if path.name == H5_FILE else path.name


def la_split(cases: list[str], list_dir: Path, test_fraction: float, seed: int) -> Split:
    """Split by train.list/test.list in ``list_dir`` when both exist, else a seeded split."""
    train_file, test_file = list_dir / TRAIN_LIST, list_dir / TEST_LIST
    if train_file.is_file() != test_file.is_file():
        present, absent = (train_file, test_file) if train_file.is_file() else (test_file, train_file)
        raise InputDataError(f"found {present} but not {absent}; give both split lists or neither")
    if train_file.is_file():
        return split_from_lists(cases, train_file, test_file, _list_entry_to_case)
    return seeded_split(cases, test_fraction, seed)


def convert_la(
    input_dir: str | Path,
    dataset_id: int,
    hq_fraction: float | None = None,
    hq_count: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    show_progress: bool = True,
) -> ConversionSummary:
    """Convert the LA data in ``input_dir`` into ``$nnUNet_raw/DatasetXXX_LeftAtrium`` (see module doc)."""
    loaders, list_dir = find_la_cases(Path(input_dir))
    split = la_split(sorted(loaders), list_dir, test_fraction, seed)
    return convert_cases(LA_DATASET, dataset_id, loaders, split, hq_fraction, hq_count, seed, overwrite,
                         show_progress)


def _main(argv: Sequence[str] | None) -> None:
    """Run the command; errors are turned into exit status 2 by :func:`main`."""
    parser = conversion_parser(
        "nnUNetv2_alc_convert_LA",
        "Convert the Left Atrium (2018 challenge NRRD or UA-MT HDF5 layout) into an nnU-Net raw dataset with "
        "HQ/LQ tags.",
        DEFAULT_TEST_FRACTION,
    )
    parser.add_argument("-i", "--input", required=True, metavar="INPUT",
                        help=f"folder of case folders with {IMAGE_NRRD}/{LABEL_NRRD}, or the UA-MT data folder "
                             f"(holding '{H5_FOLDER}', train.list, test.list)")
    args = parser.parse_args(argv)
    summary = convert_la(args.input, args.dataset_id, args.hq_fraction, args.hq_count, args.seed, args.overwrite,
                         args.test_fraction)
    print(summary)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    run_cli(_main, argv, "nnUNetv2_alc_convert_LA")
