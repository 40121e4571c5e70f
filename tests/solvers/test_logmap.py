"""Logarithm maps to a stated tolerance against closed forms; honest statuses; bad options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.solvers import (
    LogMapResult,
    ShootingError,
    Status,
    exp_map_result,
    log_map,
    log_map_result,
)
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere, near_conjugate_pairs


def mlp(d: int, m: int, hidden: int = 16) -> nn.Module:
    net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, m))
    return net.requires_grad_(False)


def sphere_log(sphere: StereographicSphere, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The sphere's log map in latent coordinates: the great circle's initial direction
    ``u`` on the sphere, pulled back by ``G⁻¹ Jᵀ u`` (``G = λ² I``)."""
    x0, x1 = sphere(z0), sphere(z1)
    w = x1 - (x0 * x1).sum(-1, keepdim=True) * x0
    u = w / w.norm(dim=-1, keepdim=True) * sphere.distance(z0, z1)[:, None]
    jac = torch.func.vmap(torch.func.jacfwd(sphere))(z0)  # (B, d + 1, d)
    lam2 = 4.0 / (1.0 + (z0 * z0).sum(-1)) ** 2
    return (jac.mT @ u[..., None])[..., 0] / lam2[:, None]


def geometry(name: str, dtype: torch.dtype, n: int = 6):
    """A metric with a closed-form log map, end points and the exact answer (float64)."""
    gen = torch.Generator().manual_seed(5)
    if name == "sphere":
        geo = StereographicSphere()
        z0 = 0.7 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        z1 = 0.7 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        exact = sphere_log(geo, z0, z1)
    elif name == "disk":
        geo = PoincareDisk()
        z0 = 0.7 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.35
        z1 = 0.7 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.35
        exact = PoincareDisk.log(z0, z1)
    else:
        geo = LinearMap(torch.randn(4, 2, generator=gen, dtype=torch.float64))
        z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
        z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
        exact = z1 - z0
    return geo.to(dtype), z0.to(dtype), z1.to(dtype), exact


