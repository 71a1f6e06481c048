import math
from fractions import Fraction

import pytest
import torch
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform

from nnunetv2_alc.objective import global_share, labels_as_targets, rampup_weight, subset, subset_loss, zero_term


@pytest.mark.parametrize("shape, scales", [((20, 24, 28), [[1, 1, 1], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]),
                                           ((17, 33), [[1, 1], [0.5, 0.5], [0.5, 0.25]])])
def test_labels_downsample_exactly_as_nnunet_targets(shape, scales):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (2, *shape), generator=g)
    transform = DownsampleSegForDSTransform(ds_scales=scales)
    expected = [torch.stack(s) for s in zip(*[transform(segmentation=labels[i:i + 1].to(torch.int16))["segmentation"]
                                              for i in range(2)])]
    got = labels_as_targets(labels, expected)
    for e, o in zip(expected, got):
        assert o.shape == e.shape and o.dtype == e.dtype
        assert torch.equal(o, e)


def test_labels_as_single_target():
    labels = torch.randint(0, 2, (3, 5, 6))
    like = torch.zeros(3, 1, 5, 6, dtype=torch.int16)
    out = labels_as_targets(labels, like)
    assert out.shape == like.shape and torch.equal(out[:, 0].long(), labels)


def test_subset_loss_means_over_chosen_samples_and_is_zero_but_connected_when_empty():
    outputs = [torch.randn(4, 2, 6, 6, requires_grad=True), torch.randn(4, 2, 3, 3, requires_grad=True)]
    targets = [torch.randint(0, 2, (4, 1, 6, 6)), torch.randint(0, 2, (4, 1, 3, 3))]
    per_sample_mean = lambda o, t: sum(x.mean() for x in o) + sum(y.float().mean() for y in t)  # noqa: E731
    index = torch.tensor([1, 3])
    loss = subset_loss(per_sample_mean, outputs, index, subset(targets, index))
    assert torch.allclose(loss, per_sample_mean([o[index] for o in outputs], [t[index] for t in targets]))
    empty = subset_loss(per_sample_mean, outputs, torch.tensor([], dtype=torch.long), None)
    assert empty.item() == 0.0
    empty.backward()
    assert outputs[0].grad is not None and torch.count_nonzero(outputs[0].grad) == 0


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


def test_zero_term_reaches_every_deep_supervision_output():
    outputs = [torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 4, 4, requires_grad=True)]
    zero = zero_term(outputs)
    assert zero.item() == 0.0
    zero.backward()
    assert all(o.grad is not None and torch.equal(o.grad, torch.zeros_like(o)) for o in outputs)
    empty = subset_loss(lambda *a: 1 / 0, outputs, torch.zeros(0, dtype=torch.long), [])
    assert empty.item() == 0.0 and empty.grad_fn is not None


@pytest.mark.parametrize("counts", [[(1, 2), (1, 2)], [(0, 2), (2, 2)], [(3, 10), (5, 10), (2, 10)], [(0, 0), (0, 0)]])
def test_global_share_makes_the_rank_average_the_global_mean(counts):
    # rank r holds local_r of N samples of a term; DDP averages the ranks' losses -> must equal the global mean
    world = len(counts)
    rng = torch.Generator().manual_seed(0)
    values = [torch.rand(local, generator=rng, dtype=torch.float64) for local, _ in counts]
    averaged = sum(global_share(local, total, world) * (v.mean().item() if local else 0.0)
                   for (local, total), v in zip(counts, values)) / world
    everything = torch.cat(values)
    assert averaged == pytest.approx(everything.mean().item() if everything.numel() else 0.0, rel=1e-12)
    assert global_share(3, 3, 1) == 1.0 and global_share(0, 0, 1) == 0.0
    assert Fraction(global_share(1, 4, 2)).limit_denominator() == Fraction(1, 2)
    with pytest.raises(ValueError):
        global_share(3, 2, 1)
