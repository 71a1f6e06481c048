"""Dropout for the teacher's stochastic passes (METHOD.md, "Teacher passes").

nnU-Net's plans carry no dropout, so ALC adds channel dropout (``Dropout2d``/``Dropout3d``, matching the
convolution) after the convolution of each conv-norm-nonlin block (dynamic_network_architectures'
``ConvDropoutNormReLU``):

- ``decoder`` (default, ours): only the blocks of ``network.decoder``; the encoder stays deterministic.
- ``all``: every such block, encoder and decoder.
- ``none``: no dropout; the passes then differ only by their input noise.

Dropout layers hold no parameters, so the state dict is unchanged and checkpoints load into stock
nnU-Net networks, and vice versa.
"""

from __future__ import annotations

from torch import nn

from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU


def add_dropout(network: nn.Module, p: float, placement: str) -> int:
    """Insert channel dropout in place; returns how many blocks got one. Raises if none could."""
    if placement == "none" or p == 0:
        return 0
    if placement == "decoder":
        if not hasattr(network, "decoder"):
            raise ValueError(f"dropout placement 'decoder' needs a network with a .decoder, got {type(network).__name__}")
        root = network.decoder
    elif placement == "all":
        root = network
    else:
        raise ValueError(f"unknown dropout placement {placement!r}")
    blocks = [m for m in root.modules() if isinstance(m, ConvDropoutNormReLU)]
    if not blocks:
        raise ValueError(f"{type(network).__name__} has no ConvDropoutNormReLU blocks to add dropout to; "
                         f"set ALC_DROPOUT_PLACEMENT=none or use a dynamic_network_architectures UNet")
    for block in blocks:
        if getattr(block, "dropout", None) is not None:  # the plans asked for dropout already: keep theirs
            continue
        block.dropout = (nn.Dropout3d if block.conv.weight.ndim == 5 else nn.Dropout2d)(p=p)
        layers = list(block.all_modules)
        layers.insert(layers.index(block.conv) + 1, block.dropout)
        block.all_modules = nn.Sequential(*layers)
    return len(blocks)


def enable_dropout_only(network: nn.Module) -> None:
    """Eval mode everywhere except dropout layers (so normalisation statistics are not touched)."""
    network.eval()
    for module in network.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
