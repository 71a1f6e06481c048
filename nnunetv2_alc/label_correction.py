"""The ALC method's equations as plain torch functions: Eq. 4-7 and 10 (docs/method.md).

The EMA teacher and its noisy passes (Eq. 3) live in :mod:`nnunetv2_alc.teacher`, the ramp-up of Eq. 11
beside the other loss terms in :mod:`nnunetv2_alc.objective`.

Conventions:

- ``probs`` are the teacher's softmax outputs ``Psi`` of shape ``(m, B, C, *spatial)``: ``m`` stochastic
  passes, ``B`` samples, ``C`` classes, 2D or 3D spatial dimensions.
- Any floating dtype is accepted (float32, float16, bfloat16); everything is computed in float32 and
  floating results are float32, also under ``torch.autocast`` (no op used here is autocast-eligible).
- Nothing loops over voxels, samples or passes in Python. The functions that need ``log(Psi_j)`` or
  ``Psi_j - Psi_avg`` build one float32 temporary the size of ``probs`` and work on it in place.
- Argmax ties go to the lowest class index (the documented rule of ``torch.max`` along a dimension, which
  :func:`class_argmax` uses), so an exact tie between classes yields the first of them.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from functools import cached_property

import torch
from torch import Tensor

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


def class_argmax(scores: Tensor) -> Tensor:
    """Index of the largest score along the class dimension 1, ties to the lowest index; int64.

    ``torch.max(dim=1).indices`` instead of ``torch.argmax(dim=1)``: both return the first maximal index,
    but on the CPU ``argmax`` along a dimension that is not the last one ran about 30 times slower in
    torch 2.x (11 ms against 0.35 ms for a (10, 2, 64, 64) tensor, two of them per ALC step; see
    benchmarks/results/README.md, "Cost").
    """
    return scores.max(dim=1).indices


def mean_probabilities(probs: Tensor) -> Tensor:
    """Psi_avg = (1/m) sum_j Psi_j (Eq. 4), float32 of shape ``(B, C, *spatial)``."""
    _check_probs(probs)
    return probs.mean(dim=0, dtype=torch.float32)


def pseudo_labels(probs: Tensor) -> Tensor:
    """argmax_c Psi_avg,c (Eq. 4 without refinement; the "ALC w/o LR" labels), int64 ``(B, *spatial)``.

    Ties go to the lowest class index.
    """
    return class_argmax(mean_probabilities(probs))


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
    return weighted_labels(probs, refinement_weights(probs, eps))


def weighted_labels(probs: Tensor, weights: Tensor) -> Tensor:
    """argmax_c sum_j w_j Psi_j,c (Eq. 6) for per-voxel pass weights ``(m, B, *spatial)``; int64 ``(B, *spatial)``."""
    _check_probs(probs)
    if weights.shape != probs.shape[:2] + probs.shape[3:]:
        raise ValueError(f"weights must have shape (m, B, *spatial) = {tuple(probs.shape[:2] + probs.shape[3:])}, "
                         f"got {tuple(weights.shape)}")
    weighted = torch.empty(probs.shape, dtype=torch.float32, device=probs.device)
    torch.mul(probs, weights.unsqueeze(2), out=weighted)  # float32 whatever the dtypes of probs and weights
    return class_argmax(weighted.sum(dim=0))


def sample_uncertainty(probs: Tensor) -> Tensor:
    """Per-sample uncertainty (Eq. 7), float32 of shape ``(B,)``.

    ``U_i = mean over voxels of (1/m) sum_j ||Psi_j - Psi_avg||^2``, the squared L2 norm taken over the
    classes, i.e. the across-pass variance summed over classes. Lower means more certain. Computed from
    the differences themselves (not ``E[x^2] - E[x]^2``) so small variances do not cancel away. Summed
    over the passes first, then over classes and voxels at once, and divided by ``m`` times the number
    of voxels: one reduction over the dimensions (0, 2) together was 5 times slower on the CPU.
    """
    mean = mean_probabilities(probs)
    squared = probs.to(torch.float32, copy=True).sub_(mean).square_()
    per_sample = squared.sum(dim=0).flatten(1).sum(dim=1)  # (B,)
    return per_sample.div_(probs.shape[0] * math.prod(probs.shape[3:]))


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
    """Selection by rank in a window of recent LQ uncertainty scores (docs/method.md, Selection; ours).

    For each call with ``b`` scores, the ranking set ``R`` is those ``b``
    scores plus the ``max(0, window - b)`` most recent earlier ones, ``N = |R|``. Sample ``i`` is selected
    iff ``#{r in R : r < U_i} < ceil(k * N)`` (at least 1), i.e. ``U_i`` is among the ``ceil(k*N)``
    lowest of ``R`` with ties resolved in its favour: equal scores share one fate, whatever their order.
    Consequences: when ``R`` is just the current batch (the first call, or ``window <= b``) and the
    scores are distinct, this equals :func:`select_most_certain`; the lowest score of ``R`` is always
    selected, so a window of length 1 selects a lone sample for every ``k`` in (0, 1]; ``k = 1`` selects
    every sample. Afterwards the ``b`` scores enter the window, the oldest leave.

    The result depends only on the sequence of scores seen, so it is deterministic, and
    :meth:`state_dict` (plain Python ints and floats) restores it exactly. Under DDP the trainer passes
    every rank's scores (gathered in rank order), so every rank ranks against, and stores, the same
    scores and the windows stay identical.
    """

    def __init__(self, window: int = 50):
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        self.window = window
        self._scores: deque[float] = deque(maxlen=window)

    def select(self, uncertainty: Tensor, k: float) -> Tensor:
        """Bool mask of shape ``(B,)`` over the ``uncertainty`` scores (see the class docstring).

        Raises ``ValueError`` for non-finite scores, which would otherwise stay in the window.
        """
        _check_k(k)
        if uncertainty.ndim != 1:
            raise ValueError(f"uncertainty must have shape (B,), got {tuple(uncertainty.shape)}")
        values = uncertainty.detach().double().tolist()
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


class TeacherPasses:
    """The quantities of Eq. 4-7 for one batch of teacher passes, each computed once, when first needed.

    ``probs``: ``Psi`` of shape ``(m, B, C, *spatial)``. ``weights`` are Eq. 5's, ``refined`` Eq. 6's
    labels, ``pseudo`` ``argmax Psi_avg`` (ALC w/o LR), ``uncertainty`` Eq. 7's ``U``.
    """

    def __init__(self, probs: Tensor):
        _check_probs(probs)
        self.probs = probs

    @cached_property
    def mean(self) -> Tensor:
        return mean_probabilities(self.probs)

    @cached_property
    def weights(self) -> Tensor:
        return refinement_weights(self.probs)

    @cached_property
    def refined(self) -> Tensor:
        return weighted_labels(self.probs, self.weights)

    @cached_property
    def pseudo(self) -> Tensor:
        return class_argmax(self.mean)

    @cached_property
    def uncertainty(self) -> Tensor:
        return sample_uncertainty(self.probs)
