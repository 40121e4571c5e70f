"""Volume element, principal directions and condition number against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.metrics import (
    PullbackMetric,
    as_metric,
    condition_number,
    log_volume_element,
    principal_directions,
    volume_element,
)
from latentgeo.testing import LinearMap, Paraboloid, StereographicSphere, tolerance


def test_sphere_volume_element(dtype: torch.dtype) -> None:
    z = torch.randn(10, 2, dtype=dtype)
    expected = 4.0 / (1.0 + (z * z).sum(-1)) ** 2  # sqrt(det(c² I)) = c² in 2-d
    rtol, atol = tolerance(dtype, ops=10)
    got = volume_element(StereographicSphere(), z)
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)
    torch.testing.assert_close(
        log_volume_element(StereographicSphere(), z), expected.log(), rtol=rtol, atol=atol
    )


def test_paraboloid_volume_and_directions() -> None:
    z = torch.randn(8, 3, dtype=torch.float64)
    sq = (z * z).sum(-1)
    # G = I + 4 z zᵀ: eigenvalue 1 + 4|z|² along z, 1 elsewhere
    torch.testing.assert_close(volume_element(Paraboloid(), z), (1 + 4 * sq).sqrt())
    vals, vecs = principal_directions(Paraboloid(), z)
    torch.testing.assert_close(vals[:, 0], 1 + 4 * sq)
    torch.testing.assert_close(vals[:, 1:], torch.ones(8, 2, dtype=torch.float64))
    unit = z / z.norm(dim=-1, keepdim=True)
    torch.testing.assert_close((vecs[:, :, 0] * unit).sum(-1).abs(), torch.ones(8, dtype=z.dtype))
    torch.testing.assert_close(condition_number(Paraboloid(), z), 1 + 4 * sq)


def test_singular_metric_is_handled() -> None:
    a = torch.tensor([[1.0, 1.0], [2.0, 2.0]], dtype=torch.float64)  # rank 1
    z = torch.zeros(3, 2, dtype=torch.float64)
    metric = as_metric(LinearMap(a))
    assert (volume_element(metric, z) < 1e-6).all()
    log_vol = log_volume_element(metric, z)
    assert torch.isfinite(log_vol).all() and (log_vol < -100).all()
    assert (condition_number(metric, z) > 1e12).all()


def test_linear_map_eigenvalues_are_singular_values_squared() -> None:
    a = torch.randn(5, 3, dtype=torch.float64)
    z = torch.randn(2, 3, dtype=torch.float64)
    vals, _ = principal_directions(LinearMap(a), z)
    svals = torch.linalg.svdvals(a)
    torch.testing.assert_close(vals, (svals**2).expand(2, 3))


@pytest.mark.parametrize("exponent", [30.0, -30.0, 37.0, -37.0])
def test_volume_element_is_finite_in_float32_at_d50_when_representable(exponent: float) -> None:
    # G = c² I at d = 50: sqrt(det G) = c^50 = 10^exponent; the product of the 50
    # eigenvalues (10^(2·exponent)) is far outside float32, the volume is not.
    d = 50
    c = 10.0 ** (exponent / d)
    metric = PullbackMetric(lambda z: c * z)
    z = torch.zeros(4, d, dtype=torch.float32)
    vol = volume_element(metric, z)
    assert vol.dtype == torch.float32 and torch.isfinite(vol).all() and (vol > 0).all()
    torch.testing.assert_close(vol.log10(), torch.full_like(vol, exponent), rtol=0, atol=2e-5)
    log_vol = log_volume_element(metric, z)
    torch.testing.assert_close(
        log_vol, torch.full_like(log_vol, exponent * math.log(10.0)), rtol=1e-6, atol=0
    )


def test_volume_element_is_zero_where_singular() -> None:
    metric = PullbackMetric(lambda z: z[..., :1].expand(*z.shape[:-1], 3))
    z = torch.randn(5, 2, dtype=torch.float64)
    assert (volume_element(metric, z) == 0).all()


def test_condition_number_of_a_float32_metric_is_not_rounded_twice() -> None:
    # an ill-conditioned G (cond 1e6) in float32: the float32 eigensolver alone would
    # be off by about a percent here; the float64 spectrum of the same
    # float32 matrix is exact to float32 rounding of the result
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    a = (torch.diag(torch.tensor([1e3, 3.0, 1.0], dtype=torch.float64)) @ q.mT).float()
    metric = LinearMap(a)
    z = torch.zeros(2, 3)
    g = metric.metric_tensor(z)
    reference = torch.linalg.cond(g.double())
    got = condition_number(metric, z)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), reference, rtol=1e-6, atol=0.0)
