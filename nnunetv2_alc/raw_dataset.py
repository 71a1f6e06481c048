"""Find an nnU-Net v2 raw dataset (by id, name or path) and read/write its dataset.json and label files.

Label files are read and written with nnU-Net's own reader-writer for the dataset (chosen from
``dataset.json`` the way nnU-Net chooses it), so every file ending nnU-Net supports works.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.paths import nnUNet_raw
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
from nnunetv2.utilities.utils import get_identifiers_from_splitted_dataset_folder

from nnunetv2_alc.atomic_write import write_text_atomic
from nnunetv2_alc.input_errors import InputDataError

DATASET_JSON = "dataset.json"
IMAGES_TR = "imagesTr"
LABELS_TR = "labelsTr"
CLEAN_LABELS_TR = "labelsTr_clean"
NIFTI_FILE_ENDING = ".nii.gz"  # what our converters and the synthetic datasets write


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``-d/--dataset ID_OR_PATH`` option of the tools that work on an existing raw dataset."""
    parser.add_argument("-d", "--dataset", required=True, metavar="ID_OR_PATH",
                        help="dataset id or name (looked up in $nnUNet_raw) or path to the dataset folder")


def raw_root(must_exist: bool = True) -> Path:
    """The folder ``$nnUNet_raw`` points to (an error if it is unset, or not a folder when ``must_exist``)."""
    root = nnUNet_raw.get()
    if not root:
        raise InputDataError("the environment variable nnUNet_raw is not set; point it at your nnU-Net raw data folder")
    if must_exist and not os.path.isdir(root):
        raise InputDataError(f"nnUNet_raw={root} is not a folder")
    return Path(root)


def resolve_dataset(dataset: int | str | os.PathLike) -> Path:
    """Folder of a raw dataset given as an id (``4``, ``"004"``), a name (``"Dataset004_Hippocampus"``) or a path.

    Ids and names are looked up in ``$nnUNet_raw`` with nnU-Net's own id/name conversion; anything
    else is taken as a path to the dataset folder.
    """
    text = os.fspath(dataset) if not isinstance(dataset, int) else str(dataset)
    is_id = text.isdigit()
    is_name = text.startswith("Dataset") and os.sep not in text and not os.path.isdir(text)
    if not (is_id or is_name):
        folder = Path(text)
        if not folder.is_dir():
            raise InputDataError(f"dataset folder {folder} does not exist")
        return folder
    root = raw_root()
    try:
        name = maybe_convert_to_dataset_name(int(text) if is_id else text)
    except (RuntimeError, ValueError) as error:
        first_line = str(error).splitlines()[0]
        raise InputDataError(f"cannot resolve dataset {text!r} in nnUNet_raw={root}: {first_line}") from None
    folder = root / name
    if not folder.is_dir():
        raise InputDataError(f"dataset {name} has no folder in nnUNet_raw={root}")
    return folder


def load_json(path: Path) -> dict[str, Any]:
    """Load a JSON object, with an error naming the file if it is missing or malformed."""
    if not path.is_file():
        raise InputDataError(f"{path} does not exist")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputDataError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(content, dict):
        raise InputDataError(f"{path} must hold a JSON object")
    return content


def save_json(path: Path, content: Any) -> None:
    """Write JSON atomically (indented, key order kept)."""
    write_text_atomic(path, json.dumps(content, indent=4) + "\n")


@dataclass
class RawDataset:
    """A raw nnU-Net v2 dataset in the imagesTr/labelsTr layout."""

    folder: Path
    dataset_json: dict[str, Any]
    training_cases: list[str]

    @property
    def file_ending(self) -> str:
        return self.dataset_json["file_ending"]

    @property
    def dataset_json_path(self) -> Path:
        return self.folder / DATASET_JSON

    @property
    def labels_dir(self) -> Path:
        return self.folder / LABELS_TR

    @property
    def clean_labels_dir(self) -> Path:
        return self.folder / CLEAN_LABELS_TR

    def label_name(self, case: str) -> str:
        """File name of a case's label (the same in labelsTr and labelsTr_clean)."""
        return case + self.file_ending

    def reader_writer(self) -> BaseReaderWriter:
        """An instance of nnU-Net's reader-writer class for this dataset."""
        from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

        example = self.labels_dir / self.label_name(self.training_cases[0])
        try:
            return determine_reader_writer_from_dataset_json(self.dataset_json, str(example), verbose=False)()
        except RuntimeError as error:
            raise InputDataError(f"{self.folder}: no nnU-Net reader can open {example}: {error}") from None

    def save_dataset_json(self) -> None:
        save_json(self.dataset_json_path, self.dataset_json)


def open_raw_dataset(dataset: int | str | os.PathLike) -> RawDataset:
    """Resolve ``dataset`` and check it has a dataset.json, training images and a label for every training case."""
    folder = resolve_dataset(dataset)
    dataset_json = load_json(folder / DATASET_JSON)
    if "file_ending" not in dataset_json:
        raise InputDataError(f"{folder / DATASET_JSON} has no 'file_ending' entry")
    if "dataset" in dataset_json:
        raise InputDataError(
            f"{folder / DATASET_JSON} lists its files under 'dataset'; only the imagesTr/labelsTr layout is supported"
        )
    ending = dataset_json["file_ending"]
    if not (folder / IMAGES_TR).is_dir():
        raise InputDataError(f"{folder} has no {IMAGES_TR} folder")
    cases = sorted(str(c) for c in get_identifiers_from_splitted_dataset_folder(str(folder / IMAGES_TR), ending))
    if not cases:
        raise InputDataError(f"{folder / IMAGES_TR} holds no training images ending in {ending}")
    missing = [c for c in cases if not (folder / LABELS_TR / (c + ending)).is_file()]
    if missing:
        raise InputDataError(f"{folder / LABELS_TR} lacks the label of {len(missing)} case(s): "
                             f"{', '.join(missing[:10])}")
    return RawDataset(folder, dataset_json, cases)


def read_label(reader_writer: BaseReaderWriter, path: Path) -> tuple[np.ndarray, dict]:
    """Read a label file as an integer array of nnU-Net's shape (1, z, y, x), with its properties."""
    try:
        seg, properties = reader_writer.read_seg(str(path))
    except Exception as error:  # readers raise anything from RuntimeError to OSError
        raise InputDataError(f"cannot read label file {path}: {error}") from None
    if seg.size == 0 or seg.min() < 0 or not np.array_equal(seg, np.round(seg)):
        raise InputDataError(f"label file {path} must hold non-negative integer labels")
    dtype = np.uint8 if seg.max() < 256 else np.int32
    return seg.astype(dtype), properties


def write_label(reader_writer: BaseReaderWriter, seg: np.ndarray, path: Path, properties: dict) -> None:
    """Write a label array of shape (1, z, y, x) as read by :func:`read_label`."""
    reader_writer.write_seg(seg[0], str(path), properties)
