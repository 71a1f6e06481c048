"""nnUNetv2_alc_evaluate (run as the installed entry point) and the evaluate_folders API."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from medpy.metric import binary as medpy_binary
from scipy.ndimage import gaussian_filter

from nnunetv2_alc.evaluation import EvaluationInputError, evaluate_folders, format_comparison_table
from nnunetv2_alc.evaluation.cases import read_segmentation
from nnunetv2_alc.evaluation.metrics import BOTH_EMPTY

CLI = "nnUNetv2_alc_evaluate"
SHAPE_ZYX = (10, 14, 18)
SITK_SPACING_XYZ = (0.7, 0.8, 2.5)
CASES = ("case_000", "case_001", "case_002")


def write_nifti(path: Path, array: np.ndarray, spacing_xyz: tuple[float, ...] = SITK_SPACING_XYZ) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing_xyz)
    sitk.WriteImage(image, str(path))


def blob(rng: np.random.Generator, shape: tuple[int, ...] = SHAPE_ZYX) -> np.ndarray:
    return gaussian_filter(rng.standard_normal(shape), 2.0) > 0.05


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ref/, good/ and poor/ with three cases; poor/case_001 is empty; extra files to ignore."""
    root = tmp_path_factory.mktemp("evaluation")
    rng = np.random.default_rng(0)
    for name in ("ref", "good", "poor"):
        (root / name).mkdir()
    for case in CASES:
        reference = blob(rng)
        write_nifti(root / "ref" / f"{case}.nii.gz", reference)
        write_nifti(root / "good" / f"{case}.nii.gz", reference ^ (blob(rng) & blob(rng) & blob(rng)))
        poor = np.zeros(SHAPE_ZYX, bool) if case == "case_001" else blob(rng)
        write_nifti(root / "poor" / f"{case}.nii.gz", poor)
    write_nifti(root / "good" / "not_in_reference.nii.gz", blob(rng))
    (root / "ref" / "dataset.json").write_text("{}")
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, encoding="utf-8", errors="replace", timeout=120)


def sitk_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(bool)


def test_reader_returns_spacing_in_array_axis_order(folders: Path) -> None:
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    array, spacing = read_segmentation(str(folders / "ref" / "case_000.nii.gz"), SimpleITKIO)
    assert array.shape == SHAPE_ZYX
    assert spacing == pytest.approx(SITK_SPACING_XYZ[::-1])


def test_cli_compares_two_folders_like_table_one(folders: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("-ref", str(folders / "ref"), "-pred", str(folders / "good"), str(folders / "poor"),
                     "--names", "ALC (ours)", "H-Sup", "-o", str(out), "-np", "2")
    assert result.returncode == 0, result.stderr
    table = (out / "comparison.md").read_text()
    assert table in result.stdout
    assert "| Method | Dice [%] ↑ | Jaccard [%] ↑ | 95HD [mm] ↓ | ASD [mm] ↓ |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ALC (ours) |") or line.startswith("| H-Sup |")]
    assert len(rows) == 2 and "(n=2)" in rows[1] and "(n=2)" not in rows[0]
    assert sorted(os.listdir(out)) == ["ALC_ours.csv", "ALC_ours.json", "H-Sup.csv", "H-Sup.json", "comparison.md"]

    record = json.loads((out / "ALC_ours.json").read_text())
    assert record["labels"] == [1] and list(record["per_case"]) == list(CASES)
    for case in CASES:
        reference = sitk_array(folders / "ref" / f"{case}.nii.gz")
        prediction = sitk_array(folders / "good" / f"{case}.nii.gz")
        spacing = sitk.ReadImage(str(folders / "ref" / f"{case}.nii.gz")).GetSpacing()[::-1]
        metrics = record["per_case"][case]["1"]
        assert metrics["dice"] == pytest.approx(medpy_binary.dc(prediction, reference))
        assert metrics["hd95"] == pytest.approx(medpy_binary.hd95(prediction, reference, spacing))
        assert metrics["asd"] == pytest.approx(medpy_binary.asd(prediction, reference, spacing))
    dice = [record["per_case"][case]["1"]["dice"] for case in CASES]
    assert record["summary"]["1"]["dice"]["mean"] == pytest.approx(np.mean(dice))
    assert record["summary"]["1"]["dice"]["std"] == pytest.approx(np.std(dice))

    poor = json.loads((out / "H-Sup.json").read_text())
    assert poor["per_case"]["case_001"]["1"]["hd95"] is None
    assert poor["summary"]["1"]["hd95"]["n_undefined"] == 1
    with open(out / "H-Sup.csv") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [row["case"] for row in csv_rows] == [*CASES, "mean", "std"]
    assert math.isnan(float(csv_rows[1]["asd"])) and float(csv_rows[1]["dice"]) == 0.0


