"""The ALC method as plain torch functions (paper Eq. 3-7 and 10, read as METHOD.md fixes them).

Conventions:

- ``probs`` are the teacher's softmax outputs ``Psi`` of shape ``(m, B, C, *spatial)``: ``m`` stochastic
  passes, ``B`` samples, ``C`` classes, 2D or 3D spatial dimensions.
- Any floating dtype is accepted (float32, float16, bfloat16); everything is computed in float32 and
  floating results are float32, also under ``torch.autocast`` (no op used here is autocast-eligible).
- Nothing loops over voxels, samples or passes in Python. The functions that need ``log(Psi_j)`` or
  ``Psi_j - Psi_avg`` build one float32 temporary the size of ``probs`` and work on it in place.
- Argmax ties go to the lowest class index (``torch.argmax``'s documented rule), so an exact tie between
  classes yields the first of them.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from typing import Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

# Slack for ceil(k * n): k * n computed in binary floating point can land just above an integer that it
# equals in decimal (0.14 * 50 == 7.000000000000001), which must not add a sample.
_CEIL_SLACK = 1e-9


def _check_probs(probs: Tensor) -> None:
    if probs.ndim < 4:
        raise ValueError(f"probs must have shape (m, B, C, *spatial), got {tuple(probs.shape)}")
    if not probs.is_floating_point():
        raise TypeError(f"probs must be a floating tensor, got {probs.dtype}")


def _check_k(k: float) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not 0.0 < k <= 1.0:
        raise ValueError(f"k must be a number in (0, 1], got {k!r}")


def _selection_count(k: float, n: int) -> int:
    """``ceil(k * n)``, at least 1 and at most ``n`` (0 when ``n`` is 0); ``k`` already validated."""
    return min(n, max(1, math.ceil(k * n - _CEIL_SLACK)))


def mean_probabilities(probs: Tensor) -> Tensor:
    """Psi_avg = (1/m) sum_j Psi_j (Eq. 4), float32 of shape ``(B, C, *spatial)``."""
    _check_probs(probs)
    return probs.mean(dim=0, dtype=torch.float32)


def pseudo_labels(probs: Tensor) -> Tensor:
    """argmax_c Psi_avg,c (Eq. 4 without refinement; the "ALC w/o LR" labels), int64 ``(B, *spatial)``.

    Ties go to the lowest class index.
    """
    return mean_probabilities(probs).argmax(dim=1)


def refinement_weights(probs: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-voxel weights of the passes (Eq. 5), float32 of shape ``(m, B, *spatial)``.

    ``H_j = sum_c A_c * log(A_c / Q_j,c)`` with ``A = clamp(Psi_avg, eps, 1)`` and
    ``Q_j = clamp(Psi_j, eps, 1)`` (the KL divergence of pass j from the mean; clamping keeps the
    logarithms finite for saturated outputs), then ``w_j = softmax_j(-H_j)``. Computed as
    ``sum_c A_c log A_c - sum_c A_c log Q_j,c`` so the only full-size temporary is ``log Q``.
    The weights are positive and sum to 1 over the passes; with one pass they are all 1.
    """
    _check_probs(probs)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    mean = mean_probabilities(probs).clamp_(eps, 1.0)
    neg_entropy = (mean * mean.log()).sum(dim=1)  # (B, *spatial)
    log_q = probs.to(torch.float32, copy=True).clamp_(eps, 1.0).log_()
    cross = log_q.mul_(mean).sum(dim=2)  # (m, B, *spatial)
    divergence = cross.neg_().add_(neg_entropy)
    return torch.softmax(divergence.neg_(), dim=0)


def refine_labels(probs: Tensor, eps: float = 1e-6) -> Tensor:
    """Refined labels Y_ref = argmax_c sum_j w_j Psi_j,c (Eq. 6, weights of Eq. 5), int64 ``(B, *spatial)``.

    The paper's 1/m factor does not change the argmax and is left out. Ties go to the lowest class index.
    """
    weights = refinement_weights(probs, eps)
    weighted = probs.to(torch.float32, copy=True).mul_(weights.unsqueeze(2))
    return weighted.sum(dim=0).argmax(dim=1)


def sample_uncertainty(probs: Tensor) -> Tensor:
    """Per-sample uncertainty (Eq. 7), float32 of shape ``(B,)``.

    ``U_i = mean over voxels of (1/m) sum_j ||Psi_j - Psi_avg||^2``, the squared L2 norm taken over the
    classes, i.e. the across-pass variance summed over classes. Lower means more certain. Computed from
    the differences themselves (not ``E[x^2] - E[x]^2``) so small variances do not cancel away.
    """
    mean = mean_probabilities(probs)
    squared = probs.to(torch.float32, copy=True).sub_(mean).square_()
    per_voxel = squared.sum(dim=(0, 2)).div_(probs.shape[0])  # (B, *spatial)
    return per_voxel.flatten(1).mean(dim=1)


