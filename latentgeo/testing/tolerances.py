"""Precision-aware tolerances for comparing computed and exact results."""

from __future__ import annotations

import torch

__all__ = ["assert_close", "tolerance"]


def tolerance(dtype: torch.dtype, *, ops: float = 1.0) -> tuple[float, float]:
    """``(rtol, atol)`` for a result that went through about ``ops`` rounding-heavy steps.

    The relative tolerance is ``ops · 1000 · eps`` of the dtype (about 2e-13 in
    float64 and 1e-4 in float32 for ``ops = 1``); ``atol = rtol``.

    Example:
        >>> tolerance(torch.float32)
        (0.00011920928955078125, 0.00011920928955078125)
    """
    eps = torch.finfo(dtype).eps
    rtol = ops * 1000.0 * eps
    return rtol, rtol


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, ops: float = 1.0) -> None:
    """``torch.testing.assert_close`` with :func:`tolerance` of ``actual``'s dtype."""
    rtol, atol = tolerance(actual.dtype, ops=ops)
    torch.testing.assert_close(actual, expected.to(actual.dtype), rtol=rtol, atol=atol)
