"""Tests of nnunetv2_alc.label_correction against independent float64 NumPy references."""

from __future__ import annotations

import copy
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from nnunetv2_alc.label_correction import (
    WindowedSelector,
    consistency_loss,
    ema_decay,
    ema_update_,
    mean_probabilities,
    pseudo_labels,
    rampup_weight,
    refine_labels,
    refinement_weights,
    sample_uncertainty,
    select_most_certain,
    teacher_noise,
    unwrap_model,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
SPATIAL = {"2d": (5, 6), "3d": (3, 4, 5)}
SEEDS = [0, 1, 2]
EPS = 1e-6


def random_probs(seed: int, m: int, b: int, c: int, spatial: tuple, scale: float = 2.0) -> torch.Tensor:
    """Softmax over C of random logits, float32 of shape (m, b, c, *spatial)."""
    logits = np.random.default_rng(seed).normal(0.0, scale, size=(m, b, c, *spatial))
    return torch.softmax(torch.from_numpy(logits).float(), dim=2)


# ---------------------------------------------------------------- float64 references, one voxel at a time

def ref_weights(p: np.ndarray, eps: float = EPS) -> np.ndarray:
    m, b, _, *spatial = p.shape
    out = np.zeros((m, b, *spatial))
    for i in range(b):
        for idx in np.ndindex(*spatial):
            passes = [p[(j, i, slice(None)) + idx] for j in range(m)]
            avg = np.clip(sum(passes) / m, eps, 1.0)
            h = np.array([np.sum(avg * np.log(avg / np.clip(q, eps, 1.0))) for q in passes])
            w = np.exp(-h) / np.sum(np.exp(-h))
            out[(slice(None), i) + idx] = w
    return out


def ref_refined_scores(p: np.ndarray, eps: float = EPS) -> np.ndarray:
    """sum_j w_j Psi_j, shape (b, c, *spatial)."""
    w = ref_weights(p, eps)
    return np.einsum("jb...,jbc...->bc...", w, p)


def ref_uncertainty(p: np.ndarray) -> np.ndarray:
    m, b, c, *spatial = p.shape
    out = np.zeros(b)
    for i in range(b):
        total = 0.0
        for idx in np.ndindex(*spatial):
            passes = [p[(j, i, slice(None)) + idx] for j in range(m)]
            avg = sum(passes) / m
            total += sum(float(np.sum((q - avg) ** 2)) for q in passes) / m
        out[i] = total / math.prod(spatial)
    return out


def ref_count(k: float, n: int) -> int:
    """ceil(k * n) in exact decimal arithmetic, at least 1 (for n >= 1)."""
    return max(1, math.ceil(Fraction(str(k)) * n))


def ref_select(u: np.ndarray, k: float) -> np.ndarray:
    order = sorted(range(len(u)), key=lambda i: (u[i], i))
    mask = np.zeros(len(u), dtype=bool)
    mask[order[:ref_count(k, len(u))]] = True
    return mask


class RefWindow:
    """A plain-list model of the documented windowed rule."""

    def __init__(self, window: int):
        self.window, self.history = window, []

    def select(self, u: list, k: float) -> list:
        keep = max(0, self.window - len(u))
        ranking = (self.history[-keep:] if keep else []) + list(u)
        self.history = (self.history + list(u))[-self.window:]
        threshold = ref_count(k, len(ranking))
        return [sum(r < x for r in ranking) < threshold for x in u]


def margin_ok(scores: np.ndarray, gap: float = 1e-5) -> np.ndarray:
    """Voxels whose best class beats the runner-up by more than ``gap`` (argmax is well defined there)."""
    top2 = np.sort(scores, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > gap


# ---------------------------------------------------------------- Eq. 4-6

@pytest.mark.parametrize("dims", SPATIAL)
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_and_pseudo_labels_match_reference(dims, seed):
    probs = random_probs(seed, 4, 2, 3, SPATIAL[dims])
    p = probs.double().numpy()
    mean = mean_probabilities(probs)
    assert mean.dtype == torch.float32 and mean.shape == (2, 3, *SPATIAL[dims])
    np.testing.assert_allclose(mean.numpy(), p.mean(axis=0), atol=1e-6)
    expected = p.mean(axis=0)
    ok = margin_ok(expected)
    labels = pseudo_labels(probs)
    assert labels.dtype == torch.int64 and labels.shape == (2, *SPATIAL[dims])
    assert ok.mean() > 0.99
    np.testing.assert_array_equal(labels.numpy()[ok], expected.argmax(axis=1)[ok])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", SPATIAL)
@pytest.mark.parametrize("seed", SEEDS)
def test_refinement_weights_match_reference(device, dims, seed):
    probs = random_probs(seed, 4, 2, 3, SPATIAL[dims], scale=3.0)
    weights = refinement_weights(probs.to(device)).cpu()
    assert weights.dtype == torch.float32 and weights.shape == (4, 2, *SPATIAL[dims])
    np.testing.assert_allclose(weights.numpy(), ref_weights(probs.double().numpy()), atol=2e-6)
    np.testing.assert_allclose(weights.sum(0).numpy(), 1.0, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", SPATIAL)
@pytest.mark.parametrize("seed", SEEDS)
def test_refine_labels_match_reference(device, dims, seed):
    probs = random_probs(seed, 5, 3, 4, SPATIAL[dims], scale=1.0)
    scores = ref_refined_scores(probs.double().numpy())
    ok = margin_ok(scores)
    labels = refine_labels(probs.to(device)).cpu()
    assert labels.dtype == torch.int64 and labels.shape == (3, *SPATIAL[dims])
    assert ok.mean() > 0.99
    np.testing.assert_array_equal(labels.numpy()[ok], scores.argmax(axis=1)[ok])


def test_refinement_downweights_outlying_pass():
    # three passes say [0.4, 0.6], one saturated pass says [1, 0]: the plain mean picks class 0, while the
    # KL weights (Eq. 5) nearly silence the outlier, so the refined label is class 1.
    probs = torch.tensor([[0.4, 0.6]] * 3 + [[1.0, 0.0]]).reshape(4, 1, 2, 1, 1)
    assert pseudo_labels(probs).item() == 0
    assert refine_labels(probs).item() == 1
    expected = ref_weights(probs.double().numpy()).reshape(4)
    np.testing.assert_allclose(refinement_weights(probs).reshape(4).numpy(), expected, rtol=1e-5)
    assert expected[3] < 0.01


@pytest.mark.parametrize("eps", [1e-6, 1e-3])
def test_eps_clamps_saturated_outputs_like_reference(eps):
    # exact one-hot passes that disagree: without the clamp log(0) would give NaN/inf
    rng = np.random.default_rng(5)
    onehot = np.eye(3)[rng.integers(0, 3, size=(4, 2, 5, 6))]  # (m, b, x, y, c)
    probs = torch.from_numpy(np.moveaxis(onehot, -1, 2)).float()
    weights = refinement_weights(probs, eps)
    assert torch.isfinite(weights).all()
    np.testing.assert_allclose(weights.numpy(), ref_weights(probs.double().numpy(), eps), atol=1e-5)
    scores = ref_refined_scores(probs.double().numpy(), eps)
    ok = margin_ok(scores)
    np.testing.assert_array_equal(refine_labels(probs, eps).numpy()[ok], scores.argmax(axis=1)[ok])


@pytest.mark.parametrize("dims", SPATIAL)
def test_single_pass(dims):
    probs = random_probs(3, 1, 2, 4, SPATIAL[dims])
    weights = refinement_weights(probs)
    assert torch.equal(weights, torch.ones_like(weights))
    assert torch.equal(refine_labels(probs), probs[0].argmax(dim=1))
    assert torch.equal(pseudo_labels(probs), probs[0].argmax(dim=1))
    assert torch.equal(sample_uncertainty(probs), torch.zeros(2))


def test_one_dominant_class_everywhere():
    logits = torch.from_numpy(np.random.default_rng(4).normal(size=(6, 2, 3, 4, 5, 3))).float()
    logits[:, :, 2] += 40.0  # class 2 saturates to probability 1 in float32
    probs = torch.softmax(logits, dim=2)
    weights = refinement_weights(probs)
    assert torch.isfinite(weights).all()
    np.testing.assert_allclose(weights.numpy(), 1 / 6, atol=1e-6)
    assert (refine_labels(probs) == 2).all() and (pseudo_labels(probs) == 2).all()
    uncertainty = sample_uncertainty(probs)
    assert torch.isfinite(uncertainty).all() and (uncertainty < 1e-12).all()


@pytest.mark.parametrize("dims", SPATIAL)
@pytest.mark.parametrize("c", [2, 3, 7])
def test_uniform_probabilities(dims, c):
    probs = torch.full((5, 2, c, *SPATIAL[dims]), 1.0 / c)
    weights = refinement_weights(probs)
    assert torch.isfinite(weights).all()
    np.testing.assert_allclose(weights.numpy(), 0.2, atol=1e-7)
    # every class ties exactly: the first index wins
    assert (refine_labels(probs) == 0).all() and (pseudo_labels(probs) == 0).all()
    uncertainty = sample_uncertainty(probs)
    assert torch.isfinite(uncertainty).all()
    np.testing.assert_allclose(uncertainty.numpy(), 0.0, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [1, 3])
def test_exact_ties_go_to_first_index(device, m):
    # classes 1 and 2 tie exactly in every pass; class 0 is lower
    probs = torch.tensor([0.2, 0.4, 0.4], device=device).reshape(1, 1, 3, 1, 1).expand(m, 2, 3, 4, 4).contiguous()
    assert (probs.mean(0).argmax(1) == 1).all()  # torch.argmax's own rule, which the functions rely on
    assert (refine_labels(probs) == 1).all()
    assert (pseudo_labels(probs) == 1).all()


@pytest.mark.parametrize("dims", SPATIAL)
def test_batch_of_one(dims):
    probs = random_probs(8, 4, 1, 3, SPATIAL[dims], scale=3.0)
    p = probs.double().numpy()
    assert refine_labels(probs).shape == (1, *SPATIAL[dims])
    scores = ref_refined_scores(p)
    ok = margin_ok(scores)
    np.testing.assert_array_equal(refine_labels(probs).numpy()[ok], scores.argmax(axis=1)[ok])
    np.testing.assert_allclose(sample_uncertainty(probs).numpy(), ref_uncertainty(p), rtol=1e-5)
    assert select_most_certain(sample_uncertainty(probs), 0.5).tolist() == [True]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("dims", SPATIAL)
def test_low_precision_input_gives_float32_labels(dtype, dims):
    # well separated: a planted class leads by a logit margin of 6 in every pass
    rng = np.random.default_rng(9)
    shape = (6, 2, 4, *SPATIAL[dims])
    planted = rng.integers(0, 4, size=(2, *SPATIAL[dims]))
    logits = rng.normal(0.0, 0.5, size=shape) + 6.0 * np.moveaxis(np.eye(4)[planted], -1, 1)[None]
    probs = torch.softmax(torch.from_numpy(logits).float(), dim=2)
    low = probs.to(dtype)
    assert torch.equal(refine_labels(probs), torch.from_numpy(planted))
    assert torch.equal(refine_labels(low), refine_labels(probs))
    assert torch.equal(pseudo_labels(low), pseudo_labels(probs))
    for result in (refinement_weights(low), sample_uncertainty(low), mean_probabilities(low)):
        assert result.dtype == torch.float32
    np.testing.assert_allclose(refinement_weights(low).numpy(), refinement_weights(probs).numpy(), atol=0.02)
    np.testing.assert_allclose(sample_uncertainty(low).numpy(), sample_uncertainty(probs).numpy(), rtol=0.1)


def test_functions_run_under_cpu_autocast():
    probs = random_probs(11, 4, 3, 3, SPATIAL["3d"])
    student = torch.softmax(torch.randn(3, 3, *SPATIAL["3d"], generator=torch.Generator().manual_seed(0)), dim=1)
    plain = (refinement_weights(probs), refine_labels(probs), pseudo_labels(probs), mean_probabilities(probs),
             sample_uncertainty(probs), consistency_loss(student, probs.mean(0)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = (refinement_weights(probs), refine_labels(probs), pseudo_labels(probs), mean_probabilities(probs),
                sample_uncertainty(probs), consistency_loss(student, probs.mean(0)))
        selected = select_most_certain(auto[4], 0.5)
    for a, b in zip(auto, plain):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert auto[0].dtype == torch.float32 and auto[5].dtype == torch.float32
    assert selected.tolist() == ref_select(auto[4].numpy(), 0.5).tolist()


def test_input_validation():
    with pytest.raises(ValueError):
        refine_labels(torch.rand(4, 2, 3))
    with pytest.raises(TypeError):
        pseudo_labels(torch.ones(2, 1, 2, 3, dtype=torch.int64))
    for eps in (0.0, -1e-6, 1.0):
        with pytest.raises(ValueError):
            refinement_weights(random_probs(0, 2, 1, 2, (3, 3)), eps)


# ---------------------------------------------------------------- Eq. 7

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", SPATIAL)
@pytest.mark.parametrize("seed", SEEDS)
def test_sample_uncertainty_matches_reference(device, dims, seed):
    probs = random_probs(seed, 6, 3, 4, SPATIAL[dims])
    uncertainty = sample_uncertainty(probs.to(device)).cpu()
    assert uncertainty.dtype == torch.float32 and uncertainty.shape == (3,)
    np.testing.assert_allclose(uncertainty.numpy(), ref_uncertainty(probs.double().numpy()), rtol=1e-5)


def test_sample_uncertainty_resolves_tiny_variances():
    # passes that differ by ~1e-4 around 0.5: E[x^2]-E[x]^2 in float32 would lose these to rounding
    base = torch.full((4, 2, 2, 8, 8), 0.5)
    delta = torch.from_numpy(np.random.default_rng(2).uniform(-1e-4, 1e-4, size=(4, 2, 1, 8, 8))).float()
    probs = base + torch.cat([delta, -delta], dim=2)
    expected = ref_uncertainty(probs.double().numpy())
    np.testing.assert_allclose(sample_uncertainty(probs).numpy(), expected, rtol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("b,k", [(1, 0.5), (2, 0.5), (3, 0.5), (7, 0.3), (10, 0.7), (10, 0.1), (20, 0.5), (5, 1.0)])
def test_select_most_certain_matches_reference(device, seed, b, k):
    u = np.random.default_rng(seed).uniform(size=b).astype(np.float32)
    mask = select_most_certain(torch.from_numpy(u).to(device), k)
    assert mask.dtype == torch.bool and mask.shape == (b,) and mask.device.type == device
    assert mask.cpu().tolist() == ref_select(u, k).tolist()


def test_select_most_certain_counts_and_ties():
    u = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    assert select_most_certain(u, 1.0).all()
    assert select_most_certain(u, 1e-12).tolist() == [i == 9 for i in range(10)]  # ceil(k*B) = 1
    assert select_most_certain(u, 0.71).sum().item() == 8
    assert select_most_certain(torch.rand(50), 0.14).sum().item() == 7  # 0.14 * 50 is 7.000000000000001
    assert WindowedSelector(25).select(torch.arange(25.0), 0.28).sum().item() == 7  # same for 0.28 * 25
    assert select_most_certain(u, np.float32(0.5)).sum().item() == 5  # any real number type is accepted
    tied = torch.tensor([0.2, 0.1, 0.2, 0.2, 0.3])
    assert select_most_certain(tied, 0.6).tolist() == [True, True, True, False, False]  # earlier index wins
    many_ties = np.random.default_rng(0).integers(0, 5, size=1000).astype(np.float32)  # beyond insertion-sort size
    assert select_most_certain(torch.from_numpy(many_ties), 0.3).tolist() == ref_select(many_ties, 0.3).tolist()
    with_nan = torch.tensor([float("nan"), 0.9, 0.1])
    assert select_most_certain(with_nan, 0.6).tolist() == [False, True, True]  # NaN ranks last


@pytest.mark.parametrize("k", [0.0, -0.1, 1.5, float("nan"), True, "0.5", None])
def test_invalid_k_raises(k):
    with pytest.raises(ValueError):
        select_most_certain(torch.rand(4), k)
    with pytest.raises(ValueError):
        WindowedSelector(5).select(torch.rand(4), k)


def test_select_rejects_wrong_shape():
    with pytest.raises(ValueError):
        select_most_certain(torch.rand(2, 2), 0.5)
    with pytest.raises(ValueError):
        WindowedSelector().select(torch.rand(2, 2), 0.5)


# ---------------------------------------------------------------- windowed selection

def random_stream(seed: int, steps: int, sizes=(1, 2, 3, 7)) -> list:
    rng = np.random.default_rng(seed)
    return [rng.uniform(size=rng.choice(sizes)).astype(np.float32) for _ in range(steps)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("window", [1, 2, 5, 50])
@pytest.mark.parametrize("k", [0.1, 0.5, 0.7, 1.0])
def test_windowed_selector_matches_reference(device, window, k):
    selector, reference = WindowedSelector(window), RefWindow(window)
    for u in random_stream(window, 40):
        mask = selector.select(torch.from_numpy(u).to(device), k)
        assert mask.dtype == torch.bool and mask.device.type == device
        assert mask.cpu().tolist() == reference.select(u.tolist(), k)
    assert selector.state_dict()["scores"] == reference.history


def test_windowed_selector_rules():
    # window of length 1: a lone sample is selected for any k
    single = WindowedSelector(1)
    for u in (0.9, 0.1, 0.5, 0.95):
        assert single.select(torch.tensor([u]), 0.01).tolist() == [True]
    # the first call ranks within the batch: equals select_most_certain for distinct scores
    u = torch.tensor([0.4, 0.1, 0.3, 0.2, 0.5])
    for k in (0.2, 0.5, 0.9):
        assert torch.equal(WindowedSelector(10).select(u, k), select_most_certain(u, k))
    # history counts: after many low scores, a middling score is no longer selected
    selector = WindowedSelector(10)
    selector.select(torch.full((8,), 0.1) + torch.arange(8) * 1e-3, 0.5)
    assert selector.select(torch.tensor([0.5, 0.05]), 0.5).tolist() == [False, True]
    # k = 1 selects everything; equal scores share one fate
    assert selector.select(torch.tensor([0.99, 0.98]), 1.0).all()
    ties = WindowedSelector(6)
    assert ties.select(torch.full((3,), 0.2), 0.1).all()
    assert ties.select(torch.full((3,), 0.2), 0.1).all()


def test_windowed_selector_determinism_and_state_round_trip():
    stream = random_stream(3, 30)
    a, b = WindowedSelector(8), WindowedSelector(8)
    for u in stream[:15]:
        assert torch.equal(a.select(torch.from_numpy(u), 0.5), b.select(torch.from_numpy(u), 0.5))
    state = pickle.loads(pickle.dumps(a.state_dict()))
    assert set(state) == {"window", "scores"} and type(state["window"]) is int
    assert all(type(s) is float for s in state["scores"]) and len(state["scores"]) == 8
    resumed = WindowedSelector(3)  # configured differently: the checkpoint's window wins
    resumed.load_state_dict(state)
    assert resumed.window == 8
    for u in stream[15:]:
        assert torch.equal(resumed.select(torch.from_numpy(u), 0.5), a.select(torch.from_numpy(u), 0.5))
    assert resumed.state_dict() == a.state_dict()


def test_windowed_selector_gather_keeps_ranks_identical():
    # two ranks see different samples; gather concatenates them in rank order, like all_gather
    stream = random_stream(6, 20, sizes=(1, 2))
    rank0, rank1, single = WindowedSelector(7), WindowedSelector(7), WindowedSelector(7)
    for step, (u0, u1) in enumerate(zip(stream[::2], stream[1::2])):
        t0, t1 = torch.from_numpy(u0), torch.from_numpy(u1)
        everyone = torch.cat([t0, t1])
        calls = []

        def gather(local):
            calls.append(local)
            return everyone

        m0, m1 = rank0.select(t0, 0.5, gather=gather), rank1.select(t1, 0.5, gather=gather)
        assert len(calls) == 2 and calls[0] is t0 and calls[1] is t1
        assert torch.equal(torch.cat([m0, m1]), single.select(everyone, 0.5))
        assert m0.shape == t0.shape and m1.shape == t1.shape
        assert rank0.state_dict() == rank1.state_dict() == single.state_dict()


def test_windowed_selector_rejects_bad_input():
    with pytest.raises(ValueError):
        WindowedSelector(0)
    with pytest.raises(ValueError):
        WindowedSelector(2.5)
    selector = WindowedSelector(4)
    with pytest.raises(ValueError):
        selector.select(torch.tensor([0.1, float("nan")]), 0.5)
    assert selector.state_dict()["scores"] == []  # a rejected batch leaves the window untouched


# ---------------------------------------------------------------- Eq. 10

@pytest.mark.parametrize("dims", SPATIAL)
@pytest.mark.parametrize("seed", SEEDS)
def test_consistency_loss_matches_reference_and_detaches_teacher(dims, seed):
    student_logits = torch.randn(2, 3, *SPATIAL[dims], generator=torch.Generator().manual_seed(seed),
                                 requires_grad=True)
    student = torch.softmax(student_logits, dim=1)
    teacher = mean_probabilities(random_probs(seed + 10, 4, 2, 3, SPATIAL[dims])).requires_grad_(True)
    loss = consistency_loss(student, teacher)
    assert loss.ndim == 0 and loss.dtype == torch.float32
    s, t = student.detach().double().numpy(), teacher.detach().double().numpy()
    total = sum((s[idx] - t[idx]) ** 2 for idx in np.ndindex(*s.shape))
    np.testing.assert_allclose(loss.item(), total / s.size, rtol=1e-5)
    loss.backward()
    assert student_logits.grad is not None and student_logits.grad.abs().sum() > 0
    assert teacher.grad is None


def test_consistency_loss_low_precision_edge_cases():
    student = torch.softmax(torch.randn(2, 3, 4, 4), dim=1)
    teacher = torch.softmax(torch.randn(2, 3, 4, 4), dim=1)
    np.testing.assert_allclose(consistency_loss(student.bfloat16(), teacher.half()).item(),
                               ((student.bfloat16().double() - teacher.half().double()) ** 2).mean().item(), rtol=1e-6)
    with pytest.raises(ValueError):
        consistency_loss(student, teacher[:1])
    empty = torch.zeros(0, 3, 4, 4, requires_grad=True)
    loss = consistency_loss(empty, torch.zeros(0, 3, 4, 4))
    assert loss.item() == 0.0 and loss.requires_grad


# ---------------------------------------------------------------- ramp-up and EMA schedule

@pytest.mark.parametrize("t,expected", [(0, 0.5 * math.exp(-5)), (50, 0.5 * math.exp(-1.25)),
                                        (100, 0.5), (250, 0.5), (12.5, 0.5 * math.exp(-5 * 0.875 ** 2))])
def test_rampup_weight(t, expected):
    assert rampup_weight(t, 100, 0.5) == pytest.approx(expected, rel=1e-12)


def test_rampup_weight_edges():
    assert rampup_weight(0, 0, 0.1) == 0.1 and rampup_weight(7, 0, 0.1) == 0.1
    values = [rampup_weight(t, 40, 1.0) for t in range(0, 45)]
    assert all(a < b for a, b in zip(values[:40], values[1:41])) and values[40:] == [1.0] * 5
    with pytest.raises(ValueError):
        rampup_weight(-1, 10, 0.1)
    with pytest.raises(ValueError):
        rampup_weight(1, -10, 0.1)


def test_ema_decay():
    assert ema_decay(0) == 0.0
    assert ema_decay(1) == 0.5
    assert ema_decay(9) == pytest.approx(0.9)
    assert ema_decay(98) == pytest.approx(1 - 1 / 99)
    assert ema_decay(99) == 0.99 and ema_decay(10 ** 6) == 0.99
    assert ema_decay(1000, max_decay=0.999) == 0.999 and ema_decay(10, max_decay=0.999) == pytest.approx(1 - 1 / 11)
    with pytest.raises(ValueError):
        ema_decay(-1)
    with pytest.raises(ValueError):
        ema_decay(3, max_decay=1.5)


# ---------------------------------------------------------------- EMA update

def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv3d(1, 4, 3), nn.BatchNorm3d(4), nn.Dropout3d(0.1), nn.Conv3d(4, 2, 1))
    net.train()
    net(torch.randn(2, 1, 5, 5, 5))  # moves the BatchNorm running statistics away from their defaults
    return net


def snapshot(net: nn.Module) -> dict:
    return {k: v.detach().double().numpy().copy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("decay", [0.0, 0.3, 0.99, 1.0])
def test_ema_update_matches_reference(device, decay):
    teacher, student = small_net(0).to(device), small_net(1).to(device)
    t0, s0 = snapshot(teacher.cpu()), snapshot(student.cpu())
    teacher, student = teacher.to(device), student.to(device)
    ema_update_(teacher, student, decay)
    after = snapshot(teacher.cpu())
    params = {name for name, _ in teacher.named_parameters()}
    buffers = {name for name, _ in teacher.named_buffers()}
    assert params and buffers
    for name in params:
        np.testing.assert_allclose(after[name], decay * t0[name] + (1 - decay) * s0[name], rtol=1e-6, atol=1e-7)
    for name in buffers:
        np.testing.assert_array_equal(after[name], s0[name])
    np.testing.assert_array_equal(snapshot(student.cpu())["0.weight"], s0["0.weight"])  # student untouched


def test_ema_first_step_copies_student_exactly():
    teacher, student = small_net(0), small_net(1)
    ema_update_(teacher, student, ema_decay(0))
    for (name, t), s in zip(teacher.state_dict().items(), student.state_dict().values()):
        assert torch.equal(t, s), name


def test_ema_update_sequence_matches_reference():
    teacher, student = small_net(0), small_net(1)
    expected = snapshot(teacher)["0.weight"]
    for step in range(5):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.1)
        g = min(1 - 1 / (step + 1), 0.99)
        expected = g * expected + (1 - g) * snapshot(student)["0.weight"]
        ema_update_(teacher, student, ema_decay(step))
    np.testing.assert_allclose(snapshot(teacher)["0.weight"], expected, rtol=1e-6)


def test_unwrap_model_and_wrapped_ema():
    net = small_net(2)
    compiled = torch.compile(net)  # lazily compiled: nothing runs until the first forward
    parallel = nn.DataParallel(compiled)
    assert unwrap_model(net) is net
    assert unwrap_model(compiled) is net and unwrap_model(parallel) is net
    assert unwrap_model(torch.compile(nn.DataParallel(net))) is net
    teacher = copy.deepcopy(net)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    ema_update_(torch.compile(teacher), parallel, 0.5)
    for t, s in zip(teacher.parameters(), net.parameters()):
        torch.testing.assert_close(t, 0.75 * s)


def test_unwrap_ddp(tmp_path):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        net = small_net(3)
        wrapped = nn.parallel.DistributedDataParallel(torch.compile(net))
        assert unwrap_model(wrapped) is net
    finally:
        dist.destroy_process_group()


def test_ema_update_rejects_mismatch():
    with pytest.raises(ValueError):
        ema_update_(small_net(0), nn.Sequential(nn.Conv3d(1, 4, 3)), 0.5)
    with pytest.raises(ValueError):
        ema_update_(small_net(0), small_net(1), 1.5)


# ---------------------------------------------------------------- Eq. 3 input noise

@pytest.mark.parametrize("device", DEVICES)
def test_teacher_noise(device):
    x = torch.randn(4, 1, 32, 32, 32, device=device)
    original = x.clone()
    g1 = torch.Generator(device=device).manual_seed(7)
    g2 = torch.Generator(device=device).manual_seed(7)
    a, b = teacher_noise(x, generator=g1), teacher_noise(x, generator=g2)
    assert torch.equal(a, b) and torch.equal(x, original) and a.dtype == x.dtype
    noise = (a - x).double().cpu().numpy()
    assert np.abs(noise).max() <= 0.2 + 1e-6
    clipped = np.mean(np.abs(noise) >= 0.2 - 1e-6)
    assert 0.035 < clipped < 0.056  # P(|N(0, 0.1^2)| >= 0.2) = 4.55 %
    wide = (teacher_noise(x, std=0.1, clip=10.0) - x).double().cpu().numpy()
    assert abs(wide.std() - 0.1) < 0.002 and abs(wide.mean()) < 0.002
    assert torch.equal(teacher_noise(x, std=0.0), x)
    assert not torch.equal(teacher_noise(x), teacher_noise(x))


def test_teacher_noise_keeps_dtype_and_validates():
    x = torch.zeros(2, 1, 8, 8, dtype=torch.bfloat16)
    out = teacher_noise(x, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.bfloat16 and out.abs().max() <= 0.2
    for std, clip in ((-0.1, 0.2), (0.1, -0.2)):
        with pytest.raises(ValueError):
            teacher_noise(x, std, clip)
