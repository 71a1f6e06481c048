"""Tests of nnunetv2_alc.label_correction against independent float64 NumPy references."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
import torch

from nnunetv2_alc.label_correction import (
    TeacherPasses,
    WindowedSelector,
    class_argmax,
    consistency_loss,
    mean_probabilities,
    pseudo_labels,
    refine_labels,
    refinement_weights,
    sample_uncertainty,
    select_most_certain,
    weighted_labels,
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
    assert (probs.mean(0).max(1).indices == 1).all()  # torch.max's own rule, which class_argmax relies on
    assert (refine_labels(probs) == 1).all()
    assert (pseudo_labels(probs) == 1).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
@pytest.mark.parametrize("dims", SPATIAL)
def test_class_argmax_matches_numpy_with_ties(dims, dtype):
    # scores rounded to one decimal tie often; numpy's argmax also returns the first maximal index
    scores = torch.rand(3, 5, *SPATIAL[dims], generator=torch.Generator().manual_seed(7)).round(decimals=1)
    labels = class_argmax(scores.to(dtype))
    assert labels.dtype == torch.int64 and labels.shape == (3, *SPATIAL[dims])
    np.testing.assert_array_equal(labels.numpy(), scores.double().numpy().argmax(axis=1))


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


def test_windowed_selector_on_gathered_scores_keeps_ranks_identical():
    # two ranks each rank all gathered scores (rank order, like all_gather) and keep their own slice
    stream = random_stream(6, 20, sizes=(1, 2))
    rank0, rank1, single = WindowedSelector(7), WindowedSelector(7), WindowedSelector(7)
    for u0, u1 in zip(stream[::2], stream[1::2]):
        everyone = torch.cat([torch.from_numpy(u0), torch.from_numpy(u1)])
        m0, m1 = rank0.select(everyone, 0.5)[:len(u0)], rank1.select(everyone, 0.5)[len(u0):]
        assert torch.equal(torch.cat([m0, m1]), single.select(everyone, 0.5))
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


def test_weighted_labels_with_given_weights_and_bad_shape():
    probs = random_probs(4, 3, 2, 3, SPATIAL["2d"])
    weights = refinement_weights(probs)
    assert torch.equal(weighted_labels(probs, weights), refine_labels(probs))
    uniform = torch.full_like(weights, 1 / 3)
    assert torch.equal(weighted_labels(probs, uniform), pseudo_labels(probs))
    with pytest.raises(ValueError, match="weights must have shape"):
        weighted_labels(probs, weights[:, :1])


def test_teacher_passes_bundle_equals_the_functions():
    probs = random_probs(5, 4, 3, 2, SPATIAL["3d"])
    passes = TeacherPasses(probs)
    assert torch.equal(passes.mean, mean_probabilities(probs))
    assert torch.equal(passes.weights, refinement_weights(probs))
    assert torch.equal(passes.refined, refine_labels(probs))
    assert torch.equal(passes.pseudo, pseudo_labels(probs))
    assert torch.equal(passes.uncertainty, sample_uncertainty(probs))
    assert passes.refined is passes.refined  # computed once
    with pytest.raises(ValueError):
        TeacherPasses(probs[0, 0, 0])
