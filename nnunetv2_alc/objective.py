"""Loss terms of Eq. 1, 2 and 8-11 on nnU-Net's deep-supervision outputs, and the ramp-up lambda(t) of Eq. 11."""

from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import torch
from torch.nn.functional import interpolate

Outputs = Union[torch.Tensor, Sequence[torch.Tensor]]


def subset(outputs: Outputs, index: torch.Tensor) -> Outputs:
    """The samples ``index`` of every deep-supervision scale."""
    if isinstance(outputs, torch.Tensor):
        return outputs[index]
    return [o[index] for o in outputs]


def full_resolution(outputs: Outputs) -> torch.Tensor:
    return outputs if isinstance(outputs, torch.Tensor) else outputs[0]


def zero_term(outputs: Outputs) -> torch.Tensor:
    """0, connected to every deep-supervision output.

    A term without samples must still reach every output (and so every parameter, the lower-scale
    segmentation layers included): DDP without ``find_unused_parameters`` fails on a rank where some
    parameter got no gradient.
    """
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else outputs
    return sum(o.sum() for o in outputs) * 0.0


def subset_loss(loss_fn: Callable, outputs: Outputs, index: torch.Tensor, targets: Outputs) -> torch.Tensor:
    """``l_seg`` of the samples ``index`` against ``targets`` (already holding just those samples).

    A mean over those samples (Eq. 1, 8, 9); :func:`zero_term` when there are none.
    """
    if index.numel() == 0:
        return zero_term(outputs)
    return loss_fn(subset(outputs, index), targets)


def global_share(local_count: int, global_count: int, world_size: int) -> float:
    """Weight of a term's local mean under DDP: ``world_size * local_count / global_count`` (0 if no samples).

    DDP averages the ranks' gradients, so scaling each rank's mean over its own samples by this factor
    gives the gradient of the mean over the term's samples of the whole global batch: one GPU and N
    GPUs optimise the same objective. Without DDP (one rank holding every sample) it is 1.
    """
    if local_count < 0 or global_count < local_count or world_size < 1:
        raise ValueError(f"need 0 <= local_count <= global_count and world_size >= 1, got {local_count}, "
                         f"{global_count}, {world_size}")
    return world_size * local_count / global_count if global_count else 0.0


def labels_as_targets(labels: torch.Tensor, like: Outputs) -> Outputs:
    """Turn full-resolution labels ``(B, *spatial)`` into targets shaped like ``like``.

    Lower deep-supervision scales are downsampled with nearest-exact interpolation to the shape of the
    corresponding target, as nnU-Net's own ``DownsampleSegForDSTransform`` does.
    """
    if isinstance(like, torch.Tensor):
        return labels[:, None].to(like.dtype)
    as_float = labels[:, None].float()
    scaled = []
    for target in like:
        shape = tuple(target.shape[2:])
        same = shape == tuple(labels.shape[1:])
        resized = as_float if same else interpolate(as_float, size=shape, mode="nearest-exact")
        scaled.append(resized.to(target.dtype))
    return scaled


def rampup_weight(step_or_epoch: float, rampup_length: float, lambda_max: float) -> float:
    """lambda(t) = lambda_max * exp(-5 * (1 - min(t, T)/T)^2) (Eq. 11; Mean Teacher's ramp-up).

    ``T = rampup_length``; ``T == 0`` means no ramp-up (``lambda_max`` throughout). ``t`` and ``T`` must
    be >= 0.
    """
    if step_or_epoch < 0 or rampup_length < 0:
        raise ValueError(f"t and T must be >= 0, got t={step_or_epoch!r}, T={rampup_length!r}")
    if rampup_length == 0:
        return float(lambda_max)
    phase = 1.0 - min(step_or_epoch, rampup_length) / rampup_length
    return float(lambda_max * math.exp(-5.0 * phase * phase))
