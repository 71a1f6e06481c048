"""``make_synthetic_dataset``: generate a preset's cases, write the raw dataset, tag and corrupt it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tqdm import tqdm

from nnunetv2_alc.atomic_write import atomic_folder
from nnunetv2_alc.raw_dataset import DATASET_JSON, raw_root, save_json
from nnunetv2_alc.input_errors import InputDataError
from noise_generation.make_noisy import make_noisy_dataset
from nnunetv2_alc.case_selection import check_seed, select_hq

from .case import generate_case
from .presets import PRESETS, Preset
from .writer import SUBFOLDERS, dataset_json, datasets_with_id, write_case


class SyntheticDatasetError(InputDataError):
    """Bad arguments, or a dataset that already exists (the CLI prints it on one line, exit status 2)."""


def make_synthetic_dataset(
    dataset_id: int,
    kind: str = "tiny3d",
    num_train: int | None = None,
    num_test: int | None = None,
    hq_fraction: float | None = 0.2,
    hq_count: int | None = None,
    radius: tuple[int, int] | None = None,
    num_classes: int = 1,
    seed: int = 0,
    output_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Write ``Dataset{dataset_id:03d}_<Name>`` and return its folder.

    ``kind`` picks a preset (``tiny3d``, ``tiny2d``, ``benchmark``); ``num_train``, ``num_test`` and
    ``radius`` default to the preset's. Training cases go to imagesTr/labelsTr, test cases with clean
    labels to imagesTs/labelsTs. Then ``noise_generation.make_noisy.make_noisy_dataset`` tags the
    training cases HQ/LQ (``hq_count`` cases if given, else ``hq_fraction`` of them, drawn with
    ``seed``) and corrupts the LQ labels (clean copies stay in labelsTr_clean). Case ``i`` of a split
    depends only on ``(seed, split, i)``.

    The dataset goes to ``output_root`` (default: ``$nnUNet_raw``). An existing dataset with this id
    is an error unless ``overwrite``, which replaces every ``DatasetXXX_*`` folder with the same id.
    The dataset is built in a hidden folder beside its target and moved into place only when complete.
    Bad arguments raise :class:`~nnunetv2_alc.cli_runner.InputDataError` before anything is written.
    """
    preset = _preset(kind)
    num_train = preset.num_train if num_train is None else num_train
    num_test = preset.num_test if num_test is None else num_test
    radius = preset.radius if radius is None else tuple(radius)
    hq_fraction = None if hq_count is not None else hq_fraction
    _check(dataset_id, num_train, num_test, radius, num_classes, seed)
    select_hq(case_ids("train", num_train), hq_fraction=hq_fraction, hq_count=hq_count, seed=seed)
    root = _output_root(output_root)
    name = f"Dataset{dataset_id:03d}_{preset.dataset_name}"
    existing = datasets_with_id(root, dataset_id)
    if existing and not overwrite:
        raise SyntheticDatasetError(
            f"dataset {dataset_id} already exists: {existing[0]} (use overwrite=True / --overwrite to replace it)"
        )

    with atomic_folder(root / name, replace=True) as folder:
        _write_cases(folder, name, preset, num_train, num_test, num_classes, seed, show_progress)
        provenance = {"generator": __package__, "kind": kind, "seed": seed, "num_test": num_test}
        save_json(folder / DATASET_JSON, dataset_json(name, preset.description, num_train, num_classes, provenance))
        make_noisy_dataset(folder, hq_fraction=hq_fraction, hq_count=hq_count, radius=radius, seed=seed,
                           show_progress=show_progress)
    for other in existing:
        if other.name != name:
            shutil.rmtree(other)
    return root / name


def case_ids(split: str, count: int) -> list[str]:
    """Identifiers of the ``count`` cases of ``split`` (``train_000``, ..., ``test_000``, ...)."""
    return [f"{split}_{i:03d}" for i in range(count)]


def _write_cases(folder: Path, name: str, preset: Preset, num_train: int, num_test: int, num_classes: int, seed: int,
                 show_progress: bool) -> None:
    for sub in SUBFOLDERS:
        (folder / sub).mkdir()
    with tqdm(total=num_train + num_test, desc=f"Generating {name}", unit="case", disable=not show_progress) as bar:
        for split, count in (("train", num_train), ("test", num_test)):
            for index, case_id in enumerate(case_ids(split, count)):
                image, label = generate_case(preset, seed, split, index, num_classes)
                write_case(folder, split, case_id, image, label, preset.spacing)
                bar.update()


def _preset(kind: str) -> Preset:
    if kind not in PRESETS:
        raise SyntheticDatasetError(f"unknown kind {kind!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[kind]


def _check(dataset_id: int, num_train: int, num_test: int, radius: tuple[int, ...], num_classes: int,
           seed: int) -> None:
    check_seed(seed)
    problems = [
        (not 1 <= dataset_id <= 999, f"the dataset id must be in 1..999, got {dataset_id}"),
        (num_train < 2, f"num_train must be at least 2 (one HQ and one LQ case), got {num_train}"),
        (num_test < 0, f"num_test must be at least 0, got {num_test}"),
        (num_classes not in (1, 2), f"num_classes must be 1 or 2, got {num_classes}"),
        (len(radius) != 2 or not 0 <= radius[0] <= radius[1],
         f"radius must be (MIN, MAX) with 0 <= MIN <= MAX, got {radius}"),
    ]
    for failed, message in problems:
        if failed:
            raise SyntheticDatasetError(message)


def _output_root(output_root: str | os.PathLike | None) -> Path:
    if output_root is not None:
        return Path(output_root)
    return raw_root(must_exist=False)  # a new dataset may create it
