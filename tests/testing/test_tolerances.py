"""Precision-aware tolerances: ``ops · 1000 · eps``, and assert_close that uses them."""

from __future__ import annotations

import pytest
import torch

from latentgeo.testing.tolerances import assert_close, tolerance


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tolerance_is_ops_times_1000_eps(dtype: torch.dtype) -> None:
    eps = torch.finfo(dtype).eps
    assert tolerance(dtype) == (1000 * eps, 1000 * eps)
    assert tolerance(dtype, ops=4.0) == (4000 * eps, 4000 * eps)


def test_assert_close_passes_within_and_fails_beyond_the_tolerance() -> None:
    exact = torch.ones(3, dtype=torch.float64)
    rtol, _ = tolerance(torch.float32)
    assert_close(torch.ones(3) + 0.5 * rtol, exact)  # compared in float32
    with pytest.raises(AssertionError):
        assert_close(torch.ones(3) + 4 * rtol, exact)
    assert_close(torch.ones(3) + 4 * rtol, exact, ops=8.0)
