"""MeanMetric: an ensemble's expected metric is the mean of its members'."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.metrics import (
    MeanMetric,
    as_metric,
    expected_metric,
)
from latentgeo.metrics.ensemble import ensemble_members
from latentgeo.metrics.forward.layers import TrainingModeError
from latentgeo.models import EnsembleDecoder
from latentgeo.testing import tolerance

from .reference import GaussianMLP, mlp


def test_ensemble_metric_is_mean_of_members(dtype: torch.dtype) -> None:
    members = [GaussianMLP(2, 4).to(dtype) for _ in range(3)]
    z = torch.randn(5, 2, dtype=dtype)
    expected = torch.stack([expected_metric(m, z) for m in members]).mean(0)
    rtol, atol = tolerance(dtype, ops=10)
    for ensemble in (EnsembleDecoder(members), members, tuple(members), nn.ModuleList(members)):
        metric = as_metric(ensemble)
        assert isinstance(metric, MeanMetric) and len(metric) == 3
        torch.testing.assert_close(metric.metric_tensor(z), expected, rtol=rtol, atol=atol)
        v = torch.randn(5, 2, dtype=dtype)
        quad = torch.einsum("ni,nij,nj->n", v, expected, v)
        torch.testing.assert_close(metric.squared_norm(z, v), quad, rtol=rtol, atol=atol)


def test_ensemble_of_identical_members_equals_one_member() -> None:
    member = mlp(2, 5).double()
    z, v = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    single = as_metric(member)
    ensemble = as_metric(EnsembleDecoder([member, member, member]))
    torch.testing.assert_close(ensemble.metric_tensor(z), single.metric_tensor(z))
    torch.testing.assert_close(ensemble.squared_norm(z, v), single.squared_norm(z, v))


def test_ensemble_members_knows_containers_and_registered_ensembles() -> None:
    a, b = torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    for ensemble in ([a, b], (a, b), torch.nn.ModuleList([a, b]), EnsembleDecoder([a, b])):
        members = ensemble_members(ensemble)
        assert members is not None and len(members) == 2
        assert members[0] is a and members[1] is b
    assert ensemble_members(a) is None
    assert ensemble_members(lambda z: z) is None


def test_a_failing_member_is_named() -> None:
    good = nn.Sequential(nn.Linear(2, 3)).eval()
    dropping = nn.Sequential(nn.Linear(2, 3), nn.Dropout())  # training mode
    with pytest.raises(ValueError, match=r"^ensemble member 1 of 2: decoder layer '1' \(Dropout"):
        as_metric([good, dropping])
    with pytest.raises(ValueError, match=r"^ensemble member 0 of 2: .*latent dimension 2"):
        as_metric(EnsembleDecoder([good, good]), latent_dim=5)


def test_a_failing_member_keeps_its_error_type() -> None:
    class Dropping(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 3)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.dropout(self.linear(z), training=True)

    with pytest.raises(TrainingModeError, match=r"^ensemble member 0 of 2: the decoder calls"):
        as_metric([Dropping(), Dropping()])