def test_cli_rejects_mismatched_names(folders: Path, tmp_path: Path) -> None:
    result = run_cli("-ref", str(folders / "ref"), "-pred", str(folders / "good"), "--names", "a", "b",
                     "-o", str(tmp_path))
    assert result.returncode == 2 and "--names gives 2 names for 1" in result.stderr


@pytest.mark.parametrize("problem, expected", [
    ("missing reference folder", "reference folder"),
    ("missing prediction folder", "prediction folder"),
    ("no cases", "no segmentation files"),
    ("missing prediction", "lacks 1 of 3 reference cases: case_002.nii.gz"),
    ("shape mismatch", "case_000.nii.gz has shape"),
])
def test_cli_bad_input_gives_one_line_error_and_exit_code_2(folders: Path, tmp_path: Path, problem: str,
                                                            expected: str) -> None:
    reference, prediction = folders / "ref", tmp_path / "pred"
    shutil.copytree(folders / "good", prediction)
    if problem == "missing reference folder":
        reference = tmp_path / "absent"
    elif problem == "missing prediction folder":
        prediction = tmp_path / "absent"
    elif problem == "no cases":
        reference = tmp_path / "empty"
        reference.mkdir()
    elif problem == "missing prediction":
        (prediction / "case_002.nii.gz").unlink()
    else:
        write_nifti(prediction / "case_000.nii.gz", np.zeros((3, 4, 5)))
    result = run_cli("-ref", str(reference), "-pred", str(prediction), "-o", str(tmp_path / "out"), "-np", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]  # earlier lines: only the progress bar
    assert last_line.startswith(f"{CLI}: error: ") and expected in last_line


def test_evaluate_folders_infers_labels_across_folders(tmp_path: Path) -> None:
    """Label 2 appears only in one prediction: other cases score it as two empty masks."""
    rng = np.random.default_rng(1)
    for name in ("ref", "pred"):
        (tmp_path / name).mkdir()
    for index in range(2):
        reference = blob(rng).astype(np.uint8)
        prediction = reference.copy()
        if index == 1:
            prediction[0, 0, :3] = 2
        write_nifti(tmp_path / "ref" / f"c{index}.nii.gz", reference)
        write_nifti(tmp_path / "pred" / f"c{index}.nii.gz", prediction)
    results = evaluate_folders(str(tmp_path / "ref"), {"m": str(tmp_path / "pred")}, num_processes=1,
                               show_progress=False)
    assert results["labels"] == [1, 2]
    per_case = results["methods"]["m"]["per_case"]
    assert per_case["c0"]["2"] == dict(BOTH_EMPTY)
    assert per_case["c1"]["2"]["dice"] == 0.0 and math.isnan(per_case["c1"]["2"]["asd"])
    assert per_case["c0"]["1"]["dice"] == 1.0
    summary = results["methods"]["m"]["summary"]["2"]
    assert summary["dice"]["mean"] == 0.5 and summary["hd95"]["n"] == 1 and summary["hd95"]["n_undefined"] == 1
    table = format_comparison_table(results)
    assert "### Label 1" in table and "### Label 2" in table and "(n=1)" in table


def test_evaluate_folders_reads_2d_png_as_2d(tmp_path: Path) -> None:
    """nnU-Net reads 2D images as (1, 1, y, x); the dummy axis must not turn every voxel into surface."""
    rng = np.random.default_rng(2)
    for name in ("ref", "pred"):
        (tmp_path / name).mkdir()
    reference, prediction = blob(rng, (30, 40)), blob(rng, (30, 40))
    sitk.WriteImage(sitk.GetImageFromArray(reference.astype(np.uint8)), str(tmp_path / "ref" / "a.png"))
    sitk.WriteImage(sitk.GetImageFromArray(prediction.astype(np.uint8)), str(tmp_path / "pred" / "a.png"))
    results = evaluate_folders(str(tmp_path / "ref"), {"m": str(tmp_path / "pred")}, labels=[1],
                               num_processes=1, show_progress=False)
    assert results["file_ending"] == ".png"
    metrics = results["methods"]["m"]["per_case"]["a"]["1"]
    assert metrics["hd95"] == pytest.approx(medpy_binary.hd95(prediction, reference))
    assert metrics["asd"] == pytest.approx(medpy_binary.asd(prediction, reference))


def test_evaluate_folders_rejects_colliding_output_names(folders: Path, tmp_path: Path) -> None:
    with pytest.raises(EvaluationInputError, match="collide"):
        evaluate_folders(str(folders / "ref"), {"a b": str(folders / "good"), "a_b": str(folders / "poor")},
                         output_folder=str(tmp_path), show_progress=False)
