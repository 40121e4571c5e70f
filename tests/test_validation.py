"""The shared input checks (``latentgeo._validation``)."""

from __future__ import annotations

import pytest
import torch

from latentgeo._validation import (
    check_alike,
    check_finite,
    check_points,
    check_same_shape,
    check_tangent,
)


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


def test_check_alike_raises_by_what_differs_with_the_messages_formatted() -> None:
    x = torch.zeros(2)
    check_alike(x, torch.ones(3), "{x.dtype}", "{x.device}")  # shapes are not its concern
    with pytest.raises(TypeError, match=r"^w is torch\.float32, z torch\.float64$"):
        check_alike(x, x.double(), "{n} is {x.dtype}, z {like.dtype}", "unused", n="w")
    meta = torch.zeros(2, device="meta")
    with pytest.raises(ValueError, match=r"^w is on cpu, z on meta$"):
        check_alike(x, meta, "unused", "{n} is on {x.device}, z on {like.device}", n="w")


def test_tangent_and_same_shape_checks_name_the_arguments() -> None:
    z = torch.zeros(3, 2)
    with pytest.raises(TypeError, match=r"^u has dtype torch\.float64 but the points have dtype"):
        check_tangent(z, z.double(), "u")
    with pytest.raises(TypeError, match=r"^z0 and z1 must have the same dtype, got torch\.float32"):
        check_same_shape(z, z.double(), "z0", "z1")
    with pytest.raises(
        ValueError, match=r"^z0 and z1 must be on the same device, got cpu and meta"
    ):
        check_same_shape(z, torch.zeros(3, 2, device="meta"), "z0", "z1")
