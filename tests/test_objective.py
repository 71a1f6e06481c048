import pytest
import torch
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform

from nnunetv2_alc.objective import labels_as_targets, subset, subset_loss


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
