"""Loss terms of Eq. 1, 2 and 8-11 on nnU-Net's deep-supervision outputs."""

from __future__ import annotations

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


def subset_loss(loss_fn: Callable, outputs: Outputs, index: torch.Tensor, targets: Outputs) -> torch.Tensor:
    """``l_seg`` of the samples ``index`` against ``targets`` (already holding just those samples).

    A mean over those samples (Eq. 1, 8, 9); 0 when there are none. The empty case returns
    ``0 * sum(output)`` rather than a constant so every parameter still takes part in the graph (DDP
    without ``find_unused_parameters`` requires that).
    """
    if index.numel() == 0:
        return full_resolution(outputs).sum() * 0.0
    return loss_fn(subset(outputs, index), targets)


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
        resized = as_float if shape == tuple(labels.shape[1:]) else interpolate(as_float, size=shape, mode="nearest-exact")
        scaled.append(resized.to(target.dtype))
    return scaled
