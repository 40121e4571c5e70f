"""The geodesic ODE (pull-back, Christoffel and slide forms) and the batched integrators."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Normal
from torch.func import jvp

from latentgeo.exceptions import NumericsWarning
from latentgeo.metrics import ExplicitMetric, as_metric, christoffel_symbols
from latentgeo.solvers import (
    connecting_geodesic,
    exp_map_result,
    geodesic_acceleration,
    geodesic_residual,
)
from latentgeo.solvers.ode import geodesic_rhs
from latentgeo.testing import PoincareDisk, StereographicSphere, tolerance


def mlp(d: int, m: int, hidden: int = 16) -> nn.Module:
    net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, m))
    return net.requires_grad_(False)


class Gaussian(nn.Module):
    """``N(μ(z), σ(z)²)`` with small MLPs for both."""

    def __init__(self, d: int, m: int) -> None:
        super().__init__()
        self.mu, self.log_sigma = mlp(d, m), mlp(d, m)

    def forward(self, z: torch.Tensor) -> Normal:
        return Normal(self.mu(z), self.log_sigma(z).exp())


def slide_form(metric_tensor, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Arvanitidis et al.'s ODE, literally: −½ M⁻¹ [2 (I ⊗ γ̇ᵀ) ∂vec M/∂γ γ̇ − ∂vec Mᵀ/∂γ (γ̇ ⊗ γ̇)]."""
    d = z.shape[0]

    def vec(x: torch.Tensor) -> torch.Tensor:
        return metric_tensor(x[None])[0].T.reshape(-1)  # column-major vec

    dvec = torch.autograd.functional.jacobian(vec, z)  # (d², d)
    eye = torch.eye(d, dtype=z.dtype)
    inner = 2.0 * torch.kron(eye, v[None]) @ dvec @ v - dvec.T @ torch.kron(v, v)
    return -0.5 * torch.linalg.solve(metric_tensor(z[None])[0], inner)


@pytest.mark.parametrize("kind", ["mlp", "gaussian", "ensemble", "sum"])
def test_pullback_form_equals_christoffel_form(kind: str, dtype: torch.dtype) -> None:
    d = 3
    if kind == "mlp":
        metric = as_metric(mlp(d, 8).to(dtype))
    elif kind == "gaussian":
        metric = as_metric(Gaussian(d, 5).to(dtype))
    elif kind == "ensemble":
        metric = as_metric([mlp(d, 6).to(dtype) for _ in range(3)])
    else:
        metric = as_metric(mlp(d, 6).to(dtype)) + 2.0 * as_metric(Gaussian(d, 4).to(dtype))
    z, v = torch.randn(6, d, dtype=dtype), torch.randn(6, d, dtype=dtype)
    fast = geodesic_acceleration(metric, z, v)
    slow = geodesic_acceleration(metric, z, v, form="christoffel")
    gamma = christoffel_symbols(metric, z)
    rtol, atol = tolerance(dtype, ops=200)
    torch.testing.assert_close(fast, slow, rtol=rtol, atol=atol)
    torch.testing.assert_close(
        fast, -torch.einsum("nkij,ni,nj->nk", gamma, v, v), rtol=rtol, atol=atol
    )


def test_matches_slide_form() -> None:
    dtype = torch.float64
    decoder = mlp(2, 7).to(dtype)
    metric = as_metric(decoder)
    z, v = torch.randn(4, 2, dtype=dtype), torch.randn(4, 2, dtype=dtype)
    acc = geodesic_acceleration(decoder, z, v)
    for n in range(4):
        expected = slide_form(metric.metric_tensor, z[n], v[n])
        torch.testing.assert_close(acc[n], expected, rtol=1e-10, atol=1e-12)


def test_explicit_metric_and_batch_shapes() -> None:
    z = 0.3 * torch.randn(2, 5, 2, dtype=torch.float64)
    v = torch.randn(2, 5, 2, dtype=torch.float64)
    acc = geodesic_acceleration(PoincareDisk(), z, v)
    assert acc.shape == (2, 5, 2)
    one = geodesic_acceleration(PoincareDisk(), z[1, 3], v[1, 3])
    torch.testing.assert_close(acc[1, 3], one)
    with pytest.raises(TypeError, match="pullback"):
        geodesic_acceleration(PoincareDisk(), z, v, form="pullback")
    with pytest.raises(ValueError, match="form"):
        geodesic_acceleration(PoincareDisk(), z, v, form="nope")  # type: ignore[arg-type]


def test_singular_metric_gives_nan_acceleration() -> None:
    flat_line = lambda z: z[:, :1]  # noqa: E731 - rank-1 pull-back on R²
    acc = geodesic_acceleration(flat_line, torch.zeros(3, 2), torch.ones(3, 2))
    assert torch.isnan(acc).all()


def test_geodesic_rhs_on_sphere_is_a_great_circle() -> None:
    # the equator |z| = 1 is a great circle: its acceleration is the circle's own
    sphere = as_metric(StereographicSphere())
    theta = torch.linspace(0, 2 * math.pi, 7, dtype=torch.float64)
    z = torch.stack([theta.cos(), theta.sin()], -1)
    v = torch.stack([-theta.sin(), theta.cos()], -1)  # speed 1 in latent, 1 on the sphere
    y = geodesic_rhs(sphere)(torch.cat([z, v], -1))
    torch.testing.assert_close(y[:, 2:], -z, rtol=1e-12, atol=1e-12)


