"""The shared input checks (``latentgeo._validation``)."""

from __future__ import annotations

import pytest
import torch

from latentgeo._validation import check_finite, check_points


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_names_the_argument(bad: float) -> None:
    x = torch.tensor([[0.0, bad]])
    with pytest.raises(ValueError, match=r"^codes contains NaN or Inf values$"):
        check_finite(x, "codes")
    with pytest.raises(ValueError, match=r"^z0 contains NaN or Inf values$"):
        check_points(x, "z0", dim=2)


def test_check_finite_returns_the_tensor_itself() -> None:
    x = torch.zeros(3, 2)
    assert check_finite(x, "x") is x and check_points(x, "x", dim=2) is x
