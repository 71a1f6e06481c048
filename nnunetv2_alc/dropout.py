"""Dropout for the teacher's stochastic passes (METHOD.md, "Teacher passes").

nnU-Net's plans carry no dropout, so ALC adds channel dropout (``dropout2d``/``dropout3d``, matching the
convolution) right after the convolution of conv-norm-nonlin blocks (dynamic_network_architectures'
``ConvDropoutNormReLU``):

- ``decoder`` (default, ours): only the decoder's blocks; the encoder stays deterministic.
- ``all``: every block, encoder and decoder.
- ``none``: no dropout; the passes then differ only by their input noise.

The block's layer sequence is swapped for :class:`ConvThenDropout`, which holds the same layers at the
same indices and applies dropout functionally. So the state dict keeps exactly its keys and tensors,
and checkpoints load into stock nnU-Net networks and back. Dropout follows the sequence's own
``training`` flag (``.train()``/``.eval()`` as usual).
"""

from __future__ import annotations

import torch
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn
from torch.nn import functional as F


class ConvThenDropout(nn.Sequential):
    """``nn.Sequential`` of a block's layers with channel dropout after the first one (the convolution)."""

    def __init__(self, layers: nn.Sequential, p: float):
        super().__init__(*layers)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self[0](x)
        dropout = F.dropout3d if x.ndim == 5 else F.dropout2d
        x = dropout(x, self.p, self.training)
        for layer in list(self)[1:]:
            x = layer(x)
        return x

    def extra_repr(self) -> str:
        return f"channel dropout p={self.p} after layer 0"


def add_dropout(network: nn.Module, p: float, placement: str) -> int:
    """Add channel dropout in place; returns how many blocks got it. Raises if the network has no such blocks."""
    if placement == "none" or p == 0:
        return 0
    if placement not in ("decoder", "all"):
        raise ValueError(f"unknown dropout placement {placement!r}")
    if placement == "decoder" and not hasattr(network, "decoder"):
        raise ValueError(f"dropout placement 'decoder' needs a network with a .decoder, got {type(network).__name__}")
    root = network.decoder if placement == "decoder" else network
    # UNetDecoder keeps a reference to the encoder; those blocks are not decoder blocks
    encoder = getattr(network, "encoder", None) if placement == "decoder" else None
    excluded = {id(m) for m in encoder.modules()} if encoder is not None else set()
    blocks = [m for m in root.modules() if isinstance(m, ConvDropoutNormReLU) and id(m) not in excluded]
    if not blocks:
        raise ValueError(f"{type(network).__name__} has no ConvDropoutNormReLU blocks to add dropout to; "
                         f"set ALC_DROPOUT_PLACEMENT=none or use a dynamic_network_architectures UNet")
    for block in blocks:
        if getattr(block, "dropout", None) is None and not isinstance(block.all_modules, ConvThenDropout):
            block.all_modules = ConvThenDropout(block.all_modules, p)
    return len(blocks)


def enable_dropout_only(network: nn.Module) -> None:
    """Eval mode everywhere except dropout (so normalisation statistics are not touched)."""
    network.eval()
    for module in network.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
        elif isinstance(module, ConvThenDropout):
            module.training = True  # this sequence only; its layers stay in eval mode
