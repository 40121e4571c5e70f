"""Squared norms that no metric gives: the test behind ``Status.INVALID_METRIC``.

A metric is positive semi-definite, so ``γ̇ᵀ G(γ) γ̇ ≥ 0`` everywhere. A solver
that meets a negative squared norm (beyond rounding) or a non-finite one at a
finite point of its curve has no length to report: that pair's status is
``invalid_metric`` and its length NaN, never ``sqrt(max(0, ·))`` passed off as
one. Points that are themselves not finite (a diverged integration) are
skipped: those are the solver's failure, reported by its own status.

"Beyond rounding" is ``sq < −NEGATIVE_RTOL · max |sq|`` over the same curve,
with ``NEGATIVE_RTOL = 1000 · eps`` of the dtype (``2.2e-13`` in float64,
``1.2e-4`` in float32): ``vᵀ G v`` computed for a semi-definite ``G`` along a
null direction can come out slightly negative, an indefinite metric much more.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from latentgeo.curves.length import invalid_squared_norm_rows, negative_rtol, speeds_squared
from latentgeo.metrics import Metric
from latentgeo.solvers.status import Status, code

__all__ = ["INVALID", "invalid_along", "invalid_squared_norms", "mark_invalid", "negative_rtol"]

INVALID = code(Status.INVALID_METRIC)


def invalid_squared_norms(sq: Tensor, valid: Tensor | None = None) -> Tensor:
    """Which rows of squared norms ``sq`` ``(B, ...)`` hold a value no metric gives.

    A row is invalid if some entry (where ``valid``, a bool tensor of ``sq``'s
    shape, holds) is not finite or is below ``−negative_rtol · max |sq|`` of
    the row's finite entries.

    Returns:
        A ``(B,)`` bool tensor.

    Example:
        >>> invalid_squared_norms(torch.tensor([[1.0, 0.0], [1.0, -0.5], [float("nan"), 1.0]]))
        tensor([False,  True,  True])
    """
    return invalid_squared_norm_rows(sq, valid)


def invalid_along(metric: Metric, pos: Tensor, vel: Tensor) -> Tensor:
    """Which of B curves, sampled at points and velocities ``(B, T, d)``, meet a squared
    norm no metric gives (:func:`invalid_squared_norms`; non-finite states skipped).

    One batched metric evaluation of the ``B · T`` states, without gradients.

    Returns:
        A ``(B,)`` bool tensor.
    """
    with torch.no_grad():
        finite = torch.isfinite(pos).all(-1) & torch.isfinite(vel).all(-1)
        pos = torch.where(finite[..., None], pos, 0.0)
        vel = torch.where(finite[..., None], vel, 0.0)
        return invalid_squared_norms(speeds_squared(metric, pos, vel), finite)


def mark_invalid(status: Sequence[Status], invalid: Tensor) -> list[Status]:
    """``status`` with ``invalid_metric`` combined in where ``invalid`` ``(B,)`` holds."""
    bad = invalid.tolist()
    return [
        Status.combine(s, Status.INVALID_METRIC) if b else s
        for s, b in zip(status, bad, strict=True)
    ]
