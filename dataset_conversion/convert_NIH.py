"""``nnUNetv2_alc_convert_NIH``: the NIH Pancreas-CT data (TCIA) as an nnU-Net raw dataset.

Input: the DICOM tree ``Pancreas-CT/PANCREAS_XXXX/<study>/<series>/*.dcm`` (PANCREAS_CT_DIR may be
the ``Pancreas-CT`` folder or its parent) and a folder of labels ``labelXXXX.nii.gz`` (1 = pancreas).
Each case folder must hold exactly one DICOM series, found with GDCM's series ids and read with
SimpleITK's ImageSeriesReader; intensities stay in Hounsfield units (rescale slope/intercept
applied) and the channel is named ``CT``, so nnU-Net uses its CT normalisation. Each label must lie on
its image's voxel grid (see :mod:`dataset_conversion.volume_checks` for the tolerances); the cases
that do not are listed together in one error.

Split: ``--train-list``/``--test-list`` (case ids ``PANCREAS_0001`` or bare numbers, one per line;
the paper uses 62/20) or a seeded split with the paper's ratio, 20 of 82 cases for testing.
Result: ``$nnUNet_raw/DatasetXXX_PancreasCT``, labels background/pancreas, ``.nii.gz``.
"""

from __future__ import annotations

import locale
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

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
from dataset_conversion.volume_checks import read_binary_label
from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.cli_runner import run_cli

CT_FOLDER = "Pancreas-CT"
CASE_FOLDER = re.compile(r"PANCREAS_(\d{4})")
LABEL_FILE = re.compile(r"label(\d{4})\.nii\.gz")
DEFAULT_TEST_FRACTION = 20 / 82


NIH_DATASET = DatasetSpec(
    name="PancreasCT",
    channel_name="CT",
    labels={"background": 0, "pancreas": 1},
    description="NIH Pancreas-CT (TCIA), contrast-enhanced abdominal CT in HU, pancreas; HQ/LQ tags for ALC",
    reference="Roth et al., DeepOrgan: Multi-level deep convolutional networks for automated pancreas "
              "segmentation, MICCAI 2015; data: The Cancer Imaging Archive, Pancreas-CT",
)


def case_id(number: str) -> str:
    """Case id of a four-digit case number, e.g. ``PANCREAS_0001``."""
    return f"PANCREAS_{number}"


