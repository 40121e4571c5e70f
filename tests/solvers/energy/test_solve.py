"""Energy-minimising geodesics: closed-form accuracy, batching, gradients, statuses, errors."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from latentgeo.curves import CubicSpline
from latentgeo.exceptions import NumericsWarning
from latentgeo.metrics import ExplicitMetric, as_metric
from latentgeo.solvers import GeodesicError, Status, connecting_geodesic, minimize_energy
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere

SPHERE = StereographicSphere()


def _pairs(n: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return z0.to(dtype), z1.to(dtype)


def test_sphere_32_pairs_default_settings(dtype: torch.dtype) -> None:
    z0, z1 = _pairs(32, dtype)
    result = connecting_geodesic(SPHERE, z0, z1)
    exact = SPHERE.distance(z0.double(), z1.double())
    error = ((result.length.double() - exact) / exact).abs()
    limit = 1e-4 if dtype == torch.float64 else 1e-3
    assert float(error.max()) < limit, error
    assert result.all_converged and result.status == ["converged"] * 32
    assert result.length.dtype == dtype and result.energy.dtype == dtype
    # at a geodesic with constant speed, energy = length²
    torch.testing.assert_close(result.energy, result.length**2, rtol=limit, atol=0)


def test_sphere_with_a_far_latent_excursion() -> None:
    # The great circle passes near the north pole: |z| reaches 23.3 on it.
    z0 = torch.tensor([[3.0, 0.2]], dtype=torch.float64)
    z1 = torch.tensor([[-3.0, 0.5]], dtype=torch.float64)
    result = connecting_geodesic(SPHERE, z0, z1)
    exact = SPHERE.distance(z0, z1)
    assert float((result.length / exact - 1).abs()) < 1e-4
    t = torch.linspace(0, 1, 4001, dtype=torch.float64)
    assert float(result.curve(t).norm(dim=-1).max()) > 20.0


def test_poincare_disk() -> None:
    gen = torch.Generator().manual_seed(1)
    radius = 0.9 * torch.rand(16, 2, 1, generator=gen, dtype=torch.float64)
    angle = 6.3 * torch.rand(16, 2, 1, generator=gen, dtype=torch.float64)
    pts = radius * torch.cat([angle.cos(), angle.sin()], -1)
    z0, z1 = pts[:, 0], pts[:, 1]
    disk = PoincareDisk()
    result = connecting_geodesic(disk, z0, z1)
    exact = disk.distance(z0, z1)
    assert float(((result.length - exact) / exact).abs().max()) < 1e-4
    assert result.info["estimator"] == "metric"  # not a pull-back


def test_linear_decoder_gives_the_straight_line() -> None:
    dec = LinearMap(torch.randn(5, 3, dtype=torch.float64))
    z0, z1 = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    result = connecting_geodesic(dec, z0, z1)
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    line = z0[:, None] + t[:, None] * (z1 - z0)[:, None]
    torch.testing.assert_close(result.curve(t).detach(), line, rtol=0, atol=1e-9)
    torch.testing.assert_close(result.length.detach(), dec.distance(z0, z1))


def test_coincident_end_points() -> None:
    z0, z1 = _pairs(3, torch.float64)
    z1[1] = z0[1]
    result = connecting_geodesic(SPHERE, z0, z1)
    assert float(result.length[1]) == 0.0 and result.status[1] == "converged"
    assert result.all_converged
    assert bool(torch.isfinite(result.curve(torch.linspace(0, 1, 5, dtype=torch.float64))).all())


def test_a_zero_gradient_pair_converges_at_once() -> None:
    """A curve in a flat zone of the decoder (a dead-ReLU-like step: the energy is positive
    but its gradient is exactly zero) is a minimum: converged, without a step."""
    metric = as_metric(lambda z: torch.cat([(z[:, :1] > 0.5).to(z.dtype), 0 * z], -1))
    z0 = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.3]], dtype=torch.float64)
    for max_iter in (1, 10):
        curve = CubicSpline(z0, z1)
        result = minimize_energy(metric, curve, max_iter=max_iter, refine=False)
        assert result.status == ["converged"] and result.iterations.tolist() == [0]


def test_batch_gives_the_same_lengths_as_each_pair_alone() -> None:
    z0, z1 = _pairs(6, torch.float64, seed=3)
    together = connecting_geodesic(SPHERE, z0, z1).length
    alone = torch.cat([connecting_geodesic(SPHERE, z0[i : i + 1], z1[i : i + 1]).length
                       for i in range(6)])  # fmt: skip
    torch.testing.assert_close(together, alone, rtol=1e-6, atol=0)


def test_distance_gradient_matches_finite_differences_and_the_geodesic() -> None:
    z0 = torch.tensor([[0.3, -0.2]], dtype=torch.float64, requires_grad=True)
    z1 = torch.tensor([[-0.9, 1.1]], dtype=torch.float64, requires_grad=True)
    # the metric estimator settles to refine_tol = 1e-9 within 64 knots; the chord
    # estimator does not (max_iter: it used to say converged at 64 knots, its end
    # velocity and so this gradient 3e-4 off)
    tight = {"tol": 1e-12, "refine_tol": 1e-9, "estimator": "metric"}
    result = connecting_geodesic(SPHERE, z0, z1, **tight)
    assert result.all_converged
    g0, g1 = torch.autograd.grad(result.length.sum(), (z0, z1))
    # against central finite differences of solved lengths
    h = 1e-3
    for point, grad, which in ((z0, g0, 0), (z1, g1, 1)):
        for k in range(2):
            step = torch.zeros(1, 2, dtype=torch.float64)
            step[0, k] = h
            ends = [z0.detach(), z1.detach()]
            ends[which] = point.detach() + step
            up = connecting_geodesic(SPHERE, *ends, **tight).length
            ends[which] = point.detach() - step
            down = connecting_geodesic(SPHERE, *ends, **tight).length
            fd = float((up - down) / (2 * h))
            assert abs(float(grad[0, k]) - fd) < 1e-5 * max(1.0, abs(fd))
    # against the closed form ∂L/∂z1 = G(z1) γ̇(1) / |γ̇(1)|_G, ∂L/∂z0 = −G(z0) γ̇(0) / |γ̇(0)|_G
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    vel = result.curve.velocity(t).detach()[0]
    g = SPHERE.metric_tensor(torch.cat([z0, z1]).detach())
    expect = torch.einsum("nij,nj->ni", g, vel)
    expect = expect / torch.einsum("ni,ni->n", vel, expect).sqrt()[:, None]
    # (the curve's end tangent is that of a spline with ≤ 64 knots: ~1e-5 accurate,
    # while the length itself is ~1e-12 accurate)
    torch.testing.assert_close(g1[0], expect[1], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(g0[0], -expect[0], rtol=1e-4, atol=1e-6)
    # and against the exact gradient of the great-circle distance
    e0, e1 = torch.autograd.grad(SPHERE.distance(z0, z1).sum(), (z0, z1))
    torch.testing.assert_close(g0, e0, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(g1, e1, rtol=1e-4, atol=1e-7)
    # and the opposite of StochMan's sign: moving z1 away from z0 lengthens the curve
    direction = (z1 - z0).detach()
    assert float((g1 * direction).sum()) > 0 > float((g0 * direction).sum())


def test_result_is_constant_speed() -> None:
    z0, z1 = _pairs(4, torch.float64, seed=5)
    result = connecting_geodesic(SPHERE, z0, z1)
    t = torch.linspace(0, 1, 41, dtype=torch.float64)
    speed = as_metric(SPHERE).norm(result.curve(t), result.curve.velocity(t)).detach()
    torch.testing.assert_close(speed, result.length.detach()[:, None].expand_as(speed),
                               rtol=5e-3, atol=0)  # fmt: skip


@pytest.mark.parametrize(
    ("method", "options", "limit"),
    [
        ("discrete", {"num_points": 64}, 2e-3),
        ("neural", {"generator": torch.Generator().manual_seed(0)}, 5e-3),
        ("spline", {"optimizer": "adam", "max_iter": 300}, 5e-3),
        ("spline", {"estimator": "metric", "refine": False, "num_knots": 10}, 1e-4),
    ],
)
def test_other_methods_and_options(method: str, options: dict, limit: float) -> None:
    z0, z1 = _pairs(4, torch.float64, seed=2)
    result = connecting_geodesic(SPHERE, z0, z1, method=method, **options)
    exact = SPHERE.distance(z0, z1)
    assert float(((result.length - exact) / exact).abs().max()) < limit
    assert result.method == method


def test_ensemble_decoder_and_sampled_estimator() -> None:
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 4)).double()
               for _ in range(3)]  # fmt: skip
    z0, z1 = _pairs(3, torch.float64)
    det = connecting_geodesic(members, z0, z1)
    assert det.all_converged
    line = CubicSpline(z0, z1)
    from latentgeo.curves import curve_length

    assert bool((det.length <= curve_length(members, line) * (1 + 1e-9)).all())
    gen = torch.Generator().manual_seed(0)
    sampled = connecting_geodesic(members, z0, z1, estimator="sampled", optimizer="adam",
                                  max_iter=20, generator=gen, refine=False)  # fmt: skip
    assert bool(torch.isfinite(sampled.length).all())


def test_statuses_and_throw() -> None:
    z0, z1 = _pairs(3, torch.float64)
    result = connecting_geodesic(SPHERE, z0, z1, max_iter=1)
    assert result.status == ["max_iter"] * 3 and not bool(result.converged.any())
    with pytest.raises(GeodesicError, match="pair 0: max_iter"):
        connecting_geodesic(SPHERE, z0, z1, max_iter=1, throw=True)
    nan_metric = ExplicitMetric(
        lambda z: torch.where(z[..., :1, None] > 5.0, torch.nan, 1.0) * torch.eye(2, dtype=z.dtype)
    )
    far = torch.tensor([[6.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    result = connecting_geodesic(nan_metric, far, far + 1.0)
    # a NaN squared norm at finite points of the curve: the metric's fault, not the solver's
    assert result.status == [Status.INVALID_METRIC, Status.CONVERGED]


def test_progress_bar_and_options_do_not_print_by_default(capsys: pytest.CaptureFixture) -> None:
    z0, z1 = _pairs(2, torch.float64)
    connecting_geodesic(SPHERE, z0, z1)
    assert capsys.readouterr() == ("", "")
    connecting_geodesic(SPHERE, z0, z1, progress=True)
    assert "geodesics" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["spline", "discrete", "neural"])
def test_devices_and_dtypes(dtype: torch.dtype, device: torch.device, method: str) -> None:
    """Every energy method on the device and dtype of the points (the neural curves'
    stationarity test too: it fits and measures a spline there)."""
    z0, z1 = _pairs(2, dtype)
    z0, z1 = z0.to(device), z1.to(device)
    result = connecting_geodesic(SPHERE, z0, z1, method=method)
    assert result.converged.all()
    assert result.length.device.type == device.type and result.length.dtype == dtype
    assert result.curve(torch.linspace(0, 1, 3, dtype=dtype, device=device)).device == z0.device


@pytest.mark.parametrize(
    ("z0", "z1", "options", "error", "match"),
    [
        (torch.full((2, 2), torch.nan), torch.zeros(2, 2), {}, ValueError, "z0"),
        (torch.zeros(2, 2), torch.full((2, 2), torch.inf), {}, ValueError, "z1"),
        (torch.zeros(2, 2), torch.zeros(3, 2), {}, ValueError, "z0 and z1"),
        (torch.zeros(2, 2), torch.zeros(2, 3), {}, ValueError, "z0 and z1"),
        (torch.zeros(2), torch.zeros(2), {}, ValueError, "z0"),
        (torch.zeros(2, 2), torch.ones(2, 2), {"estimator": "x"}, ValueError, "estimator"),
        (torch.zeros(2, 2), torch.ones(2, 2), {"optimizer": "sgd"}, ValueError, "optimizer"),
        (torch.zeros(2, 2), torch.ones(2, 2), {"estimator": "sampled"}, ValueError, "adam"),
        (torch.zeros(2, 2), torch.ones(2, 2), {"tol": -1.0}, ValueError, "tol"),
        (torch.zeros(2, 2), torch.ones(2, 2), {"method": "x"}, ValueError, "method"),
    ],
)
def test_bad_input(z0, z1, options, error, match) -> None:
    with pytest.raises(error, match=match):
        connecting_geodesic(SPHERE, z0, z1, **options)


def test_minimize_energy_updates_the_curve_in_place() -> None:
    z0, z1 = _pairs(2, torch.float64)
    curve = CubicSpline(z0, z1, num_knots=4)
    result = minimize_energy(as_metric(SPHERE), curve, refine=False, reparametrize=False)
    assert result.curve is curve
    torch.testing.assert_close(result.length, SPHERE.distance(z0, z1), rtol=1e-4, atol=0)


def test_a_refine_tol_below_the_dtype_resolution_is_announced() -> None:
    # a new user's refine_tol=1e-7 in float32 took 165 s for 6 pairs, half of them max_iter
    z0, z1 = torch.zeros(2, 2), torch.ones(2, 2)
    with pytest.warns(NumericsWarning, match=r"refine_tol=1e-07 .* below what torch\.float32"):
        connecting_geodesic(StereographicSphere(), z0, z1, refine_tol=1e-7, max_knots=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resolvable in float64, and 0 means "refine fully"
        connecting_geodesic(StereographicSphere(), z0.double(), z1.double(), refine_tol=1e-7)
        connecting_geodesic(StereographicSphere(), z0, z1, refine_tol=0.0, max_knots=16)
