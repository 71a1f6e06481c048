"""nnUNetv2_alc_convert_NIH: DICOM series in HU, label pairing and grid checks, splits, verification, bad inputs."""

from __future__ import annotations

import json
import locale
import shutil
from contextlib import contextmanager

import numpy as np
import pytest
import SimpleITK as sitk
from conversion_fixtures import (
    SHAPE,
    assert_nothing_left,
    ct_geometry_image,
    nnunet_env,  # noqa: F401  (pytest fixture)
    raw_root,
    read_array,
    run_entry_point,
    verify_with_nnunet,
    write_dicom_series,
    write_nih,
)

from dataset_conversion.convert_NIH import convert_nih, read_dicom_series
from dataset_conversion.convert_NIH import main as convert_nih_main
from nnunetv2_alc.input_errors import InputDataError
from noise_generation.make_noisy import make_noisy_dataset

NUMBERS = [1, 2, 3, 4, 5]


@contextmanager
def locale_set_to_utf8():
    saved = locale.setlocale(locale.LC_ALL)
    locale.setlocale(locale.LC_ALL, "C.UTF-8")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def test_dicom_series_is_read_in_hounsfield_units(tmp_path):
    hu = np.random.default_rng(0).integers(-1024, 2000, (6, 9, 11)).astype(np.int16)
    write_dicom_series(tmp_path / "study" / "series", hu)
    image = read_dicom_series(tmp_path)
    assert image.GetPixelID() == sitk.sitkInt16
    assert np.array_equal(sitk.GetArrayFromImage(image), hu)
    assert np.allclose(image.GetSpacing(), (0.8, 0.7, 1.5)) and np.allclose(image.GetOrigin(), (-120, -80, 300))


def test_reading_dicom_keeps_the_process_locale(tmp_path):
    """GDCM switches the process to the "C" locale; the reader must undo it (regression)."""
    write_dicom_series(tmp_path / "study" / "series", np.zeros((3, 8, 8), dtype=np.int16))
    before = locale.setlocale(locale.LC_ALL)
    with locale_set_to_utf8():
        read_dicom_series(tmp_path)
        assert locale.getpreferredencoding(False).lower().replace("-", "") == "utf8"
    assert locale.setlocale(locale.LC_ALL) == before


def test_cli_with_lists_then_noise_passes_nnunet_verification(nnunet_env, tmp_path):
    ct_dir, labels_dir = write_nih(tmp_path, NUMBERS)
    (tmp_path / "train.txt").write_text("PANCREAS_0001\n2\n0003\n4\n")
    (tmp_path / "test.txt").write_text("PANCREAS_0005\n")
    result = run_entry_point("nnUNetv2_alc_convert_NIH", "-i", tmp_path, "-l", labels_dir, "-d", "31",
                             "--hq-fraction", "0.25", "--train-list", tmp_path / "train.txt",
                             "--test-list", tmp_path / "test.txt", env=nnunet_env)
    assert result.returncode == 0, result.stderr
    assert "Tags: 4 training cases: 1 HQ, 3 LQ" in result.stdout and "z 1.5..1.5" in result.stdout

    folder = raw_root() / "Dataset031_PancreasCT"
    dataset_json = json.loads((folder / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "CT"} and dataset_json["labels"] == {"background": 0, "pancreas": 1}
    assert sorted(dataset_json["label_quality"]) == [f"PANCREAS_000{n}" for n in (1, 2, 3, 4)]
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == ["PANCREAS_0005_0000.nii.gz"]
    image = sitk.ReadImage(str(folder / "imagesTr" / "PANCREAS_0002_0000.nii.gz"))
    source = read_dicom_series(ct_dir / "PANCREAS_0002")
    assert image.GetPixelID() == sitk.sitkInt16
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(source))
    assert np.array_equal(read_array(folder / "labelsTr" / "PANCREAS_0002.nii.gz"),
                          read_array(labels_dir / "label0002.nii.gz"))

    make_noisy_dataset(31, radius=(1, 2), show_progress=False)
    verify_with_nnunet(folder)


def test_seeded_split_without_lists(nnunet_env, tmp_path):
    ct_dir, labels_dir = write_nih(tmp_path, NUMBERS)
    summary = convert_nih(ct_dir, labels_dir, 32, hq_count=1, seed=3, show_progress=False)
    assert len(summary.split.train) == 4 and len(summary.split.test) == 1  # round(5 * 20/82) = 1
    assert json.loads((raw_root() / "Dataset032_PancreasCT" / "split.json").read_text())["test"] == summary.split.test


