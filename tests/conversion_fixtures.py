"""Tiny datasets written in the real formats (NIfTI, PNG, NRRD, HDF5, DICOM) and helpers shared by the tests
of noise generation and dataset conversion. Imported by the test modules (not a conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import h5py
import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

from dataset_conversion.convert_NIH import keep_locale

SHAPE = (16, 20, 24)  # (z, y, x)
SPACING = (0.8, 0.7, 1.5)  # (x, y, z) as SimpleITK orders it


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the nnU-Net folders at empty temporary folders; returns the environment for subprocesses."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.setenv(name, str(folder))
    return dict(os.environ)


def raw_root() -> Path:
    return Path(os.environ["nnUNet_raw"])


def blob(shape: tuple[int, ...], rng: np.random.Generator, value: int = 1, fill: float = 0.3) -> np.ndarray:
    """An ellipsoid of ``value`` (dtype uint8) at a random place, roughly ``fill`` of each axis in radius."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    centre = [rng.uniform(0.35, 0.65) * s for s in shape]
    radii = [max(fill * s * rng.uniform(0.8, 1.2), 1.5) for s in shape]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1
    return (inside * value).astype(np.uint8)


def volume(array: np.ndarray, spacing=SPACING, origin=(10.0, -20.0, 5.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def read_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _raw_dataset(dataset_id: int, name: str, ending: str, pairs: list[tuple[sitk.Image, sitk.Image]], channel: str,
                 labels: dict[str, int]) -> Path:
    """Write (image, label) pairs as cases ``<name lower>_000, ...`` of ``$nnUNet_raw/DatasetXXX_<name>``."""
    folder = raw_root() / f"Dataset{dataset_id:03d}_{name}"
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    for i, (image, label) in enumerate(pairs):
        case = f"{name.lower()}_{i:03d}"
        sitk.WriteImage(image, str(folder / "imagesTr" / f"{case}_0000{ending}"))
        sitk.WriteImage(label, str(folder / "labelsTr" / f"{case}{ending}"))
    generate_dataset_json(str(folder), {0: channel}, labels, len(pairs), ending, dataset_name=folder.name)
    return folder


def write_raw_dataset(dataset_id: int, n_cases: int, n_classes: int = 1, seed: int = 0) -> Path:
    """A 3D NIfTI dataset ``DatasetXXX_Toy`` (cases toy_000, ...) with ``n_classes`` blobs per case, no tags."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_cases):
        label = np.zeros(SHAPE, np.uint8)
        for c in range(1, n_classes + 1):
            label = np.where(label == 0, blob(SHAPE, rng, c, fill=0.25), label)
        pairs.append((volume(rng.normal(size=SHAPE).astype(np.float32) + label), volume(label)))
    labels = {"background": 0} | {f"class{c}": c for c in range(1, n_classes + 1)}
    return _raw_dataset(dataset_id, "Toy", ".nii.gz", pairs, "MRI", labels)


def write_png_dataset(dataset_id: int, n_cases: int, seed: int = 0) -> Path:
    """A 2D PNG dataset ``DatasetXXX_Flat`` (cases flat_000, ...; read by nnU-Net's NaturalImage2DIO)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_cases):
        label = blob((40, 36), rng)
        image = (rng.integers(0, 100, (40, 36)) + 100 * label).astype(np.uint8)
        pairs.append((sitk.GetImageFromArray(image), sitk.GetImageFromArray(label)))
    return _raw_dataset(dataset_id, "Flat", ".png", pairs, "R", {"background": 0, "thing": 1})


def write_la_challenge(root: Path, names: list[str], seed: int = 0) -> Path:
    """Challenge layout: ``root/<case>/lgemri.nrrd`` (uint8 MRI) and ``laendo.nrrd`` (0/255)."""
    rng = np.random.default_rng(seed)
    for name in names:
        case = root / name
        case.mkdir(parents=True)
        label = blob(SHAPE, rng) * 255
        image = (rng.integers(0, 120, SHAPE) + label // 3).astype(np.uint8)
        sitk.WriteImage(volume(image, (0.625,) * 3), str(case / "lgemri.nrrd"))
        sitk.WriteImage(volume(label.astype(np.uint8), (0.625,) * 3), str(case / "laendo.nrrd"))
    return root


def write_la_h5(data: Path, names: list[str], lists: tuple[list[str], list[str]] | None = None, seed: int = 0) -> Path:
    """UA-MT layout: ``data/2018LA_Seg_Training Set/<case>/mri_norm2.h5`` (arrays indexed x, y, z) + lists."""
    rng = np.random.default_rng(seed)
    xyz = SHAPE[::-1]
    for name in names:
        case = data / "2018LA_Seg_Training Set" / name
        case.mkdir(parents=True)
        label = blob(xyz, rng)
        with h5py.File(case / "mri_norm2.h5", "w") as handle:
            handle["image"] = (rng.normal(size=xyz) + label).astype(np.float32)
            handle["label"] = label
    if lists is not None:
        for file_name, entries in zip(("train.list", "test.list"), lists):
            (data / file_name).write_text("".join(f"{e}\n" for e in entries))
    return data


def write_dicom_series(folder: Path, hu: np.ndarray, spacing=SPACING, origin=(-120.0, -80.0, 300.0),
                       uid: str = "1.2.826.0.1.3680043.2.1125.7") -> None:
    """One axial CT series (z, y, x int16 HU), one file per slice, with the tags a CT scanner writes.

    Pixel data are stored with RescaleIntercept -1024 / RescaleSlope 1 (GDCM applies the inverse
    rescale on writing), so reading the series back must apply the rescale to give HU.
    """
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(hu.shape[0]):
        image = sitk.GetImageFromArray(hu[z].astype(np.int16))
        image.SetSpacing(spacing[:2])
        tags = {
            "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
            "0008|0018": f"{uid}.3.{z + 1}",
            "0008|0060": "CT",
            "0010|0020": folder.parts[-3] if len(folder.parts) >= 3 else "patient",
            "0018|0050": f"{spacing[2]}",
            "0020|000d": f"{uid}.1",
            "0020|000e": f"{uid}.2",
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(f"{v}" for v in (origin[0], origin[1], origin[2] + z * spacing[2])),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{spacing[1]}\\{spacing[0]}",
            "0028|1052": "-1024",
            "0028|1053": "1",
        }
        for key, value in tags.items():
            image.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"1-{z + 1:03d}.dcm"))
        with keep_locale():
            writer.Execute(image)


def ct_geometry_image(array: np.ndarray, origin=(-120.0, -80.0, 300.0)) -> sitk.Image:
    """An image on the grid :func:`write_dicom_series` produces with the default spacing and the given origin."""
    return volume(array, SPACING, origin)


def write_nih(root: Path, numbers: list[int], seed: int = 0) -> tuple[Path, Path]:
    """``root/Pancreas-CT/PANCREAS_XXXX/<study>/<series>/*.dcm`` and ``root/labels/labelXXXX.nii.gz``."""
    rng = np.random.default_rng(seed)
    labels = root / "labels"
    labels.mkdir(parents=True)
    for n in numbers:
        label = blob(SHAPE, rng, fill=0.2)
        hu = (rng.integers(-1000, 400, SHAPE) * (1 - label) + 40 * label).astype(np.int16)
        series = root / "Pancreas-CT" / f"PANCREAS_{n:04d}" / f"11-24-2015-PANCREAS{n:04d}-Pancreas-1" / "Pancreas-2"
        write_dicom_series(series, hu, uid=f"1.2.826.0.1.3680043.2.1125.{n}")
        sitk.WriteImage(ct_geometry_image(label), str(labels / f"label{n:04d}.nii.gz"))
    return root / "Pancreas-CT", labels


def run_entry_point(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run an installed console script."""
    executable = shutil.which(name)
    assert executable, f"{name} is not installed (pip install -e .)"
    return subprocess.run([executable, *map(str, args)], env=env, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=120)


class _InProcessPool:
    """Stands in for multiprocessing's spawn pool: same starmap, run in this process."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def starmap(function, iterable):
        return [function(*args) for args in iterable]


def verify_with_nnunet(folder: Path) -> None:
    """nnU-Net's own ``verify_dataset_integrity`` on ``folder``; raises if nnU-Net rejects the dataset.

    The check functions run unchanged; only its spawn pool is replaced by an in-process one, which
    saves starting a fresh interpreter (and importing torch) in a worker.
    """
    from nnunetv2.experiment_planning import verify_dataset_integrity as module

    shim = SimpleNamespace(get_context=lambda method: SimpleNamespace(Pool=_InProcessPool))
    with mock.patch.object(module, "multiprocessing", shim):
        module.verify_dataset_integrity(str(folder), num_processes=1)


def assert_nothing_left(root: Path) -> None:
    """No dataset folder and no temporary folder was left in ``root``."""
    assert sorted(p.name for p in root.iterdir()) == []
