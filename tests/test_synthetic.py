"""Tests of the synthetic noisy-label dataset generator (nnunetv2_alc.synthetic)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.synthetic import PRESETS, best_threshold_dice, generate_case, main, make_synthetic_dataset
from nnunetv2_alc.synthetic.fields import Grid
from nnunetv2_alc.synthetic.shapes import rasterise, sample_anatomy

FAST = dict(show_progress=False)


def _read(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), tuple(reversed(image.GetSpacing()))


@pytest.fixture(scope="module")
def tiny3d(tmp_path_factory) -> Path:
    """A two-class tiny3d dataset, written once for the module."""
    root = tmp_path_factory.mktemp("raw")
    return make_synthetic_dataset(501, "tiny3d", num_classes=2, seed=3, output_root=root, **FAST)


@pytest.mark.parametrize("kind", ["tiny3d", "tiny2d"])
def test_cases_are_reproducible_and_seed_dependent(kind):
    preset = PRESETS[kind]
    image, label = generate_case(preset, seed=0, split="train", index=4)
    again_image, again_label = generate_case(preset, seed=0, split="train", index=4)
    other_image, _ = generate_case(preset, seed=1, split="train", index=4)
    test_image, _ = generate_case(preset, seed=0, split="test", index=4)
    assert np.array_equal(image, again_image) and np.array_equal(label, again_label)
    assert not np.allclose(image, other_image)
    assert not np.allclose(image, test_image)
    assert image.shape == label.shape == preset.shape
    assert image.dtype == np.float32 and label.dtype == np.uint8 and np.isfinite(image).all()


def test_second_class_is_the_neighbour_and_leaves_the_image_unchanged():
    preset = PRESETS["tiny3d"]
    image1, label1 = generate_case(preset, 0, "train", 2, num_classes=1)
    image2, label2 = generate_case(preset, 0, "train", 2, num_classes=2)
    assert np.array_equal(image1, image2)
    assert set(np.unique(label1)) == {0, 1} and set(np.unique(label2)) == {0, 1, 2}
    assert np.array_equal(label2 == 1, label1 == 1)


@pytest.mark.parametrize("kind", list(PRESETS))
def test_every_preset_has_a_textured_target_a_distractor_and_noise(kind):
    preset = PRESETS[kind]
    grid = Grid(preset.shape, preset.spacing)
    masks = rasterise(sample_anatomy(np.random.default_rng(7), grid, preset.geometry), grid)
    assert masks.target.any() and masks.neighbour.any() and masks.distractors.any()
    assert not (masks.target & (masks.neighbour | masks.distractors)).any()
    image, label = generate_case(preset, 0, "train", 0)
    assert label.any()
    inside = image[label == 1]
    assert inside.std() > 0.05 * inside.mean()  # texture and noise, not a flat fill
    assert np.unique(image).size > 0.5 * image.size  # continuous noise everywhere


def test_benchmark_cannot_be_solved_by_a_global_threshold():
    image, label = generate_case(PRESETS["benchmark"], 0, "test", 0)
    dice, _ = best_threshold_dice(image, label == 1)
    assert dice < 0.6  # measured 0.3-0.4 over seeds; see docs/synthetic.md


def test_best_threshold_dice_is_exact_on_separable_data():
    image = np.arange(10, dtype=np.float32)
    assert best_threshold_dice(image, image >= 6) == (1.0, 6.0)
    assert best_threshold_dice(image, image == 0)[0] == pytest.approx(2 / 11)


def test_dataset_layout_and_dataset_json(tiny3d):
    preset = PRESETS["tiny3d"]
    info = json.loads((tiny3d / "dataset.json").read_text())
    assert tiny3d.name == "Dataset501_SyntheticTiny3D"
    assert info["labels"] == {"background": 0, "target": 1, "second": 2}
    assert info["channel_names"] == {"0": "MRI"} and info["file_ending"] == ".nii.gz"
    assert info["numTraining"] == preset.num_train
    assert len(list((tiny3d / "imagesTr").glob("*_0000.nii.gz"))) == preset.num_train
    assert len(list((tiny3d / "imagesTs").glob("*_0000.nii.gz"))) == preset.num_test
    image, spacing = _read(tiny3d / "imagesTr" / "train_000_0000.nii.gz")
    assert image.shape == preset.shape and spacing == preset.spacing
    expected_image, expected_label = generate_case(preset, 3, "test", 1, num_classes=2)
    assert np.array_equal(_read(tiny3d / "imagesTs" / "test_001_0000.nii.gz")[0], expected_image)
    assert np.array_equal(_read(tiny3d / "labelsTs" / "test_001.nii.gz")[0], expected_label)
    assert not [p for p in tiny3d.parent.iterdir() if p.name.startswith(".")]  # no staging left


class _InProcessPool:
    """Stands in for a multiprocessing pool: runs ``starmap`` serially in this process."""

    def __init__(self, processes: int):
        del processes

    def __enter__(self) -> "_InProcessPool":
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def starmap(self, function, arguments):
        return [function(*args) for args in arguments]


def test_dataset_passes_nnunet_integrity_check(tiny3d, monkeypatch):
    """nnU-Net's own check; its per-file checks run in this process (a spawned worker would re-import
    torch, which takes longer than the whole rest of this file)."""
    from nnunetv2.experiment_planning import verify_dataset_integrity as module

    in_process = SimpleNamespace(get_context=lambda method: SimpleNamespace(Pool=_InProcessPool))
    monkeypatch.setattr(module, "multiprocessing", in_process)
    module.verify_dataset_integrity(str(tiny3d), num_processes=1)


def test_training_cases_are_tagged_and_lq_labels_corrupted(tiny3d):
    tags = json.loads((tiny3d / "dataset.json").read_text())["label_quality"]
    assert sorted(tags) == [f"train_{i:03d}" for i in range(PRESETS["tiny3d"].num_train)]
    assert sorted(tags.values()).count("HQ") == 2  # round(0.2 * 10)
    for case, quality in tags.items():
        noisy = _read(tiny3d / "labelsTr" / f"{case}.nii.gz")[0]
        clean = _read(tiny3d / "labelsTr_clean" / f"{case}.nii.gz")[0]
        assert np.array_equal(clean, generate_case(PRESETS["tiny3d"], 3, "train", int(case[-3:]), 2)[1])
        assert np.array_equal(noisy, clean) == (quality == "HQ")


def test_existing_dataset_is_refused_then_overwritten(tmp_path):
    small = dict(num_train=2, num_test=0, hq_count=1, output_root=tmp_path, **FAST)
    first = make_synthetic_dataset(7, "tiny2d", **small)
    with pytest.raises(InputDataError, match="already exists"):
        make_synthetic_dataset(7, "tiny3d", **small)
    second = make_synthetic_dataset(7, "tiny3d", overwrite=True, seed=5, **small)
    assert not first.exists() and [p.name for p in tmp_path.iterdir()] == [second.name]
    assert json.loads((second / "dataset.json").read_text())["synthetic"]["seed"] == 5


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(kind="tiny4d"), "unknown kind"),
        (dict(num_train=1), "num_train"),
        (dict(num_classes=3), "num_classes"),
        (dict(radius=(3, 1)), "radius"),
        (dict(hq_fraction=1.0), "HQ fraction"),
        (dict(hq_count=10), "no LQ case"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_arguments_fail_before_writing(tmp_path, arguments, message):
    with pytest.raises(InputDataError, match=message):
        make_synthetic_dataset(8, output_root=tmp_path, **FAST, **arguments)
    assert not list(tmp_path.iterdir())


def test_cli_writes_a_dataset_and_reports_bad_input_in_one_line(tmp_path, capsys):
    env = {**os.environ, "nnUNet_raw": str(tmp_path)}
    command = [sys.executable, "-m", "nnunetv2_alc.synthetic", "-d", "9", "--kind", "tiny2d", "--num-train", "4",
               "--num-test", "1", "--hq-count", "1", "--radius", "1", "2", "--seed", "2"]
    done = subprocess.run(command, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Wrote" in done.stdout and "4 training cases: 1 HQ, 3 LQ" in done.stdout
    assert (tmp_path / "Dataset009_SyntheticTiny2D" / "labelsTs" / "test_000.nii.gz").is_file()

    for argv, message in ((["-d", "9", "--kind", "tiny2d"], "already exists"),
                          (["-d", "9", "--kind", "huge"], "invalid choice")):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "-o", str(tmp_path)])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
