"""The Mean Teacher: an EMA copy of the student (Eq. 3) and its stochastic passes (Eq. 3-4).

Besides :class:`MeanTeacher` this module holds what the teacher is made of: the EMA decay and update,
the input noise of its passes, and the unwrapping of DDP / torch.compile around a network.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from nnunetv2_alc.dropout import enable_dropout_only


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
        self._paired: Optional[tuple[nn.Module, EMAPairs]] = None  # the student of the last update, its pairs

    def compile(self) -> None:
        self.forward = torch.compile(self.network)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """theta_t = g * theta_t + (1 - g) * theta_s with g = min(1 - 1/(step+1), max_decay).

        The teacher's and the student's tensors are paired by name once per student module and reused:
        pairing took most of an update's time on the CPU. Loading weights with ``load_state_dict`` copies
        into the paired tensors, so the pairs stay valid across checkpoints. Replacing tensors instead
        (``.to()`` of a network with buffers, ``load_state_dict(assign=True)``) needs :meth:`reset_pairs`;
        the trainers never do it after the first update.
        """
        if self._paired is None or self._paired[0] is not student:
            self._paired = (student, ema_pairs(self.network, student))
        self._paired[1].update_(ema_decay(self.step, self.max_decay))
        self.step += 1

    @torch.inference_mode()
    def stochastic_probabilities(self, images: torch.Tensor, num_passes: int, noise_std: float,
                                 noise_clip: float, chunk: int, image_channels: Optional[int] = None) -> torch.Tensor:
        """Psi_j = softmax(f_t(X + xi_j)) for j = 1..m (Eq. 3) as float32 of shape (m, B, C, *spatial).

        The m passes of all B samples run as batched forwards of up to ``chunk`` samples, with dropout
        active and everything else in eval mode. The noise xi goes onto the first ``image_channels``
        channels only (all when None): a cascade's previous-stage segmentation channels stay as they are.
        The caller decides the autocast context (the training one). The passes run under
        ``torch.inference_mode`` (no autograd bookkeeping); the result is an inference tensor that
        only enters the losses as a target, never as a tensor saved for backward.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        enable_dropout_only(self.network)
        batch = images.shape[0]
        stacked = images.unsqueeze(0).expand(num_passes, *images.shape).reshape(num_passes * batch, *images.shape[1:])
        noisy = stacked.shape[1] if image_channels is None else image_channels
        stacked = torch.cat([teacher_noise(stacked[:, :noisy], noise_std, noise_clip), stacked[:, noisy:]], dim=1)
        logits = torch.cat([_full_resolution(self.forward(part)) for part in stacked.split(chunk)])
        probs = torch.softmax(logits.float(), dim=1)
        return probs.reshape(num_passes, batch, *probs.shape[1:])

    def reset_pairs(self) -> None:
        """Pair the tensors anew at the next :meth:`update` (after either network's tensors were replaced)."""
        self._paired = None

    def state_dict(self) -> dict:
        return {"weights": self.network.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["weights"])
        self.step = int(state["step"])
        self.reset_pairs()


def _full_resolution(output) -> torch.Tensor:
    return output[0] if isinstance(output, (list, tuple)) else output


def ema_decay(step: int, max_decay: float = 0.99) -> float:
    """g = min(1 - 1/(step+1), max_decay) (Eq. 3 teacher update; Mean Teacher's warm-up).

    Step 0 gives 0, so the first update copies the student into the teacher.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    if not 0.0 <= max_decay <= 1.0:
        raise ValueError(f"max_decay must be in [0, 1], got {max_decay!r}")
    return min(1.0 - 1.0 / (step + 1), max_decay)


def unwrap_model(module: nn.Module) -> nn.Module:
    """The network inside any nesting of DDP / DataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        if isinstance(module, (DistributedDataParallel, DataParallel)):
            module = module.module
        elif isinstance(getattr(module, "_orig_mod", None), nn.Module):
            module = module._orig_mod
        else:
            return module


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place: theta_t = g * theta_t + (1 - g) * theta_s for every parameter (Eq. 3), ``g = decay``.

    Buffers (e.g. BatchNorm running statistics) are copied from the student. Both modules may be wrapped
    (see :func:`unwrap_model`); their parameter and buffer names must match.
    """
    ema_pairs(teacher, student).update_(decay)


class EMAPairs:
    """The teacher's parameters and buffers, each with the student's tensor of the same name."""

    def __init__(self, teacher_params: list[Tensor], student_params: list[Tensor], teacher_buffers: list[Tensor],
                 student_buffers: list[Tensor]):
        self.teacher_params, self.student_params = teacher_params, student_params
        self.teacher_buffers, self.student_buffers = teacher_buffers, student_buffers

    @torch.no_grad()
    def update_(self, decay: float) -> None:
        """theta_t = decay * theta_t + (1 - decay) * theta_s for the parameters; buffers copied (Eq. 3)."""
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay!r}")
        if self.teacher_params:
            torch._foreach_lerp_(self.teacher_params, self.student_params, 1.0 - decay)
        for teacher_buffer, student_buffer in zip(self.teacher_buffers, self.student_buffers):
            teacher_buffer.copy_(student_buffer)


def ema_pairs(teacher: nn.Module, student: nn.Module) -> EMAPairs:
    """Pair the tensors of two (possibly wrapped) modules by name; ``ValueError`` when the names differ."""
    teacher, student = unwrap_model(teacher), unwrap_model(student)
    t_params, s_params = dict(teacher.named_parameters()), dict(student.named_parameters())
    t_buffers, s_buffers = dict(teacher.named_buffers()), dict(student.named_buffers())
    if t_params.keys() != s_params.keys() or t_buffers.keys() != s_buffers.keys():
        raise ValueError("teacher and student have different parameter or buffer names")
    return EMAPairs([t_params[n] for n in t_params], [s_params[n] for n in t_params],
                    [t_buffers[n] for n in t_buffers], [s_buffers[n] for n in t_buffers])


def teacher_noise(x: Tensor, std: float = 0.1, clip: float = 0.2,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    """x + xi with xi = clamp(N(0, std^2), -clip, clip), drawn per element (Eq. 3 input perturbation).

    The noise is drawn in float32 on ``x``'s device (``generator`` must live there too) and added in
    ``x``'s dtype; ``x`` itself is left unchanged.
    """
    if std < 0 or clip < 0:
        raise ValueError(f"std and clip must be >= 0, got std={std!r}, clip={clip!r}")
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
    noise.mul_(std).clamp_(-clip, clip)
    return x + noise.to(x.dtype)
