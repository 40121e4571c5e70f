"""The input checks every metric's public methods share: points of its latent dimension that
its modules can take, and tangent vectors at them, refused before any decoder runs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from latentgeo.metrics import Metric, as_metric
from latentgeo.metrics.point_checks import PointChecks
from latentgeo.testing import PoincareDisk


class _Float64Only(PointChecks):
    latent_dim = 2

    def check_like(self, z: Tensor) -> None:
        if z.dtype != torch.float64:
            raise TypeError(f"z has dtype {z.dtype}, the modules float64")


def test_points_are_checked_and_named() -> None:
    checks = _Float64Only()
    z = torch.zeros(3, 2, dtype=torch.float64)
    assert checks.validated_points(z, "z0") is z
    with pytest.raises(ValueError, match="z0 contains NaN"):
        checks.validated_points(torch.tensor([[0.0, float("nan")]], dtype=torch.float64), "z0")
    with pytest.raises(ValueError, match="z1"):
        checks.validated_points(torch.zeros(3, 5, dtype=torch.float64), "z1")  # d = 2
    with pytest.raises(TypeError, match="float64"):
        checks.validated_points(torch.zeros(3, 2), "z0")  # the modules' own check


def test_tangents_are_checked_at_the_points() -> None:
    checks = _Float64Only()
    z = torch.zeros(3, 2, dtype=torch.float64)
    out = checks._validated(z, u=torch.ones(3, 2, dtype=torch.float64))
    assert len(out) == 2 and out[0] is z
    with pytest.raises(TypeError, match="u"):
        checks._validated(z, u=torch.ones(3, 2))  # float32 tangents at float64 points
    with pytest.raises(ValueError, match="v"):
        checks._validated(z, v=torch.full((3, 2), float("inf"), dtype=torch.float64))


def test_every_metric_has_them() -> None:
    """The default ``check_like`` accepts anything; a decoder's metric refuses another dtype."""
    assert isinstance(PoincareDisk(), PointChecks) and issubclass(Metric, PointChecks)
    PoincareDisk().check_like(torch.zeros(1, 2))
    metric = as_metric(torch.nn.Linear(2, 3).double())
    with pytest.raises(TypeError, match="dtype"):
        metric.validated_points(torch.zeros(1, 2))


def test_a_modules_dtype_error_names_the_argument() -> None:
    """An audit: a float32 ``z1`` next to a float64 ``z0`` and decoder was refused as
    "z has dtype torch.float32"; the message names ``z1`` now, and its remedy too."""
    from latentgeo.solvers import connecting_geodesic

    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 5))
    z0 = torch.zeros(1, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^z1 has dtype torch.float32 but .*z1\.to\(torch"):
        connecting_geodesic(net.double(), z0, torch.ones(1, 2))
    with pytest.raises(TypeError, match=r"^z has dtype torch.float32"):  # the default name
        as_metric(net.double()).validated_points(torch.ones(1, 2))
