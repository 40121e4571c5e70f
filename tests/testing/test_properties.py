"""The reusable property suite: every metric kind passes it, broken metrics fail it."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import ExplicitMetric, Metric, PullbackMetric
from latentgeo.testing import check_metric_identities


def test_pullback_of_a_linear_map_is_a_transpose_a() -> None:
    a = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    metric = PullbackMetric(lambda z: z @ a.T)
    z = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(metric.metric_tensor(z), (a.T @ a).expand(4, 3, 3))
    check_metric_identities(metric, z)


class _Asymmetric(Metric):
    def _metric_tensor(self, z: torch.Tensor) -> torch.Tensor:
        g = torch.eye(2, dtype=z.dtype).expand(*z.shape[:-1], 2, 2).clone()
        g[..., 0, 1] = 0.5
        return g


def test_an_indefinite_metric_fails_with_the_reason() -> None:
    indefinite = ExplicitMetric(torch.diag_embed)  # G = diag(z)
    z = torch.tensor([[1.0, 2.0], [-1.0, 2.0]], dtype=torch.float64)
    with pytest.raises(AssertionError, match="not positive semi-definite at 1 of 2 points"):
        check_metric_identities(indefinite, z)


def test_an_asymmetric_metric_fails_with_the_reason() -> None:
    with pytest.raises(AssertionError, match="not symmetric"):
        check_metric_identities(_Asymmetric(), torch.zeros(3, 2, dtype=torch.float64))


class _WrongNorm(Metric):
    """squared_norm that disagrees with metric_tensor (a broken fast path)."""

    def _metric_tensor(self, z: torch.Tensor) -> torch.Tensor:
        return torch.eye(2, dtype=z.dtype).expand(*z.shape[:-1], 2, 2)

    def _squared_norm(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return 1.01 * (v * v).sum(-1)


def test_a_fast_path_that_disagrees_with_the_tensor_fails() -> None:
    with pytest.raises(AssertionError, match="squared_norm vs vᵀGv"):
        check_metric_identities(_WrongNorm(), torch.zeros(3, 2, dtype=torch.float64))


def test_metric_check_reports_per_point() -> None:
    report = ExplicitMetric(torch.diag_embed).check(torch.tensor([[1.0, 1.0], [0.0, -2.0]]))
    assert report.psd.tolist() == [True, False] and report.finite.all()
    assert float(report.min_eigenvalue[1]) == -2.0
    with pytest.raises(ValueError, match="not a metric"):
        report.raise_if_invalid()
    nan = ExplicitMetric(lambda z: torch.diag_embed(z.log())).check(torch.tensor([[1.0, -1.0]]))
    assert nan.finite.tolist() == [False] and not nan.ok