def test_the_closed_form_helper_is_right() -> None:
    sphere, z0, z1, exact = geometry("sphere", torch.float64)
    torch.testing.assert_close(sphere.exp(z0, exact), z1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sphere", "disk", "linear"])
def test_within_the_stated_tolerance(name: str, dtype: torch.dtype) -> None:
    metric, z0, z1, exact = geometry(name, dtype)
    rtols = [1e-2, 1e-4] if dtype == torch.float32 else [1e-3, 1e-6, 1e-9]
    worst = []
    for rtol in rtols:
        info = log_map_result(metric, z0, z1, rtol=rtol, atol=0.0)
        assert isinstance(info, LogMapResult)
        assert info.status == [Status.CONVERGED] * z0.shape[0], (rtol, info.status)
        err = (info.velocity.double() - exact).norm(dim=-1)
        assert bool((err <= rtol * exact.norm(dim=-1)).all()), (rtol, err / exact.norm(dim=-1))
        assert bool(torch.isfinite(info.error).all())
        assert info.jacobian_measured is not None and bool(info.jacobian_measured.all())
        worst.append(float((err / exact.norm(dim=-1)).max()))
    if name != "linear" and dtype == torch.float64:  # float32: rounding sets a floor
        assert worst[-1] < worst[0]  # a tighter tolerance gives a more accurate answer


def test_defaults_meet_one_in_a_million(dtype: torch.dtype) -> None:
    sphere, z0, z1, exact = geometry("sphere", dtype)
    v = log_map(sphere, z0, z1)
    rtol = 1e-6 if dtype == torch.float64 else 1e-4
    assert v.dtype == dtype
    assert bool(((v.double() - exact).norm(dim=-1) <= rtol * exact.norm(dim=-1)).all())
    info = log_map_result(sphere, z0, z1)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(
        info.length.double(), sphere.distance(z0.double(), z1.double()), rtol=10 * tol, atol=0
    )


def near_antipodal(dtype: torch.dtype, n: int = 16, d: int = 2):
    """Pairs on the sphere ``S^d`` at great-circle distance 2.3 … 3.0 (π: the conjugate
    point), where a Jacobian model without curvature underestimates ``‖J⁻¹‖`` tenfold."""
    sphere = StereographicSphere()
    z0, z1 = near_conjugate_pairs(d, n)
    return sphere.to(dtype), z0.to(dtype), z1.to(dtype), sphere_log(sphere, z0, z1)


@pytest.mark.parametrize("d", [2, 5])
def test_converged_is_true_near_conjugate_points(dtype: torch.dtype, d: int) -> None:
    # the transport model of the Jacobian alone claimed errors 30x below the truth here;
    # at d = 5 two random probes find it wrong and the whole Jacobian is measured
    sphere, z0, z1, exact = near_antipodal(dtype, d=d)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    info = log_map_result(sphere, z0, z1)
    err = (info.velocity.double() - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert bool((err[info.converged] <= tol).all()), err[info.converged].max()
    assert int(info.converged.sum()) >= (z0.shape[0] if dtype == torch.float64 else 8)
    # the error estimate is an estimate of the error, not a wish: within 3x above the truth
    est = info.error / exact.norm(dim=-1).to(info.error.dtype)
    assert bool((err[info.converged] <= 3.0 * est.double()[info.converged] + 1e-12).all())
    # the Jacobian at the first shot: d - 1 loose exponential maps (at d = 5: 2 probes, then 4);
    # measured again (d - 1 more) only where the iterate went far from there (a few pairs next
    # to the conjugate point, whose energy start is 2 % off)
    extra = (info.exp_maps - info.iterations).tolist()
    first = [1] if d == 2 else [2, 6]
    assert set(extra) <= {*first, first[-1] + d - 1} and first[-1] in extra
    assert sum(e > first[-1] for e in extra) <= 3, extra


@pytest.mark.parametrize("off", [0.01, 0.03])
def test_a_long_first_step_proves_nothing(off: float) -> None:
    # starts 1-3 % off near the conjugate point: the contraction of the one long first
    # step sees the Jacobian's change along it only, not across it (where it turns ~κ times
    # faster); the old stop reported pairs converged 2.6x (1 %) and 1.6x (3 %) off rtol
    sphere, z0, z1, exact = near_antipodal(torch.float64)
    size = exact.norm(dim=-1)
    rtol, worst = 1e-3, []
    for seed in (100, 101):
        gen = torch.Generator().manual_seed(seed)
        u = torch.randn(exact.shape, generator=gen, dtype=torch.float64)
        init = exact + off * size[:, None] * u / u.norm(dim=-1, keepdim=True)
        info = log_map_result(sphere, z0, z1, init=init, rtol=rtol, atol=0.0)
        err = (info.velocity - exact).norm(dim=-1) / (rtol * size)
        assert int(info.converged.sum()) >= 15, info.status  # honest, not merely cautious
        worst.append(float(err[info.converged].max()))
    assert max(worst) <= 1.0, worst


@pytest.mark.parametrize(("seed", "off", "pair"), [(102, 0.01, 12), (103, 0.01, 12), (100, 0.3, 9)])
def test_loose_float32_stops_only_on_a_measured_model(seed: int, off: float, pair: int) -> None:
    # float32, rtol 1e-2, next to the conjugate point: these starts were reported converged
    # 1.8x, 2.1x and 1.1x off the tolerance. In the first two the secant updates of rejected
    # long trials left a model 5x too well conditioned (‖B⁻¹‖ 4.8 for 28), so it never looked
    # stale; in the third the contraction of the step made by the stale model was used for
    # the first step of the model measured again
    sphere, z0, z1, exact = near_antipodal(torch.float32)
    size = exact.norm(dim=-1)
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(exact.shape, generator=gen, dtype=torch.float64)
    init = (exact + off * size[:, None] * u / u.norm(dim=-1, keepdim=True)).to(torch.float32)
    one = slice(pair, pair + 1)
    info = log_map_result(sphere, z0[one], z1[one], init=init[one], rtol=1e-2, atol=0.0)
    err = (info.velocity.double() - exact[one]).norm(dim=-1) / (1e-2 * size[one])
    assert info.status == [Status.CONVERGED]  # honest, not merely cautious
    assert float(err[0]) <= 1.0


class Band(nn.Module):
    """The sphere of :class:`StereographicSphere`, defined (finite) only within ``width``
    of the great circle normal to ``normal``: NaN beyond, as a decoder outside its domain."""

    def __init__(self, normal: torch.Tensor, width: float) -> None:
        super().__init__()
        self.sphere = StereographicSphere()
        self.register_buffer("normal", normal / normal.norm())
        self.width = width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.sphere(z)
        off = (x * self.normal).sum(-1, keepdim=True)
        return x + 0.0 * (self.width**2 - off**2).sqrt()


def along_the_band(dtype: torch.dtype, width: float, n: int = 16):
    """Pairs 2.3 … 3.0 apart on the band's great circle (near conjugate points), a warm
    start 3e-4 off (relative) and the exact log map: the geodesics and the Newton
    iterates stay in the band, the first shot's difference across them leaves it."""
    normal = torch.tensor([0.3, 0.1, 1.0], dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    plane = torch.linalg.qr(torch.cat([(normal / normal.norm())[:, None], eye], 1))[0][:, 1:3]
    phi = torch.linspace(0.0, 2.0 * torch.pi, n + 1, dtype=torch.float64)[:-1] + 0.3
    turn = torch.linspace(2.3, 3.0, n, dtype=torch.float64) * (1 - 2 * (torch.arange(n) % 2))
    sphere = StereographicSphere()
    z0 = sphere.project(
        torch.cos(phi)[:, None] * plane[:, 0] + torch.sin(phi)[:, None] * plane[:, 1]
    )
    z1 = sphere.project(
        torch.cos(phi + turn)[:, None] * plane[:, 0] + torch.sin(phi + turn)[:, None] * plane[:, 1]
    )
    exact = sphere_log(sphere, z0, z1)
    gen = torch.Generator().manual_seed(3)
    init = exact + 3e-4 * exact.norm(dim=-1, keepdim=True) * torch.randn(
        exact.shape, generator=gen, dtype=torch.float64
    )
    return Band(normal, width).to(dtype), z0.to(dtype), z1.to(dtype), init.to(dtype), exact


def test_a_jacobian_never_measured_proves_nothing(dtype: torch.dtype) -> None:
    # the first shot's forward difference leaves the band: the pair kept the model without
    # curvature and was reported converged 15-65x (float64) and up to 2.7x (float32) off
    band, z0, z1, init, exact = along_the_band(dtype, width=2e-3)
    info = log_map_result(band, z0, z1, init=init)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    err = (info.velocity.double() - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert bool((err[info.converged] <= tol).all()), err[info.converged].max() / tol
    assert info.jacobian_measured is not None
    assert bool(info.jacobian_measured[info.converged].all())
    # measured again at the second shot, over a shorter difference step
    assert bool((info.exp_maps - info.iterations >= 2).all())
    if dtype == torch.float64:  # there the second try stays in the band: all converge
        assert bool(info.converged.all()), info.status
    else:  # float32's shortest step still leaves it for some: said, not hidden
        unmeasured = ~info.jacobian_measured
        assert bool(unmeasured.any()) and not bool(info.converged[unmeasured].any())
        assert {info.status[i] for i in unmeasured.nonzero()[:, 0].tolist()} == {Status.NON_FINITE}
        assert int(info.converged.sum()) >= 8


def test_one_shot_proves_nothing() -> None:
    disk, z0, z1, _ = geometry("disk", torch.float64)
    info = log_map_result(disk, z0, z1, max_iter=1)
    assert info.status == [Status.MAX_ITERATIONS] * z0.shape[0]
    assert not bool(info.converged.any()) and info.iterations.tolist() == [1] * z0.shape[0]
    assert torch.isfinite(info.velocity).all()  # the best iterate is kept
    assert torch.isnan(log_map(disk, z0, z1, max_iter=1)).all()
    with pytest.raises(ShootingError, match="max_iter"):
        log_map(disk, z0, z1, max_iter=1, throw=True)


def test_an_unreachable_tolerance_is_not_converged() -> None:
    sphere, z0, z1, _ = geometry("sphere", torch.float32)
    info = log_map_result(sphere, z0, z1, rtol=1e-9, atol=0.0, max_iter=6)
    assert not bool(info.converged.any())
    assert set(info.status) <= {Status.INTEGRATION_ERROR, Status.MAX_ITERATIONS}
    assert Status.INTEGRATION_ERROR in info.status  # the Newton part is fine, float32 is not


def test_log_of_exp_on_a_decoder_both_starts() -> None:
    decoder = mlp(2, 5).double()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    v = 0.5 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    end = exp_map_result(decoder, z, v, rtol=1e-12, atol=0.0).point
    for init in ("energy", "straight"):
        info = log_map_result(decoder, z, end, init=init)
        assert bool(info.converged.all()), (init, info.status)
        err = (info.velocity - v).norm(dim=-1)
        assert bool((err <= 1e-6 * v.norm(dim=-1) + 1e-9).all()), init
        if init == "energy":  # a close start: a few exponential maps
            assert int(info.iterations.max()) <= 4


def test_from_the_energy_start_two_exponential_maps_suffice() -> None:
    # the first shot is loose, the second at the tolerance that meets the integration's
    # share at once: no third shot only to tighten the integrator
    torch.manual_seed(0)
    decoder = mlp(2, 5).double()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    v = 0.5 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    end = exp_map_result(decoder, z, v, rtol=1e-12, atol=0.0).point
    info = log_map_result(decoder, z, end)
    assert bool(info.converged.all()) and info.iterations.tolist() == [2] * 6
    assert info.jacobian_measured is not None and bool(info.jacobian_measured.all())
    assert bool(((info.velocity - v).norm(dim=-1) <= 1e-6 * v.norm(dim=-1) + 1e-9).all())


def test_failed_pairs_are_reported_not_hidden() -> None:
    # a rank-deficient decoder: G is singular everywhere for the second point's line
    def decoder(z: torch.Tensor) -> torch.Tensor:
        return torch.stack([z[:, 0], z[:, 1] * (z[:, 0] > 0).to(z.dtype)], -1)

    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    bad = log_map_result(decoder, z, z + 0.1, init="straight")
    assert bad.status == ["converged", "nonfinite"] and bad.converged.tolist() == [True, False]
    out = log_map(decoder, z, z + 0.1, init="straight")
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()
    with pytest.raises(ShootingError, match=r"1 of 2 pairs.*pair 1: nonfinite"):
        log_map(decoder, z, z + 0.1, init="straight", throw=True)


def test_equal_end_points_give_zero() -> None:
    disk = PoincareDisk()
    z = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    info = log_map_result(disk, z, z.clone(), init="straight")
    assert info.status == [Status.CONVERGED] and float(info.velocity.abs().max()) == 0.0


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"rtol": 0.0}, ValueError, r"rtol must be a finite number > 0"),
        ({"rtol": -1e-3}, ValueError, r"rtol must be a finite number > 0"),
        ({"atol": float("inf")}, ValueError, r"atol must be a finite number >= 0"),
        ({"max_iter": 0}, ValueError, r"max_iter must be an int >= 1"),
        ({"max_steps": 0}, ValueError, r"max_steps must be an int >= 1"),
        ({"init": "nope"}, ValueError, "init"),
        ({"init_options": [1]}, TypeError, "init_options must be a dict"),
    ],
)
def test_bad_options(options: dict[str, object], error: type[Exception], match: str) -> None:
    z = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(error, match=match):
        log_map(PoincareDisk(), z, z + 0.1, **options)  # type: ignore[arg-type]


def test_bad_input_errors() -> None:
    disk = PoincareDisk()
    z = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="same shape"):
        log_map(disk, z, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        log_map(disk, torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="init"):
        log_map(disk, z, z, init=torch.zeros(2, 2, dtype=torch.float64))


def test_results_stay_on_the_device(device: torch.device) -> None:
    decoder = mlp(2, 4).double().to(device)
    z = torch.randn(3, 2, dtype=torch.float64, device=device)
    v = 0.3 * torch.randn(3, 2, dtype=torch.float64, device=device)
    end = exp_map_result(decoder, z, v, rtol=1e-10).point
    back = log_map_result(decoder, z, end, init="straight")
    assert back.velocity.device == z.device and bool(back.converged.all())
    assert back.error.device == z.device and back.iterations.device == z.device
