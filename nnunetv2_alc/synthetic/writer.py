"""Writing the files of an nnU-Net v2 raw dataset: NIfTI volumes and dataset.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunetv2_alc.raw_dataset import NIFTI_FILE_ENDING as FILE_ENDING

CHANNEL = "0000"
SUBFOLDERS = ("imagesTr", "labelsTr", "imagesTs", "labelsTs")
LABEL_NAMES = ("background", "target", "second")


def write_volume(array: np.ndarray, spacing: tuple[float, float, float], path: Path) -> None:
    """Write a (z, y, x) array with its (z, y, x) spacing in mm as compressed NIfTI."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    sitk.WriteImage(image, str(path), useCompression=True)


def write_case(folder: Path, split: str, case_id: str, image: np.ndarray, label: np.ndarray,
               spacing: tuple[float, float, float]) -> None:
    """Write one case's image (``<case>_0000``) and label into the ``Tr`` or ``Ts`` folders."""
    suffix = "Tr" if split == "train" else "Ts"
    write_volume(image, spacing, folder / f"images{suffix}" / f"{case_id}_{CHANNEL}{FILE_ENDING}")
    write_volume(label, spacing, folder / f"labels{suffix}" / f"{case_id}{FILE_ENDING}")


def dataset_json(name: str, description: str, num_training: int, num_classes: int, provenance: dict) -> dict:
    """dataset.json content; the non-CT channel name makes nnU-Net use z-score normalisation."""
    return {
        "name": name,
        "description": description,
        "channel_names": {"0": "MRI"},
        "labels": {label: value for value, label in enumerate(LABEL_NAMES[: num_classes + 1])},
        "numTraining": num_training,
        "file_ending": FILE_ENDING,
        "synthetic": provenance,
    }


def datasets_with_id(root: Path, dataset_id: int) -> list[Path]:
    """Folders in ``root`` that nnU-Net would resolve for ``dataset_id`` (``DatasetXXX_*``)."""
    return sorted(p for p in root.glob(f"Dataset{dataset_id:03d}_*") if p.is_dir())

