"""Tests of nnunetv2_alc.evaluation.background on real NIfTI files."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import organ_free_detail  # benchmarks/, on sys.path through conftest.py
from nnunetv2_alc.evaluation.background import (background_false_positives, format_background_table,
                                                marked_slice_detail, organ_free_slices)
from nnunetv2_alc.evaluation.cases import EvaluationInputError


def test_organ_free_slices_counts_marked_slices():
    reference = np.zeros((5, 4, 4), np.uint8)
    reference[1:3, 1, 1] = 1
    prediction = np.zeros_like(reference)
    prediction[0, 0, 0] = prediction[1, 2, 2] = prediction[4, 3, 3] = 1
    assert organ_free_slices(reference, prediction) == (3, 2)
    with pytest.raises(ValueError):
        organ_free_slices(reference, prediction[:2])


def write(folder, name, array):
    folder.mkdir(exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(folder / f"{name}.nii.gz"))


def test_background_false_positives_over_folders(tmp_path):
    reference = np.zeros((4, 6, 6), np.uint8)
    reference[1, 2:4, 2:4] = 1  # 4 voxels, slices 0, 2, 3 organ-free
    everywhere = np.ones_like(reference)
    exact = reference.copy()
    write(tmp_path / "ref", "case_0", reference)
    write(tmp_path / "everywhere", "case_0", everywhere)
    write(tmp_path / "exact", "case_0", exact)
    results = background_false_positives(str(tmp_path / "ref"), {"everywhere": str(tmp_path / "everywhere"),
                                                                  "exact": str(tmp_path / "exact")})
    assert results["everywhere"] == {"organ_free_slices": 3, "marked": 3, "rate": 1.0, "volume_ratio": 36.0,
                                     "volume_ratios": {"case_0": 36.0}}
    assert results["exact"]["rate"] == 0.0 and results["exact"]["volume_ratio"] == 1.0
    table = format_background_table(results)
    assert "| everywhere | 100.0 % (3 of 3) | 36.00 |" in table


def test_missing_or_misshapen_prediction_is_named(tmp_path):
    write(tmp_path / "ref", "case_0", np.zeros((2, 3, 3), np.uint8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="lacks 1 of 1"):
        background_false_positives(str(tmp_path / "ref"), {"m": str(tmp_path / "empty")})
    write(tmp_path / "pred", "case_0", np.zeros((2, 3, 3), np.uint8))
    result = background_false_positives(str(tmp_path / "ref"), {"m": str(tmp_path / "pred")})["m"]
    assert result["rate"] == 0.0 and math.isnan(result["volume_ratio"]) and result["volume_ratios"] == {}
    assert "| m | 0.0 % (0 of 2) | – |" in format_background_table({"m": result})  # no foreground: no ratio
    write(tmp_path / "short", "case_0", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(EvaluationInputError, match=r"short.case_0.nii.gz has shape \(3, 3, 3\) but its reference"):
        background_false_positives(str(tmp_path / "ref"), {"m": str(tmp_path / "short")})


def test_marked_slice_detail_against_a_slice_by_slice_count():
    rng = np.random.default_rng(3)
    reference = np.zeros((12, 5, 5), np.uint8)
    reference[4:7, 2, 2] = 1
    prediction = (rng.random(reference.shape) < 0.05).astype(np.uint8)
    voxels, distances = marked_slice_detail(reference, prediction)
    expected = [(int(prediction[z].sum()), min(abs(z - f) for f in (4, 5, 6)))
                for z in range(12) if z not in (4, 5, 6) and prediction[z].any()]
    assert list(zip(voxels.tolist(), distances.tolist())) == expected and len(expected) > 3
    assert marked_slice_detail(np.zeros_like(reference), prediction)[1].tolist() == [-1] * int(
        prediction.reshape(12, -1).any(axis=1).sum())
    with pytest.raises(ValueError, match="shapes differ"):
        marked_slice_detail(reference, prediction[:3])


def test_organ_free_detail_cli(tmp_path, capsys):
    reference = np.zeros((6, 4, 4), np.uint8)
    reference[2, 1:3, 1:3] = 1
    labels = reference.copy()
    labels[0, :2, :2] = labels[5, 0, :3] = 1  # 4 voxels 2 slices away, 3 voxels 3 slices away
    write(tmp_path / "ref", "case_0", reference)
    write(tmp_path / "ref", "case_1", reference)
    write(tmp_path / "lab", "case_0", labels)
    write(tmp_path / "lab", "case_1", reference)
    result = subprocess.run([sys.executable, organ_free_detail.__file__, "--reference", str(tmp_path / "ref"),
                             "--labels", f"given={tmp_path / 'lab'}", "--out", str(tmp_path / "out")],
                            capture_output=True, encoding="utf-8")
    assert result.returncode == 0, result.stderr
    assert "| given | 1 of 2 | 2 of 10 (20.0 %) | 3.5 (4) | 2.5 (3) |" in result.stdout
    assert "further than 3 slices from its organ (case_0)" in result.stdout
    assert (tmp_path / "out" / "organ_free_detail.md").is_file()
    write(tmp_path / "lab", "case_1", reference[:4])
    with pytest.raises(SystemExit, match="case_1.nii.gz has shape"):
        organ_free_detail.main(["--reference", str(tmp_path / "ref"), "--labels", f"given={tmp_path / 'lab'}",
                                "--out", str(tmp_path / "out2")])
    write(tmp_path / "one", "case_0", labels)
    with pytest.raises(SystemExit, match="lacks 1 of 2 reference cases: case_1.nii.gz"):
        organ_free_detail.main(["--reference", str(tmp_path / "ref"), "--labels", f"given={tmp_path / 'one'}",
                                "--out", str(tmp_path / "out2")])
    with pytest.raises(SystemExit):  # argparse: --labels takes NAME=FOLDER
        organ_free_detail.main(["--reference", str(tmp_path / "ref"), "--labels", str(tmp_path / "one"),
                                "--out", str(tmp_path / "out2")])
    assert "NAME=FOLDER" in capsys.readouterr().err and not (tmp_path / "out2").exists()
