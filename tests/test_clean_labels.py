import numpy as np
import pytest
import torch

from nnunetv2_alc.clean_labels import clean_label_files, label_agreement_counts
from nnunetv2_alc.dice import dice_from_counts


@pytest.mark.parametrize("shape, classes", [((2, 7, 9), 2), ((3, 5, 6, 4), 3)])
def test_agreement_counts_match_numpy(shape, classes):
    rng = np.random.default_rng(0)
    labels, clean = rng.integers(0, classes, shape), rng.integers(0, classes, shape)
    counts = label_agreement_counts(torch.from_numpy(labels), torch.from_numpy(clean), classes).numpy()
    for c in range(1, classes):
        p, t = labels == c, clean == c
        assert counts[:, c - 1].tolist() == [np.sum(p & t), np.sum(p & ~t), np.sum(~p & t)]


def test_dice_from_counts_averages_present_classes():
    counts = np.array([[3.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # class 1: tp 3 fp 1 fn 1; class 2 absent
    assert dice_from_counts(counts) == pytest.approx(6 / 8)
    assert np.isnan(dice_from_counts(np.zeros((3, 2))))


def test_clean_files_only_where_present(tmp_path):
    (tmp_path / "labelsTr_clean").mkdir()
    (tmp_path / "labelsTr_clean" / "a.nii.gz").write_bytes(b"")
    expected = {"a": str(tmp_path / "labelsTr_clean" / "a.nii.gz")}
    assert clean_label_files(str(tmp_path), ["a", "b"], ".nii.gz") == expected
    assert clean_label_files(str(tmp_path / "missing"), ["a"], ".nii.gz") == {}
    assert clean_label_files(None, ["a"], ".nii.gz") == {}
