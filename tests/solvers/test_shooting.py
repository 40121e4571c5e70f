"""``connecting_geodesic(..., method="shooting")``: converged pairs, one length per curve."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import curve_energy, curve_length
from latentgeo.metrics import as_metric
from latentgeo.solvers import HermiteCurve, Status, connecting_geodesic, log_map, log_map_result
from latentgeo.solvers.result import LogMapResult
from latentgeo.solvers.shooting import MINIMALITY_SLACK, _minimizing
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere


def test_shooting_method_on_the_sphere() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [0.7, 0.3]], dtype=torch.float64)
    res = connecting_geodesic(sphere, z0, z1, method="shooting")
    assert res.method == "shooting" and res.all_converged
    assert isinstance(res.curve, HermiteCurve)
    exact = sphere.distance(z0, z1)
    torch.testing.assert_close(res.length, exact, rtol=1e-6, atol=0)
    torch.testing.assert_close(res.info["log_length"], exact, rtol=1e-6, atol=0)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    pts = res.curve(t)
    torch.testing.assert_close(pts[:, 0], z0)
    torch.testing.assert_close(pts[:, -1], z1, rtol=0, atol=1e-6)
    # constant speed: energy = length²
    torch.testing.assert_close(res.energy, res.length**2, rtol=1e-6, atol=0)


def test_one_length_per_curve() -> None:
    disk = PoincareDisk()
    z0 = torch.tensor([[0.1, 0.2], [-0.4, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[-0.3, 0.4], [0.3, -0.2]], dtype=torch.float64)
    res = connecting_geodesic(disk, z0, z1, method="shooting", num_points=9)
    # the reported length is curve_length's default quadrature of the returned curve
    torch.testing.assert_close(res.length, curve_length(disk, res.curve), rtol=1e-12, atol=0)
    torch.testing.assert_close(res.energy, curve_energy(disk, res.curve), rtol=1e-12, atol=0)
    torch.testing.assert_close(res.length, disk.distance(z0, z1), rtol=1e-6, atol=0)


def _the_long_way_round(dtype: torch.dtype):
    """Pairs on the sphere 1 … 2 apart, and the velocity of the other great-circle arc
    to the same end point (length 2π − d, past the conjugate point at π)."""
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(5)
    z0 = 0.5 * torch.randn(8, 2, generator=gen, dtype=torch.float64)
    direction = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    lam = 2.0 / (1.0 + (z0 * z0).sum(-1, keepdim=True))  # G = λ² I
    dist = torch.linspace(1.0, 2.0, 8, dtype=torch.float64)[:, None]
    unit = direction / direction.norm(dim=-1, keepdim=True) / lam
    z1 = sphere.exp(z0, unit * dist)
    long = -unit * (2 * torch.pi - dist)
    return sphere, z0.to(dtype), z1.to(dtype), long.to(dtype), dist[:, 0]


def test_a_geodesic_past_a_conjugate_point_is_not_minimizing(dtype: torch.dtype) -> None:
    # shooting from the other arc's velocity converges to it: a geodesic to z1 to the
    # tolerance, 2π − d long; the straight segment is shorter, so it is not the log map
    sphere, z0, z1, long, dist = _the_long_way_round(dtype)
    info = log_map_result(sphere, z0, z1, init=long)
    length = info.length.double()
    assert info.upper_bound is not None
    assert bool((info.upper_bound.double() < 2 * torch.pi - dist).all())
    assert bool(((length - (2 * torch.pi - dist)).abs() < 1e-3 * length).all()), length
    # float32: two pairs also miss the integration tolerance (integration_error)
    flagged = [s is Status.NOT_MINIMIZING for s in info.status]
    assert sum(flagged) >= 6 and not bool(info.converged.any()), info.status
    assert bool(torch.isnan(log_map(sphere, z0, z1, init=long)).all())
    res = connecting_geodesic(sphere, z0, z1, method="shooting", init=long)
    assert res.num_converged == 0 and res.status.count(Status.NOT_MINIMIZING) == sum(flagged)
    # from the energy geodesic: the short arc, converged, within its bound
    info = log_map_result(sphere, z0, z1)
    assert bool(info.converged.all()) and info.upper_bound is not None
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(info.length.double(), dist, rtol=10 * tol, atol=0)


def test_the_curves_own_length_is_held_against_the_known_curve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the geodesic ODE misses kinks of the metric (a ReLU decoder), the shot curve's
    length differs from ``‖v‖_{G(z0)}``: an audit saw converged curves 3.5-7.5 % longer
    than the known joining curve. The curve's own length is compared too: a curve made
    5 % longer than its bound is ``not_minimizing``; at its true length it converges."""
    from latentgeo.solvers import shooting

    disk = PoincareDisk()
    z0 = torch.tensor([[0.1, 0.2], [-0.3, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[-0.3, 0.4], [0.2, -0.2]], dtype=torch.float64)
    honest = connecting_geodesic(disk, z0, z1, method="shooting")
    assert honest.status == [Status.CONVERGED] * 2
    measure = shooting.length_and_energy

    def kinked(metric, curve):  # type: ignore[no-untyped-def]
        length, energy = measure(metric, curve)
        return length * torch.tensor([1.05, 1.0], dtype=length.dtype), energy

    monkeypatch.setattr(shooting, "length_and_energy", kinked)
    res = connecting_geodesic(disk, z0, z1, method="shooting")
    assert res.status == [Status.NOT_MINIMIZING, Status.CONVERGED]
    assert res.converged.tolist() == [False, True]
    assert float(res.length[0]) > 1.04 * float(res.info["upper_bound"][0])


def test_the_minimality_allowance_is_in_the_metric_norm() -> None:
    # G = diag(1, 100): ‖G^{1/2}‖₂ = 10, so a length may exceed its bound by
    # 10 · 10 · (atol + rtol‖v‖) = 1e-3 here; NaN lengths or bounds, v = 0 and
    # unconverged pairs are never flagged
    metric = as_metric(LinearMap(torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))))
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    v = torch.tensor([[1.0, 0.0]] * 5 + [[0.0, 0.0]], dtype=torch.float64)
    length = torch.tensor([1.0, 1.0, 1.0, float("nan"), 1.0, 0.0], dtype=torch.float64)
    bound = torch.tensor([1.0 - 0.9e-3, 1.0 - 1.1e-3, float("nan"), 0.5, 0.5, 0.0])
    converged = torch.tensor([True, True, True, True, False, True])
    status = [Status.CONVERGED if c else Status.MAX_ITERATIONS for c in converged.tolist()]
    info = LogMapResult(v, torch.zeros(6), length, converged, status, torch.ones(6))
    assert MINIMALITY_SLACK == 10.0
    out = _minimizing(metric, z0, info, bound, rtol=1e-5, atol=0.0)
    assert out.status == [
        Status.CONVERGED, Status.NOT_MINIMIZING, Status.CONVERGED, Status.CONVERGED,
        Status.MAX_ITERATIONS, Status.CONVERGED,
    ]  # fmt: skip
    assert out.converged.tolist() == [True, False, True, True, False, True]
    assert out.upper_bound is not None and out.upper_bound.dtype == torch.float64


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"num_points": 1}, "num_points must be an int >= 2"),
        ({"rtol": 0.0}, "rtol must be"),
        ({"max_iter": 0}, "max_iter must be"),
        ({"steps": 16}, r"does not take the option\(s\) \[.steps.\]"),
        ({"progress": "yes"}, "progress must be a bool"),
    ],
)
def test_bad_options(options: dict[str, object], match: str) -> None:
    z = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        connecting_geodesic(PoincareDisk(), z, z + 0.1, method="shooting", **options)


def test_progress_shows_the_shooting_and_its_start_only_when_asked(
    capsys: pytest.CaptureFixture,
) -> None:
    disk = PoincareDisk()
    z0 = torch.tensor([[0.1, 0.2], [-0.2, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[-0.3, 0.4], [0.3, -0.1]], dtype=torch.float64)
    quiet = log_map_result(disk, z0, z1)
    assert capsys.readouterr() == ("", "")
    shown = log_map_result(disk, z0, z1, progress=True)
    err = capsys.readouterr().err
    assert "log maps" in err and "running=" in err and "geodesics" in err
    assert torch.equal(shown.velocity, quiet.velocity) and shown.status == quiet.status
    assert torch.equal(log_map(disk, z0, z1, progress=True), log_map(disk, z0, z1))
    with pytest.raises(TypeError, match="progress must be a bool"):
        log_map(disk, z0, z1, progress=1)  # type: ignore[arg-type]
    # a start whose method has no bar of its own (bvp) or takes no options (an object)
    bvp = log_map_result(disk, z0, z1, progress=True, init_options={"method": "bvp"})
    assert bvp.status == quiet.status and "log maps" in capsys.readouterr().err
