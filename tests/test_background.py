"""Tests of nnunetv2_alc.evaluation.background on real NIfTI files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2_alc.evaluation.background import (background_false_positives, format_background_table,
                                                organ_free_slices)


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


def test_missing_prediction_is_named(tmp_path):
    write(tmp_path / "ref", "case_0", np.zeros((2, 3, 3), np.uint8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="lacks 1 of 1"):
        background_false_positives(str(tmp_path / "ref"), {"m": str(tmp_path / "empty")})
    write(tmp_path / "pred", "case_0", np.zeros((2, 3, 3), np.uint8))
    result = background_false_positives(str(tmp_path / "ref"), {"m": str(tmp_path / "pred")})["m"]
    assert result["rate"] == 0.0 and math.isnan(result["volume_ratio"]) and result["volume_ratios"] == {}
    assert "| m | 0.0 % (0 of 2) | – |" in format_background_table({"m": result})  # no foreground: no ratio