def test_residual_of_exact_geodesic_is_zero() -> None:
    from latentgeo.solvers import HermiteCurve

    # straight lines are geodesics of a constant metric; HermiteCurve reproduces them exactly
    g = ExplicitMetric(
        lambda z: torch.diag(torch.tensor([1.0, 4.0], dtype=z.dtype)).expand(*z.shape, 2)
    )
    knots = torch.linspace(0, 1, 4, dtype=torch.float64)
    a, b = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])
    pts = (a + knots[:, None] * (b - a)).to(torch.float64)[None]
    curve = HermiteCurve(knots, pts, (b - a).to(torch.float64).expand_as(pts))
    res = geodesic_residual(g, curve, torch.linspace(0, 1, 9, dtype=torch.float64))
    assert res.shape == (1, 9, 2) and res.abs().max() < 1e-12


class Mixed(nn.Module):
    """Exercises the Taylor-mode rules: activations, products, sums, reshapes, generic nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 6), nn.ELU())
        self.b = nn.Sequential(nn.Linear(2, 6), nn.SiLU(), nn.Linear(6, 6), nn.Sigmoid())
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 6))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a, b = self.a(z), self.b(z)
        c = a * b + torch.sin(a) - b / 3.0 + a.exp() * self.scale
        c = c / (1.0 + (b * b).sum(-1, keepdim=True)) + a**2 - c.mean(-1, keepdim=True)
        d = torch.cat([c, torch.atan(b), self.scale.expand_as(b)], dim=-1)  # atan: generic
        return d.reshape(z.shape[0], 3, 6).tanh()


@pytest.mark.parametrize("decoder", [Mixed, StereographicSphere])
def test_taylor_mode_equals_nested_forward_mode(decoder: type[nn.Module]) -> None:
    from latentgeo.metrics import PullbackMetric
    from latentgeo.metrics.forward import taylor_propagator

    module = decoder().double().requires_grad_(False)
    prop = taylor_propagator(module)
    assert prop is not None
    metric = as_metric(module)
    z, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)[:, None].expand(2, 5, 2)
    _, cols, second = prop(z, eye, v)  # the traced path itself, no fallback

    def f(x: torch.Tensor) -> torch.Tensor:
        return module(x).reshape(5, -1)

    nested = jvp(lambda x: jvp(f, (x,), (v,))[1], (z,), (v,))[1]
    torch.testing.assert_close(second, nested, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cols, metric.jacobian(z).permute(2, 0, 1), rtol=1e-12, atol=1e-12)
    fast = geodesic_acceleration(metric, z, v)
    slow = geodesic_acceleration(metric, z, v, form="christoffel")
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)
    generic = PullbackMetric(lambda x: module(x))  # a function: jvp of jvp, never traced
    assert generic._get_propagator() is None
    torch.testing.assert_close(geodesic_acceleration(generic, z, v), slow, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["inplace", "tanh_", "conv", "conv-inplace"])
def test_acceleration_of_real_decoders_matches_the_christoffel_form(kind: str) -> None:
    """In-place and convolutional decoders: the engine's second order against the Christoffel
    form of G = JᵀJ with J by reverse mode (no forward-mode engine), to 1e-10."""
    from ..metrics.reference import InplaceDecoder, TanhInplace, conv_decoder, jacrev_metric

    torch.manual_seed(8)
    make = {
        "inplace": InplaceDecoder,
        "tanh_": TanhInplace,
        "conv": conv_decoder,
        "conv-inplace": lambda: conv_decoder(inplace=True),
    }[kind]
    decoder = make().double().requires_grad_(False)
    d = 3 if kind.startswith("conv") else 2
    z, v = torch.randn(5, d, dtype=torch.float64), torch.randn(5, d, dtype=torch.float64)
    fast = geodesic_acceleration(decoder, z, v)
    reference = geodesic_acceleration(jacrev_metric(decoder, d), z, v, form="christoffel")
    scale = reference.abs().max()
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-10 * scale)


def test_hand_written_decoder_odes_use_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hand-written decoder (functions, not modules) takes the second-order rules: the
    per-node generic path is never used, and the result is nested forward mode's."""
    from latentgeo.metrics.forward.interpreter import Interpreter

    class Hand(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(2, 8), nn.Linear(8, 6)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.b(nn.functional.softplus(torch.tanh(self.a(z)))))

    decoder = Hand().double().requires_grad_(False)
    z, v = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    metric = as_metric(decoder)
    with monkeypatch.context() as patch:
        patch.setattr(Interpreter, "_generic", None)  # any use of the generic path fails
        fast = geodesic_acceleration(metric, z, v)
    slow = geodesic_acceleration(metric, z, v, form="christoffel")
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)


def test_the_geodesic_ode_of_a_piecewise_linear_decoder_is_announced_once() -> None:
    # inside each region of a ReLU net the metric is constant: the ODE goes straight and
    # called it converged, while the speed along that line changes by 2x across the kinks
    torch.manual_seed(0)
    relu = nn.Sequential(
        nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784)
    )
    relu = relu.double().eval()
    z0, v = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    with pytest.warns(NumericsWarning, match=r"has kinks \(ReLU at '1', ReLU at '3'\)"):
        straight = exp_map_result(relu, z0, v).point
    torch.testing.assert_close(straight, z0 + v)  # what the warning is about
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per decoder: not again, by any ODE solver
        exp_map_result(relu, z0, v)
        connecting_geodesic(relu, z0, z0 + 0.1 * v, method="bvp")
    fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU()).double().eval()
    with pytest.warns(NumericsWarning, match="connecting_geodesic\\(method='spline'\\)"):
        connecting_geodesic(fresh, z0, z0 + 0.1 * v, method="bvp")
