"""Dropout for the teacher's stochastic passes (docs/method.md, "Dropout").

nnU-Net's plans carry no dropout, so ALC attaches channel dropout (``dropout2d``/``dropout3d`` by the
tensor's ndim) to an already built network as parameter-free forward hooks (:class:`ChannelDropout`).
The state dict stays exactly stock nnU-Net's: checkpoints load into stock networks and back, and a
network built without the hooks (``nnUNetv2_predict``) predicts with the same weights. Placements
(``dropout_placement``, for dynamic_network_architectures' ``PlainConvUNet`` and ``ResidualEncoderUNet``):

- ``decoder`` (ours): on the convolution's output, between conv and norm, of every conv-norm-nonlin
  block (``ConvDropoutNormReLU``) of the decoder; the encoder (which the decoder references) gets none.
- ``lineage`` (the default, chosen on validation data, docs/method.md; UA-MT and MTCL use
  ``nn.Dropout3d(p=0.5)`` in their V-Net): on the bottleneck's output (``encoder.stages[-1]``, the
  decoder's lowest-resolution input) and on the last decoder stage's output (``decoder.stages[-1]``, after
  its nonlinearity, the input of the final 1x1 segmentation conv).
- ``all``: between conv and norm of every ``ConvDropoutNormReLU`` on a main path, encoder and decoder:
  for ``ResidualEncoderUNet`` the stem and every conv inside the residual blocks (BasicBlockD: 2,
  BottleneckD: 3). The 1x1 projections on residual shortcuts never get any (any placement): the
  shortcut carries the block's input past its convolutions.
- ``none``, or p = 0: nothing.

A block whose plans already hold a dropout op keeps it and gets no hook (``decoder``, ``all``). Dropout
acts while the hooked module is in training mode (the student; ``.eval()`` turns it off) or when forced
by :func:`enable_dropout_only` (the teacher's passes, the report). ``copy.deepcopy`` gives the copy its
own hooks. Hooks must be attached before ``torch.compile`` runs the network for the first time; under DDP
they sit on the inner modules and need nothing else.
"""

from __future__ import annotations

import torch
from dynamic_network_architectures.building_blocks.residual import BasicBlockD, BottleneckD
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn
from torch.nn import functional as F

from nnunetv2_alc.config import DROPOUT_PLACEMENTS


class ChannelDropout:
    """Forward hook: channel dropout of the module's output while the module trains, or always if ``forced``."""

    def __init__(self, p: float, placement: str):
        self.p = p
        self.placement = placement
        self.forced = False

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        dropout = F.dropout3d if output.ndim == 5 else F.dropout2d
        return dropout(output, self.p, module.training or self.forced)

    def __repr__(self) -> str:
        return f"ChannelDropout(p={self.p}, placement={self.placement!r}, forced={self.forced})"


def attached_dropout(network: nn.Module) -> list[ChannelDropout]:
    """The :class:`ChannelDropout` hooks on the network's modules."""
    return [hook for module in network.modules() for hook in module._forward_hooks.values()
            if isinstance(hook, ChannelDropout)]


def add_dropout(network: nn.Module, p: float, placement: str) -> int:
    """Attach channel dropout in place (see the module docstring); returns the number of hook points.

    Idempotent: a network that has our dropout already is left as it is when asked for the same ``p`` and
    ``placement`` (the count of its hooks is returned) and refused (ValueError) for any other settings.
    Raises ValueError for an unknown placement, ``p`` outside [0, 1), or a network without the structure
    the placement needs.
    """
    if placement not in DROPOUT_PLACEMENTS:
        raise ValueError(f"unknown dropout placement {placement!r}; allowed: {', '.join(DROPOUT_PLACEMENTS)}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    present = attached_dropout(network)
    if present:
        if {(hook.p, hook.placement) for hook in present} != {(p, placement)}:
            raise ValueError(f"{type(network).__name__} already has ALC dropout ({present[0].placement}, "
                             f"p={present[0].p}); it is attached once per network, so build a fresh network "
                             f"for {placement}, p={p}")
        return len(present)
    if placement == "none" or p == 0:
        return 0
    points = _hook_points(network, placement)
    for module in points:
        module.register_forward_hook(ChannelDropout(p, placement))
    return len(points)


def _hook_points(network: nn.Module, placement: str) -> list[nn.Module]:
    if placement == "lineage":
        encoder_stages = getattr(getattr(network, "encoder", None), "stages", None)
        decoder_stages = getattr(getattr(network, "decoder", None), "stages", None)
        if not all(isinstance(s, (nn.Sequential, nn.ModuleList)) and len(s) for s in (encoder_stages, decoder_stages)):
            raise _unsupported(network, placement, "an .encoder.stages and a .decoder.stages")
        return [encoder_stages[-1], decoder_stages[-1]]
    excluded = {id(m) for block in network.modules() if isinstance(block, (BasicBlockD, BottleneckD))
                and isinstance(block.skip, nn.Module) for m in block.skip.modules()}  # residual shortcuts
    root = network
    if placement == "decoder":
        root = getattr(network, "decoder", None)
        if not isinstance(root, nn.Module):
            raise _unsupported(network, placement, "a .decoder")
        encoder = getattr(network, "encoder", None)
        excluded |= {id(m) for m in encoder.modules()} if isinstance(encoder, nn.Module) else set()
    blocks = [m for m in root.modules() if isinstance(m, ConvDropoutNormReLU) and id(m) not in excluded]
    if not blocks:
        raise _unsupported(network, placement, "ConvDropoutNormReLU blocks")
    return [block.conv for block in blocks if getattr(block, "dropout", None) is None]


def _unsupported(network: nn.Module, placement: str, needed: str) -> ValueError:
    return ValueError(f"dropout placement {placement!r} needs a network with {needed} (dynamic_network_architectures' "
                      f"PlainConvUNet or ResidualEncoderUNet), got {type(network).__name__}; "
                      f"set ALC_DROPOUT_PLACEMENT=none or use such a network")


def enable_dropout_only(network: nn.Module) -> None:
    """Eval mode everywhere (normalisation included), but our dropout forced on and dropout layers in train mode."""
    network.eval()
    for module in network.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
    for hook in attached_dropout(network):
        hook.forced = True


def has_dropout(network: nn.Module) -> bool:
    """Whether the network has any dropout, ours or layers (else the passes differ by their input noise only)."""
    return bool(attached_dropout(network)) or any(isinstance(m, nn.modules.dropout._DropoutNd)
                                                  for m in network.modules())
