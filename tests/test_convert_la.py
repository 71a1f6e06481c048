"""nnUNetv2_alc_convert_LA: both input layouts, splits, tags, nnU-Net's own verification, bad inputs."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import SimpleITK as sitk
from conversion_fixtures import (
    SHAPE,
    assert_nothing_left,
    nnunet_env,  # noqa: F401  (pytest fixture)
    raw_root,
    read_array,
    run_entry_point,
    verify_with_nnunet,
    write_la_challenge,
    write_la_h5,
)

from dataset_conversion.convert_LA import convert_la
from dataset_conversion.convert_LA import main as convert_la_main
from nnunetv2_alc.input_errors import InputDataError
from noise_generation.make_noisy import make_noisy_dataset

NAMES = ["0RZDK210BSMWAA6467LU", "1D7CUD1955YZPGK8XHJX", "1GU15S0GJ6PFNARO469W", "23X6SY44VT9KFHR7S7OC",
         "2XL5HSFSE93RMOJDRGR4"]


def test_challenge_layout_via_cli_then_noise_passes_nnunet_verification(nnunet_env, tmp_path):
    source = write_la_challenge(tmp_path / "Training Set", NAMES)
    result = run_entry_point("nnUNetv2_alc_convert_LA", "-i", source, "-d", "21", "--hq-count", "1", "--seed", "4",
                             env=nnunet_env)
    assert result.returncode == 0, result.stderr
    assert "Converted 5 cases" in result.stdout and "Tags: 4 training cases: 1 HQ, 3 LQ" in result.stdout
    assert "Spacing range (mm): x 0.625..0.625" in result.stdout

    folder = raw_root() / "Dataset021_LeftAtrium"
    dataset_json = json.loads((folder / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "MRI"} and dataset_json["file_ending"] == ".nii.gz"
    assert dataset_json["labels"] == {"background": 0, "left_atrium": 1} and dataset_json["numTraining"] == 4
    split = json.loads((folder / "split.json").read_text())
    assert len(split["train"]) == 4 and len(split["test"]) == 1 and "seed 4" in split["source"]
    assert sorted(dataset_json["label_quality"]) == split["train"]
    for case in NAMES:
        subset = "Tr" if case in split["train"] else "Ts"
        image = sitk.ReadImage(str(folder / f"images{subset}" / f"{case}_0000.nii.gz"))
        original = sitk.ReadImage(str(source / case / "lgemri.nrrd"))
        assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original))
        assert np.allclose(image.GetOrigin(), original.GetOrigin()) and np.allclose(image.GetSpacing(), 0.625)
        label = read_array(folder / f"labels{subset}" / f"{case}.nii.gz")
        assert np.array_equal(label, read_array(source / case / "laendo.nrrd") // 255)

    make_noisy_dataset(21, radius=(1, 3), show_progress=False)  # tags from the conversion
    verify_with_nnunet(folder)


def test_uamt_h5_layout_with_split_lists(nnunet_env, tmp_path):
    data = write_la_h5(tmp_path / "data", NAMES, lists=(NAMES[:3], [f"{NAMES[3]}\n{NAMES[4]}"]))
    summary = convert_la(data / "2018LA_Seg_Training Set", 22, hq_fraction=0.34, show_progress=False)
    assert summary.split.train == sorted(NAMES[:3]) and summary.split.test == sorted(NAMES[3:])
    assert summary.spacing_min == summary.spacing_max == (0.625,) * 3
    folder = raw_root() / "Dataset022_LeftAtrium"
    with h5py.File(data / "2018LA_Seg_Training Set" / NAMES[4] / "mri_norm2.h5") as handle:
        image_xyz, label_xyz = handle["image"][()], handle["label"][()]
    image = sitk.ReadImage(str(folder / "imagesTs" / f"{NAMES[4]}_0000.nii.gz"))
    assert image.GetSize() == image_xyz.shape  # h5 axis 0 is x
    assert np.allclose(sitk.GetArrayFromImage(image), image_xyz.transpose(2, 1, 0))
    assert np.array_equal(read_array(folder / "labelsTs" / f"{NAMES[4]}.nii.gz"), label_xyz.transpose(2, 1, 0))
    assert list(json.loads((folder / "dataset.json").read_text())["label_quality"].values()).count("HQ") == 1


def test_seeded_split_and_tags_are_reproducible_and_overwrite_replaces(nnunet_env, tmp_path):
    data = write_la_h5(tmp_path / "data", NAMES)
    first = convert_la(data, 23, hq_count=2, seed=1, show_progress=False)
    with pytest.raises(InputDataError, match="already exists; pass --overwrite"):
        convert_la(data, 23, hq_count=2, seed=1, show_progress=False)
    again = convert_la(data, 23, hq_count=2, seed=1, overwrite=True, show_progress=False)
    assert (again.split, again.tags) == (first.split, first.tags)
    assert sorted(p.name for p in raw_root().iterdir()) == ["Dataset023_LeftAtrium"]


def _break_label(case_dir, array):
    reference = sitk.ReadImage(str(case_dir / "laendo.nrrd"))
    label = sitk.GetImageFromArray(array)
    if array.shape == SHAPE:
        label.CopyInformation(reference)
    sitk.WriteImage(label, str(case_dir / "laendo.nrrd"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "laendo.nrrd").unlink(), r"missing file .*laendo\.nrrd"),
        (lambda d: (d / "lgemri.nrrd").write_bytes(b"NRRD0004\ngarbage"), r"cannot read .*lgemri\.nrrd"),
        (lambda d: _break_label(d, np.full(SHAPE, 7, np.uint8)), r"laendo\.nrrd has unexpected values 7"),
        (lambda d: _break_label(d, np.zeros(SHAPE, np.uint8)), r"laendo\.nrrd is empty"),
        (lambda d: _break_label(d, np.full((4, 5, 6), 255, np.uint8)), r"laendo\.nrrd does not match the grid .* size"),
    ],
    ids=["missing-label", "unreadable-image", "label-values", "empty-label", "shape"],
)
def test_bad_challenge_case_is_named_and_nothing_is_written(nnunet_env, tmp_path, damage, message):
    source = write_la_challenge(tmp_path / "src", NAMES)
    damage(source / NAMES[2])
    with pytest.raises(InputDataError, match=f"1 case\\(s\\) could not be converted.*{NAMES[2]}: .*{message}"):
        convert_la(source, 24, hq_count=1, show_progress=False)
    assert_nothing_left(raw_root())


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d: (d / "train.list").write_text("\n".join(NAMES)), r"found .*train\.list but not .*test\.list"),
        (lambda d: ((d / "train.list").write_text("\n".join(NAMES[:4])), (d / "test.list").write_text("nope\n")),
         r"test\.list names 1 case\(s\) not found in the input: nope"),
        (lambda d: (d / "2018LA_Seg_Training Set" / NAMES[0] / "mri_norm2.h5").unlink(),
         r"missing file .*mri_norm2\.h5"),
        (lambda d: _rewrite_h5(d, label=np.zeros((3, 3, 3), np.uint8)), r"'image' .* and 'label' .* same shape"),
        (lambda d: _rewrite_h5(d, label=None), r"has no HDF5 dataset 'label'"),
    ],
    ids=["one-list", "unknown-case", "missing-h5", "shape", "no-label-dataset"],
)
def test_bad_uamt_input(nnunet_env, tmp_path, prepare, message):
    data = write_la_h5(tmp_path / "data", NAMES)
    prepare(data)
    with pytest.raises(InputDataError, match=message):
        convert_la(data, 25, hq_count=1, show_progress=False)
    assert_nothing_left(raw_root())


def _rewrite_h5(data, label):
    path = data / "2018LA_Seg_Training Set" / NAMES[1] / "mri_norm2.h5"
    with h5py.File(path, "r+") as handle:
        del handle["label"]
        if label is not None:
            handle["label"] = label


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hq-fraction", "0.1"], "HQ fraction 0.1 of 4 cases (0 HQ) leaves no HQ case"),
        (["--hq-count", "4"], "HQ count 4 of 4 cases leaves no LQ case"),
        (["--hq-count", "1", "-d", "1000"], "dataset id must lie in 1..999"),
    ],
)
def test_cli_errors_exit_2_with_one_line(nnunet_env, tmp_path, capsys, argv, message):
    data = write_la_h5(tmp_path / "data", NAMES)
    with pytest.raises(SystemExit) as exit_info:
        convert_la_main(["-i", str(data), "-d", "26", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
    assert_nothing_left(raw_root())


def test_dataset_id_used_by_another_dataset_and_missing_input(nnunet_env, tmp_path):
    (raw_root() / "Dataset027_Other").mkdir()
    data = write_la_h5(tmp_path / "data", NAMES)
    with pytest.raises(InputDataError, match="dataset id 27 is already used by Dataset027_Other"):
        convert_la(data, 27, hq_count=1, overwrite=True, show_progress=False)
    with pytest.raises(InputDataError, match="no LA cases under"):
        convert_la(tmp_path, 28, hq_count=1, show_progress=False)
    with pytest.raises(InputDataError, match="does not exist"):
        convert_la(tmp_path / "nowhere", 28, hq_count=1, show_progress=False)