@contextmanager
def keep_locale():
    """Undo the process-wide switch to the "C" locale that GDCM makes when it reads or writes DICOM.

    Without this, everything the process writes afterwards with the default text encoding would be
    ASCII-only (e.g. subprocess output decoding, progress bars, JSON with non-ASCII case names).
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def read_dicom_series(case_dir: Path) -> sitk.Image:
    """Read the single DICOM series under ``case_dir`` (searched recursively) in HU."""
    with keep_locale():
        return _read_dicom_series(case_dir)


def _read_dicom_series(case_dir: Path) -> sitk.Image:
    series = []
    for folder, subfolders, files in os.walk(case_dir):
        subfolders.sort()
        if any(name.lower().endswith(".dcm") for name in files):
            series += [(folder, sid) for sid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)]
    if not series:
        raise InputDataError(f"no readable DICOM series under {case_dir}")
    if len(series) > 1:
        shown = ", ".join(f"{os.path.relpath(folder, case_dir)} ({sid})" for folder, sid in series)
        raise InputDataError(f"{case_dir} holds {len(series)} DICOM series, expected one: {shown}")
    folder, series_id = series[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, series_id))
    try:
        image = reader.Execute()
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1]
        raise InputDataError(f"cannot read the DICOM series in {folder}: {reason}") from None
    values = sitk.GetArrayViewFromImage(image)
    fits_int16 = np.iinfo(np.int16).min <= values.min() and values.max() <= np.iinfo(np.int16).max
    if fits_int16 and np.array_equal(values, np.round(values)):
        image = sitk.Cast(image, sitk.sitkInt16)  # HU are integers; int16 halves the files of the int32 GDCM gives
    return image


def _load_case(case_dir: Path, label_file: Path) -> CaseData:
    """One NIH case: the DICOM series in HU and its 0/1 NIfTI label."""
    image, label = read_dicom_series(case_dir), read_binary_label(label_file, 1)
    return CaseData(image, label, f"DICOM series under {case_dir}", str(label_file))


def find_nih_cases(ct_dir: Path, labels_dir: Path) -> dict[str, CaseLoader]:
    """Pair case folders ``PANCREAS_XXXX`` with ``labelXXXX.nii.gz``; unpaired ones on either side are an error."""
    for folder in (ct_dir, labels_dir):
        if not folder.is_dir():
            raise InputDataError(f"input folder {folder} does not exist")
    if (ct_dir / CT_FOLDER).is_dir():
        ct_dir = ct_dir / CT_FOLDER
    scans = {m.group(1): d for d in ct_dir.iterdir() if d.is_dir() and (m := CASE_FOLDER.fullmatch(d.name))}
    labels = {m.group(1): f for f in labels_dir.iterdir() if (m := LABEL_FILE.fullmatch(f.name))}
    if not scans:
        raise InputDataError(f"no PANCREAS_XXXX case folders in {ct_dir}")
    problems = []
    if set(scans) - set(labels):
        missing = ", ".join(f"label{n}.nii.gz" for n in sorted(set(scans) - set(labels)))
        problems.append(f"missing label files in {labels_dir}: {missing}")
    if set(labels) - set(scans):
        missing = ", ".join(case_id(n) for n in sorted(set(labels) - set(scans)))
        problems.append(f"labels without a CT case folder in {ct_dir}: {missing}")
    if problems:
        raise InputDataError("; ".join(problems))
    return {case_id(n): (lambda n=n: _load_case(scans[n], labels[n])) for n in sorted(scans)}


def _list_entry_to_case(entry: str) -> str:
    """``PANCREAS_0001``, ``0001`` or ``1`` -> ``PANCREAS_0001`` (anything else is kept as written)."""
    return case_id(f"{int(entry):04d}") if entry.isdigit() else entry


def nih_split(cases: list[str], train_list: Path | None, test_list: Path | None, test_fraction: float,
              seed: int) -> Split:
    """Split by the two list files when given (both or neither), else a seeded split."""
    if (train_list is None) != (test_list is None):
        raise InputDataError("give both --train-list and --test-list, or neither")
    if train_list is not None:
        return split_from_lists(cases, Path(train_list), Path(test_list), _list_entry_to_case)
    return seeded_split(cases, test_fraction, seed)


def convert_nih(
    ct_dir: str | Path,
    labels_dir: str | Path,
    dataset_id: int,
    hq_fraction: float | None = None,
    hq_count: int | None = None,
    train_list: str | Path | None = None,
    test_list: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    show_progress: bool = True,
) -> ConversionSummary:
    """Convert NIH Pancreas-CT into ``$nnUNet_raw/DatasetXXX_PancreasCT`` (see module doc)."""
    loaders = find_nih_cases(Path(ct_dir), Path(labels_dir))
    split = nih_split(sorted(loaders), train_list, test_list, test_fraction, seed)
    return convert_cases(NIH_DATASET, dataset_id, loaders, split, hq_fraction, hq_count, seed, overwrite,
                         show_progress)


def _main(argv: Sequence[str] | None) -> None:
    """Run the command; errors are turned into exit status 2 by :func:`main`."""
    parser = conversion_parser(
        "nnUNetv2_alc_convert_NIH",
        "Convert NIH Pancreas-CT (DICOM series + labelXXXX.nii.gz) into an nnU-Net raw dataset with HQ/LQ tags.",
        DEFAULT_TEST_FRACTION,
    )
    parser.add_argument("-i", "--input", required=True, metavar="PANCREAS_CT_DIR",
                        help=f"the {CT_FOLDER} folder (holding PANCREAS_XXXX) or its parent")
    parser.add_argument("-l", "--labels", required=True, metavar="LABELS_DIR", help="folder with labelXXXX.nii.gz")
    parser.add_argument("--train-list", metavar="FILE", help="training case ids, one per line (with --test-list)")
    parser.add_argument("--test-list", metavar="FILE", help="test case ids, one per line (with --train-list)")
    args = parser.parse_args(argv)
    summary = convert_nih(args.input, args.labels, args.dataset_id, args.hq_fraction, args.hq_count,
                          args.train_list, args.test_list, args.seed, args.overwrite, args.test_fraction)
    print(summary)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    run_cli(_main, argv, "nnUNetv2_alc_convert_NIH")