def _misplace_label(labels_dir, number, origin):
    path = labels_dir / f"label{number:04d}.nii.gz"
    sitk.WriteImage(ct_geometry_image(read_array(path), origin=origin), str(path))


def test_grid_mismatches_are_listed_together(nnunet_env, tmp_path):
    ct_dir, labels_dir = write_nih(tmp_path, NUMBERS)
    _misplace_label(labels_dir, 2, (-120.0, -80.0, 310.0))
    _misplace_label(labels_dir, 4, (-100.0, -80.0, 300.0))
    _misplace_label(labels_dir, 5, (-120.0, -80.05, 300.0))  # within tolerance: accepted
    with pytest.raises(InputDataError) as error:
        convert_nih(ct_dir, labels_dir, 33, hq_count=1, show_progress=False)
    message = str(error.value)
    assert message.startswith("2 case(s) could not be converted")
    assert "PANCREAS_0002: label" in message and "PANCREAS_0004: label" in message and "origin" in message
    assert "PANCREAS_0005" not in message
    assert_nothing_left(raw_root())


def _second_series(ct_dir):
    hu = np.zeros((3,) + SHAPE[1:], np.int16)
    write_dicom_series(ct_dir / "PANCREAS_0003" / "study" / "other", hu, uid="1.2.826.0.1.3680043.2.1125.99")


def _write_label(labels_dir, array):
    sitk.WriteImage(ct_geometry_image(array), str(labels_dir / "label0003.nii.gz"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda ct, lab: (lab / "label0003.nii.gz").unlink(), r"missing label files in .*: label0003\.nii\.gz"),
        (lambda ct, lab: shutil.rmtree(ct / "PANCREAS_0003"), r"labels without a CT case folder in .*: PANCREAS_0003"),
        (lambda ct, lab: _write_label(lab, np.full(SHAPE, 2, np.uint8)), r"label0003\.nii\.gz has unexpected values 2"),
        (lambda ct, lab: _write_label(lab, np.zeros(SHAPE, np.uint8)), r"label0003\.nii\.gz is empty"),
        (lambda ct, lab: _write_label(lab, np.ones((4, 4, 4), np.uint8)), r"does not match the grid .* size"),
        (lambda ct, lab: (lab / "label0003.nii.gz").write_bytes(b"not gzip"), r"cannot read .*label0003\.nii\.gz"),
        (lambda ct, lab: _second_series(ct), r"PANCREAS_0003 holds 2 DICOM series"),
        (lambda ct, lab: [p.write_bytes(b"junk") for p in (ct / "PANCREAS_0003").rglob("*.dcm")],
         r"no readable DICOM series under .*PANCREAS_0003"),
    ],
    ids=["no-label", "no-ct", "label-values", "empty-label", "shape", "unreadable-label", "two-series", "bad-dicom"],
)
def test_bad_input_is_named_and_nothing_is_written(nnunet_env, tmp_path, damage, message):
    ct_dir, labels_dir = write_nih(tmp_path, NUMBERS)
    damage(ct_dir, labels_dir)
    with pytest.raises(InputDataError, match=message):
        convert_nih(ct_dir, labels_dir, 34, hq_count=1, show_progress=False)
    assert_nothing_left(raw_root())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--train-list", "TRAIN"], "give both --train-list and --test-list, or neither"),
        (["--train-list", "TRAIN", "--test-list", "TRAIN"], "both list PANCREAS_0001"),
        (["--train-list", "TRAIN", "--test-list", "MISSING"], "cannot read case list"),
    ],
)
def test_list_errors_exit_2(nnunet_env, tmp_path, capsys, extra, message):
    ct_dir, labels_dir = write_nih(tmp_path, NUMBERS[:3])
    (tmp_path / "train.txt").write_text("1\n2\n3\n")
    extra = [str(tmp_path / "train.txt") if e == "TRAIN" else str(tmp_path / "missing.txt") if e == "MISSING" else e
             for e in extra]
    with pytest.raises(SystemExit) as exit_info:
        convert_nih_main(["-i", str(ct_dir), "-l", str(labels_dir), "-d", "35", "--hq-count", "1", *extra])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
    assert_nothing_left(raw_root())
