"""check_tensor: finite, symmetric, positive semi-definite per point, with reasons in words."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics.report import check_tensor


def _tensors() -> torch.Tensor:
    good = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    indefinite = torch.tensor([[1.0, 0.0], [0.0, -0.5]], dtype=torch.float64)
    asymmetric = torch.tensor([[1.0, 0.3], [0.0, 1.0]], dtype=torch.float64)
    infinite = torch.tensor([[1.0, 0.0], [0.0, float("inf")]], dtype=torch.float64)
    singular = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # psd, rank 1
    return torch.stack([good, indefinite, asymmetric, infinite, singular])


def test_each_point_is_judged_on_its_own() -> None:
    check = check_tensor(_tensors())
    assert check.finite.tolist() == [True, True, True, False, True]
    assert check.symmetric.tolist() == [True, True, False, False, True]
    assert check.psd.tolist() == [True, False, True, False, True]
    assert check.valid.tolist() == [True, False, False, False, True] and not check.ok
    torch.testing.assert_close(check.min_eigenvalue[[0, 1, 4]],
                               torch.tensor([1.5 - 0.5**0.5, -0.5, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-12)  # fmt: skip
    assert torch.isnan(check.min_eigenvalue[3])
    assert check.asymmetry[2] == pytest.approx(0.3)


def test_reasons_name_the_failure_and_the_first_point() -> None:
    check = check_tensor(_tensors().reshape(5, 1, 2, 2))  # leading shapes flatten
    reasons = check.reasons
    assert reasons[0] == "G has NaN or Inf entries at 1 of 5 points (first: point 3)"
    assert reasons[1].startswith("G is not symmetric (relative tolerance ")
    psd = "G is not positive semi-definite at 2 of 5 points"  # the infinite one too
    assert reasons[2] == f"{psd} (first: point 1; smallest eigenvalue -0.5)"
    with pytest.raises(ValueError, match=r"^not a metric: G has NaN"):
        check.raise_if_invalid()
    check_tensor(_tensors()[[0, 4]]).raise_if_invalid()  # valid: no exception


def test_the_default_tolerance_scales_with_dimension_and_precision() -> None:
    g = torch.eye(3, dtype=torch.float32) + torch.tensor([[0, 1e-5, 0], [0, 0, 0], [0, 0, 0]])
    assert check_tensor(g).rtol == pytest.approx(3000 * torch.finfo(torch.float32).eps)
    assert bool(check_tensor(g).symmetric[0])  # 1e-5 < 3.6e-4
    assert not bool(check_tensor(g.double()).symmetric[0])  # 1e-5 > 6.7e-13
    assert bool(check_tensor(g.double(), rtol=1e-4).symmetric[0])