def select_most_certain(uncertainty: Tensor, k: float) -> Tensor:
    """Within-batch selection (Eq. 7-8): mask of the ``ceil(k*B)`` samples with the lowest uncertainty.

    ``k`` must be in (0, 1]; at least one sample is selected when ``B >= 1``. Equal scores are ranked by
    their index (a stable sort), so among tied samples the earlier ones are selected. NaN scores rank
    last. Returns a bool tensor of shape ``(B,)`` on the device of ``uncertainty``; no host sync.
    """
    _check_k(k)
    if uncertainty.ndim != 1:
        raise ValueError(f"uncertainty must have shape (B,), got {tuple(uncertainty.shape)}")
    count = _selection_count(k, uncertainty.numel())
    order = torch.argsort(uncertainty, stable=True)
    mask = torch.zeros(uncertainty.shape, dtype=torch.bool, device=uncertainty.device)
    mask[order[:count]] = True
    return mask


class WindowedSelector:
    """Selection by rank in a window of recent LQ uncertainty scores (METHOD.md, Selection; ours).

    For each call with ``b`` scores (after ``gather``, if given), the ranking set ``R`` is those ``b``
    scores plus the ``max(0, window - b)`` most recent earlier ones, ``N = |R|``. Sample ``i`` is selected
    iff ``#{r in R : r < U_i} < ceil(k * N)`` (at least 1), i.e. ``U_i`` is among the ``ceil(k*N)``
    lowest of ``R`` with ties resolved in its favour: equal scores share one fate, whatever their order.
    Consequences: when ``R`` is just the current batch (the first call, or ``window <= b``) and the
    scores are distinct, this equals :func:`select_most_certain`; the lowest score of ``R`` is always
    selected, so a window of length 1 selects a lone sample for every ``k`` in (0, 1]; ``k = 1`` selects
    every sample. Afterwards the ``b`` scores enter the window, the oldest leave.

    The result depends only on the sequence of scores seen, so it is deterministic, and
    :meth:`state_dict` (plain Python ints and floats) restores it exactly. In DDP pass ``gather``, a
    callable that returns the concatenation of every rank's local scores in rank order (an all_gather):
    every rank then ranks against, and stores, the same scores, so the windows stay identical.
    """

    def __init__(self, window: int = 50):
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        self.window = window
        self._scores: deque[float] = deque(maxlen=window)

    def select(self, uncertainty: Tensor, k: float,
               gather: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """Bool mask of shape ``(B,)`` over the local ``uncertainty`` scores (see the class docstring).

        Raises ``ValueError`` for non-finite scores, which would otherwise stay in the window.
        """
        _check_k(k)
        if uncertainty.ndim != 1:
            raise ValueError(f"uncertainty must have shape (B,), got {tuple(uncertainty.shape)}")
        current = (gather(uncertainty) if gather is not None else uncertainty).detach().reshape(-1)
        values = current.double().tolist()
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"uncertainty scores must be finite, got {values}")
        keep = min(len(self._scores), max(0, self.window - len(values)))
        earlier = list(self._scores)[len(self._scores) - keep:]
        ranking = torch.tensor(earlier + values, dtype=torch.float64, device=uncertainty.device)
        self._scores.extend(values)
        lower = (ranking.unsqueeze(0) < uncertainty.detach().double().unsqueeze(1)).sum(dim=1)
        return lower < _selection_count(k, ranking.numel())

    def state_dict(self) -> dict:
        return {"window": self.window, "scores": list(self._scores)}

    def load_state_dict(self, state: dict) -> None:
        """Restore the window length and the scores saved by :meth:`state_dict`."""
        window = int(state["window"])
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._scores = deque((float(s) for s in state["scores"]), maxlen=window)


def consistency_loss(student_probs: Tensor, teacher_mean_probs: Tensor) -> Tensor:
    """L_c (Eq. 10): mean over all elements of ``(student_probs - Psi_avg)^2``, a float32 scalar.

    The teacher side is detached. With no elements it returns ``0 * sum(student_probs)``, a zero that
    keeps the student in the graph, instead of NaN.
    """
    if student_probs.shape != teacher_mean_probs.shape:
        raise ValueError(f"shapes differ: student {tuple(student_probs.shape)}, "
                         f"teacher {tuple(teacher_mean_probs.shape)}")
    if student_probs.numel() == 0:
        return student_probs.float().sum() * 0.0
    difference = student_probs.float() - teacher_mean_probs.detach().float()
    return difference.square().mean()


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
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay!r}")
    teacher, student = unwrap_model(teacher), unwrap_model(student)
    t_params, s_params = dict(teacher.named_parameters()), dict(student.named_parameters())
    t_buffers, s_buffers = dict(teacher.named_buffers()), dict(student.named_buffers())
    if t_params.keys() != s_params.keys() or t_buffers.keys() != s_buffers.keys():
        raise ValueError("teacher and student have different parameter or buffer names")
    names = list(t_params)
    if names:
        torch._foreach_lerp_([t_params[n] for n in names], [s_params[n] for n in names], 1.0 - decay)
    for name, buffer in t_buffers.items():
        buffer.copy_(s_buffers[name])


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
