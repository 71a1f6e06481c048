"""Tests of nnunetv2_alc.refinement_diagnostics against float64 NumPy / SciPy-free references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnunetv2_alc.label_correction import refinement_weights
from nnunetv2_alc.refinement_diagnostics import (SELECTION_CHECK_KEYS, changed_voxels, rank_correlation,
                                                 selection_check, spread, weight_entropy_sum)


@pytest.mark.parametrize("seed, m", [(0, 2), (1, 4), (2, 8)])
def test_weight_entropy_sum_matches_float64_reference(seed, m):
    logits = np.random.default_rng(seed).normal(0, 2, size=(m, 3, 2, 5, 6))
    probs = torch.softmax(torch.from_numpy(logits).float(), dim=2)
    weights = refinement_weights(probs)
    w = weights.double().numpy()
    reference = float((-(w * np.log(w)).sum(axis=0)).sum() / math.log(m))
    assert weight_entropy_sum(weights) == pytest.approx(reference, rel=1e-5)
    voxels = w[0].size
    assert 0 < weight_entropy_sum(weights) / voxels <= 1 + 1e-6


def test_weight_entropy_is_one_for_uniform_and_zero_for_one_hot_and_nan_for_one_pass():
    uniform = torch.full((4, 2, 3, 3), 0.25)
    assert weight_entropy_sum(uniform) / 18 == pytest.approx(1.0, rel=1e-6)
    one_hot = torch.zeros(4, 2, 3, 3)
    one_hot[1] = 1
    assert weight_entropy_sum(one_hot) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(weight_entropy_sum(torch.ones(1, 2, 3, 3)))


def test_changed_voxels():
    a = torch.tensor([[0, 1, 2], [1, 1, 0]])
    b = torch.tensor([[0, 2, 2], [0, 1, 0]])
    assert changed_voxels(a, b) == 2 and changed_voxels(a, a) == 0
    with pytest.raises(ValueError):
        changed_voxels(a, b[:1])


def ranks(values):
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return np.array(result)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_correlation_is_pearson_of_ranks(seed):
    rng = np.random.default_rng(seed)
    u = rng.random(12)
    q = np.round(-u + rng.normal(0, 0.3, 12), 1)  # rounded: ties
    ru, rq = ranks(list(u)), ranks(list(q))
    reference = float(np.corrcoef(ru, rq)[0, 1])
    assert rank_correlation(u, q) == pytest.approx(reference, rel=1e-9)


def test_rank_correlation_undefined_cases_and_nan_quality():
    assert math.isnan(rank_correlation([0.1, 0.2], [0.5, 0.6]))
    assert math.isnan(rank_correlation([0.1, 0.1, 0.1], [0.5, 0.6, 0.7]))
    assert rank_correlation([0.1, 0.2, 0.3, 0.4], [0.9, 0.8, float("nan"), 0.1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        rank_correlation([0.1, 0.2, 0.3], [0.1, 0.2])


def test_spread():
    assert spread([1.0, 3.0, float("nan")]) == pytest.approx(1.0)
    assert math.isnan(spread([]))


def test_selection_check_against_a_float64_reference():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        noisy, refined = rng.random(n), rng.random(n)
        noisy[rng.random(n) < 0.1] = np.nan  # background-only patches: Dice undefined
        selected = rng.random(n) < 0.5
        got = selection_check(noisy, refined, selected)
        rows = [(a, b, s) for a, b, s in zip(noisy.tolist(), refined.tolist(), selected.tolist()) if a == a]

        def mean(values):
            return sum(values) / len(values) if values else float("nan")

        expected = {
            "label_dice_noisy_selected": mean([a for a, _, s in rows if s]),
            "label_dice_refined_selected": mean([b for _, b, s in rows if s]),
            "label_dice_noisy_unselected": mean([a for a, _, s in rows if not s]),
            "label_dice_refined_unselected": mean([b for _, b, s in rows if not s]),
            "selection_oracle_agreement": mean([float((b > a) == s) for a, b, s in rows]),
        }
        assert set(got) == set(SELECTION_CHECK_KEYS)
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key


def test_selection_check_with_no_sample_and_bad_shapes():
    assert all(np.isnan(v) for v in selection_check(np.array([]), np.array([]), np.array([], bool)).values())
    with pytest.raises(ValueError, match="shapes differ"):
        selection_check(np.zeros(3), np.zeros(2), np.zeros(3, bool))
