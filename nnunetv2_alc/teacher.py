"""The Mean Teacher: an EMA copy of the student and its stochastic passes (Eq. 3-4)."""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from nnunetv2_alc.dropout import enable_dropout_only
from nnunetv2_alc.label_correction import ema_decay, ema_update_, teacher_noise, unwrap_model


class MeanTeacher:
    """Holds the teacher network (never trained by gradients) and its EMA step counter."""

    def __init__(self, student: nn.Module, max_decay: float):
        self.network = copy.deepcopy(unwrap_model(student))
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        if hasattr(getattr(self.network, "decoder", None), "deep_supervision"):
            self.network.decoder.deep_supervision = False  # the passes need full resolution only
        self.max_decay = max_decay
        self.step = 0
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.network

    def compile(self) -> None:
        self.forward = torch.compile(self.network)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """theta_t = g * theta_t + (1 - g) * theta_s with g = min(1 - 1/(step+1), max_decay)."""
        ema_update_(self.network, student, ema_decay(self.step, self.max_decay))
        self.step += 1

    @torch.no_grad()
    def stochastic_probabilities(self, images: torch.Tensor, num_passes: int, noise_std: float,
                                 noise_clip: float, chunk: int = 0) -> torch.Tensor:
        """Psi_j = softmax(f_t(X + xi_j)) for j = 1..m (Eq. 3) as float32 of shape (m, B, C, *spatial).

        The m passes of all B samples run as batched forwards of up to ``chunk`` samples (0 = one
        forward of m*B samples), with dropout active and everything else in eval mode. The caller
        decides the autocast context (the training one).
        """
        enable_dropout_only(self.network)
        batch = images.shape[0]
        stacked = images.unsqueeze(0).expand(num_passes, *images.shape).reshape(num_passes * batch, *images.shape[1:])
        stacked = teacher_noise(stacked, noise_std, noise_clip)
        step = chunk if chunk > 0 else stacked.shape[0]
        logits = torch.cat([_full_resolution(self.forward(part)) for part in stacked.split(step)])
        probs = torch.softmax(logits.float(), dim=1)
        return probs.reshape(num_passes, batch, *probs.shape[1:])

    def state_dict(self) -> dict:
        return {"weights": self.network.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["weights"])
        self.step = int(state["step"])


def _full_resolution(output) -> torch.Tensor:
    return output[0] if isinstance(output, (list, tuple)) else output
