"""The frozen-metric preconditioner against autograd Hessians."""

from __future__ import annotations

import torch
from torch.func import functional_call, hessian

from latentgeo.curves import CubicSpline, DiscreteCurve, NeuralGeodesic
from latentgeo.metrics import ExplicitMetric, as_metric
from latentgeo.solvers.energy import preconditioner
from latentgeo.solvers.energy.preconditioner import frozen_metric_preconditioner
from latentgeo.solvers.energy.problem import CurvePoints, Objective
from latentgeo.testing import LinearMap, StereographicSphere


def _pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return z0, z1


def _blocks(h: torch.Tensor) -> torch.Tensor:
    """The per-pair diagonal blocks ``(B, p, p)`` of a Hessian ``(B, p, B, p)``."""
    return torch.stack([h[i, :, i, :] for i in range(h.shape[0])])


def _check_inverse(inverse: torch.Tensor | None, hess: torch.Tensor) -> None:
    assert inverse is not None and inverse.shape == hess.shape
    eye = torch.eye(hess.shape[-1], dtype=hess.dtype).expand_as(hess)
    torch.testing.assert_close(inverse @ hess, eye, rtol=0, atol=1e-8)


def test_exact_inverse_hessian_for_a_constant_metric() -> None:
    """A linear decoder's metric is constant: a polyline's energy is quadratic in its
    vertices and ``2 K`` is its Hessian."""
    z0, z1 = _pairs(3)
    weight = torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    curve = DiscreteCurve(z0, z1, num_points=6)
    objective = Objective(as_metric(LinearMap(weight)), curve, "metric", None, 4, None)
    x = objective.packing.flatten(curve) + 0.1
    idx = torch.arange(3)
    hess = _blocks(hessian(lambda v: objective(v, idx).sum())(x))
    _check_inverse(frozen_metric_preconditioner(objective, x, idx), hess)


def test_the_metric_is_frozen_at_the_current_curve() -> None:
    """On the sphere, ``2 K`` is the Hessian of ``Σ_q w_q γ̇_qᵀ G(γ_q) γ̇_q`` with ``G`` held at
    the current spline (two Gauss–Legendre nodes per span, the preconditioner's rule)."""
    sphere = as_metric(StereographicSphere())
    z0, z1 = _pairs(2, seed=3)
    curve = CubicSpline(z0, z1, num_knots=3)
    with torch.no_grad():
        curve.inner.add_(0.2)
    objective = Objective(sphere, curve, "metric", None, 2, None)  # nodes=2: the same times
    x = objective.packing.flatten(curve)
    g = sphere.metric_tensor(curve(objective.times)).detach()  # (B, T, 2, 2), frozen

    def frozen_energy(v: torch.Tensor) -> torch.Tensor:
        state = {"curve.inner": v.reshape(2, -1, 2)}
        _, vel = functional_call(CurvePoints(curve), state, (objective.times, True))
        return (objective.weights * torch.einsum("btd,btde,bte->bt", vel, g, vel)).sum()

    hess = _blocks(hessian(frozen_energy)(x))
    inverse = frozen_metric_preconditioner(objective, x, torch.arange(2), per_span=False)
    _check_inverse(inverse, hess)


def test_per_span_holds_the_metric_at_each_span_midpoint() -> None:
    """With ``per_span`` the metric is evaluated once per span, at the midpoint of its two nodes,
    and held for both: ``2 K`` is then the Hessian of the energy with that metric frozen
    (and it differs from the every-node rule on a curved metric)."""
    sphere = as_metric(StereographicSphere())
    z0, z1 = _pairs(2, seed=3)
    curve = CubicSpline(z0, z1, num_knots=3)
    with torch.no_grad():
        curve.inner.add_(0.2)
    objective = Objective(sphere, curve, "metric", None, 2, None)
    x = objective.packing.flatten(curve)
    pos = curve(objective.times).detach()  # (B, 2 S, 2), span by span
    mid = pos.reshape(2, -1, 2, 2).mean(2)
    g = sphere.metric_tensor(mid).repeat_interleave(2, dim=1).detach()

    def frozen_energy(v: torch.Tensor) -> torch.Tensor:
        state = {"curve.inner": v.reshape(2, -1, 2)}
        _, vel = functional_call(CurvePoints(curve), state, (objective.times, True))
        return (objective.weights * torch.einsum("btd,btde,bte->bt", vel, g, vel)).sum()

    hess = _blocks(hessian(frozen_energy)(x))
    inverse = frozen_metric_preconditioner(objective, x, torch.arange(2), per_span=True)
    _check_inverse(inverse, hess)
    every_node = frozen_metric_preconditioner(objective, x, torch.arange(2), per_span=False)
    assert every_node is not None and inverse is not None
    assert not torch.allclose(every_node, inverse, rtol=1e-3, atol=0)


def test_no_preconditioner_for_nonlinear_curves_and_nan_where_not_definite() -> None:
    z0, z1 = _pairs(2)
    neural = NeuralGeodesic(z0, z1, hidden=(4,))
    sphere = as_metric(StereographicSphere())
    objective = Objective(sphere, neural, "metric", 16, 4, None)
    assert (
        frozen_metric_preconditioner(objective, objective.packing.flatten(neural), torch.arange(2))
        is None
    )
    # G = sign(z_0) I: negative definite on the left half-plane
    metric = ExplicitMetric(lambda z: z[..., :1, None].sign() * torch.eye(2, dtype=z.dtype))
    z0 = torch.tensor([[1.0, 0.0], [-2.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[2.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=2)
    objective = Objective(metric, curve, "metric", None, 4, None)
    inverse = frozen_metric_preconditioner(
        objective, objective.packing.flatten(curve), torch.arange(2)
    )
    assert inverse is not None
    assert bool(torch.isfinite(inverse[0]).all()) and bool(torch.isnan(inverse[1]).all())


def test_a_nearly_vanishing_metric_gives_a_bounded_preconditioner() -> None:
    """Where the metric nearly vanishes (``G = 1e-14 I`` at two of six vertices) the inverse
    is bounded by the ridge, ``1 / (RIDGE · mean diagonal)``: with the former 1e-12 its
    largest entries were about 100 times that bound, and such steps carried a
    float64 curve to |z| ≈ 4e6."""
    tiny = ExplicitMetric(
        lambda z: (
            torch.where((z[..., :1] > 0.2) & (z[..., :1] < 0.6), 1e-14, 1.0)[..., None]
            * torch.eye(2, dtype=z.dtype)
        )
    )
    end = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    curve = DiscreteCurve(torch.zeros_like(end), end, num_points=7)
    objective = Objective(tiny, curve, "metric", None, 4, None)
    x = objective.packing.flatten(curve)
    inverse = frozen_metric_preconditioner(objective, x, torch.arange(1))
    assert inverse is not None and bool(torch.isfinite(inverse).all())
    diag = torch.linalg.inv(inverse)[0].diagonal()
    largest = float(torch.linalg.eigvalsh(inverse[0]).max())
    assert preconditioner.RIDGE == 1e-10
    assert largest <= 1.01 / (1e-10 * float(diag.mean())), largest
