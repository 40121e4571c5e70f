r"""Geodesics by energy minimisation, all B pairs in one optimisation.

:func:`minimize_energy` shortens a batch of curves (any
:class:`~latentgeo.curves.Curve`) by minimising each curve's energy
``E[γ] = ∫ γ̇ᵀ G(γ) γ̇ dt``; minimisers of the energy are geodesics at constant
speed. The B curves' parameters are independent blocks and every pair's
energy depends on its own block only, so the default optimiser is a
*per-pair* L-BFGS, batched: one tensor of parameters ``(B, p)``, one energy
evaluation per step for all active pairs, but every pair has its own
curvature history, its own Armijo line search and its own stopping test. A
pair that has converged is frozen and no longer evaluated. Solving B pairs
together therefore gives the same curves as solving each alone. (A
``torch.optim.LBFGS`` on the summed energy would couple the pairs through one
shared line search and history.)

For splines and polylines the L-BFGS is preconditioned, per pair, by the
energy's Hessian with the metric frozen, ``2 Σ_q w_q (∂γ̇_q/∂P)ᵀ G(γ_q)
∂γ̇_q/∂P`` (banded, solved by a batched Cholesky): exact for constant
metrics, and it absorbs the metric's change of scale along the curve, which
is what makes far latent excursions (a geodesic through the pole of a
stereographic sphere) ill-conditioned. Measured on the stereographic sphere
(8 random pairs, float64): per-pair Adam (lr 0.05 × |z1 − z0|) needs 53–500
steps and leaves a 2e-2 relative error on the hardest pair; the
preconditioned L-BFGS converges in 5–70 iterations to 2e-6.

The energy minimised is the chord energy ``(N − 1) Σ ‖φ(γᵢ₊₁) − φ(γᵢ)‖²``
for pull-back metrics (decoders and ensembles: no Jacobian, one forward and
one backward pass), and the Gauss–Legendre metric energy otherwise; the
reported lengths are always Gauss–Legendre quadratures of the metric.

A pair has converged when its last accepted step lowered its energy by less
than ``tol`` relative, *and* the quasi-Newton model predicts less than that
from the next step: a scale-aware test (energies scale like length², so
rescaling the metric or the latent space does not change it).

Splines are then refined (knot insertion, which keeps the curve): new knots
go where the curve moves fastest in latent space (the spans of largest
latent arc length are halved, one knot per span), and optimisation resumes.
A pair stops when refining changes its energy by less than ``refine_tol``
relative, and is then split off the batch, so that only the pairs that need
more knots get them; this is how geodesics that need long latent excursions
get their knots without slowing the others down.

Two things make the levels cheap. The first level is solved only to
``1e-3`` (no pair can settle on it, and its energy can only come out higher,
which makes the comparison of levels more conservative). And the L-BFGS
memory is carried across a refinement: knot insertion is a linear map
``x' = A x`` of the parameters, so the stored steps map exactly and the
gradient changes by the least-norm ``(A⁺)ᵀ y``; what the optimiser learnt
about the slow, large-scale modes of a curve (exactly those the metric's
change of scale makes hard) is not thrown away. On the stereographic-sphere
benchmark the two cut the iterations of the slowest pair from 45 to 33.

Memory is bounded by evaluating the energy in chunks of pairs
(``CHUNK_POINTS`` evaluation points at a time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from latentgeo.curves import CubicSpline, Curve, CurveStack, DiscreteCurve, NeuralGeodesic
from latentgeo.curves.length import (
    ESTIMATORS,
    chord_differences,
    gauss_legendre_times,
    is_pullback,
    speeds_squared,
)
from latentgeo.curves.reparam import arc_length_nodes, reparametrize_by_speeds
from latentgeo.curves.spline import _gather_rows
from latentgeo.metrics import Metric
from latentgeo.metrics.jacobians import chunks
from latentgeo.solvers.connecting import register_method
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status

__all__ = ["minimize_energy"]

RUNNING, CONVERGED, MAX_ITER, NAN, STALLED = 0, 1, 2, 3, 4
STATUS = {
    CONVERGED: Status.CONVERGED,
    MAX_ITER: Status.MAX_ITERATIONS,
    NAN: Status.NON_FINITE,
    STALLED: Status.LINE_SEARCH_FAILED,
}
CHORD_POINTS = 24  # default grid of the chord estimator while optimising
CHUNK_POINTS = 2**16  # evaluation points per chunk of pairs (bounds memory)
FIRST_LEVEL_TOL = 1e-3  # least tolerance of the first refinement level
DENSE_ENTRIES = 2**20  # largest dense basis (pairs × points × control points) kept
REPORT_NODES = 3  # Gauss–Legendre nodes per piece for the reported length and energy
REPORT_PIECES = 8  # at least this many pieces (spans are cut into equal pieces)


class _Evaluate(nn.Module):
    """``functional_call`` target: points and velocities of a curve."""

    def __init__(self, curve: Curve) -> None:
        super().__init__()
        self.curve = curve

    def forward(self, t: Tensor, derivative: bool) -> tuple[Tensor, Tensor | None]:
        return self.curve._evaluate(t, derivative=derivative)


@dataclass
class _Packing:
    """The curve's parameters as one ``(B, p)`` tensor, and back."""

    names: list[str]
    shapes: list[tuple[int, ...]]

    @classmethod
    def of(cls, curve: Curve) -> _Packing:
        b = curve.num_curves
        names, shapes = [], []
        for name, p in curve.named_parameters():
            if p.ndim == 0 or p.shape[0] != b:
                raise ValueError(f"curve parameter {name} must have leading dimension B={b}")
            names.append(name)
            shapes.append(tuple(p.shape[1:]))
        return cls(names, shapes)

    def flatten(self, curve: Curve) -> Tensor:
        params = dict(curve.named_parameters())
        b = curve.num_curves
        return torch.cat([params[n].detach().reshape(b, -1) for n in self.names], 1)

    def unflatten(self, x: Tensor) -> dict[str, Tensor]:
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = math.prod(shape)
            out[f"curve.{name}"] = x[:, start : start + size].reshape(x.shape[0], *shape)
            start += size
        return out

    def write(self, curve: Curve, x: Tensor) -> None:
        params = dict(curve.named_parameters())
        with torch.no_grad():
            for key, value in self.unflatten(x).items():
                params[key.removeprefix("curve.")].copy_(value)


class _Objective:
    """Per-pair energies of a curve as a function of packed parameters ``(A, p)``."""

    def __init__(
        self,
        metric: Metric,
        curve: Curve,
        estimator: str,
        num_points: int | None,
        nodes: int,
        generator: torch.Generator | None,
    ) -> None:
        self.metric, self.curve, self.estimator = metric, curve, estimator
        self.generator = generator
        self.evaluate = _Evaluate(curve)
        self.packing = _Packing.of(curve)
        self.buffers = {f"curve.{n}": b for n, b in curve.named_buffers()}
        if estimator == "metric":
            self.t, self.w = gauss_legendre_times(
                curve.breakpoints(), nodes=nodes, num_points=num_points
            )
        else:
            # at least two grid points per span, so that every control point is seen
            spans = curve.breakpoints().shape[1] - 1
            n = max(CHORD_POINTS if num_points is None else num_points, 2 * spans + 1)
            t = torch.linspace(0.0, 1.0, n, dtype=curve.z0.dtype, device=curve.z0.device)
            self.t, self.w = t.expand(curve.num_curves, -1), t.new_full((1, 1), float(n - 1))
        # Curves linear in their control points (splines, polylines): the basis at
        # the evaluation times is fixed, so it is computed once (both sets of times in
        # one pass), and so are the dense rows of every pair when they all fit.
        self.basis: tuple[Tensor, ...] | None = None
        self.eval_basis: tuple[Tensor, ...] | None = None
        self.pair_rows: tuple[Tensor, ...] = ()
        if hasattr(curve, "_linear_basis") and self.packing.names == ["inner"]:
            linear_basis: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]
            linear_basis = curve._linear_basis  # type: ignore[assignment]
            tk, wk = gauss_legendre_times(curve.breakpoints(), nodes=2)
            both = linear_basis(torch.cat([tk, self.t], 1))
            self.basis = (*(v[:, : tk.shape[1]] for v in both), wk)
            self.eval_basis = tuple(v[:, tk.shape[1] :] for v in both)
            every = self._linear_rows(None)
            self.pair_rows = every if len(every) in (2, 4) else ()

        # The rows of the per-pair constants for the last ``idx`` seen: the optimiser
        # passes the same index tensor while its set of running pairs is unchanged.
        self._rows_of: Tensor | None = None
        self._rows: tuple[Tensor, ...] = ()

    def _linear_rows(self, idx: Tensor | None) -> tuple[Tensor, ...]:
        """Per-pair constants of a linear curve for the pairs ``idx`` (``None``: all), one
        row per pair: ``(offset, A_pos[, offset', A_vel])`` with ``γ = A_pos P_inner +
        offset`` (the fixed end points folded into the offset) when the dense matrices
        are small, so that a point evaluation is one batched product; otherwise ``(z0,
        z1, basis indices and values)``."""
        assert self.eval_basis is not None
        z0, z1 = self.buffers["curve.z0"], self.buffers["curve.z1"]
        t_idx, vals, dvals = self.eval_basis
        if idx is not None:
            z0, z1, t_idx, vals, dvals = (v[idx] for v in (z0, z1, t_idx, vals, dvals))
        n = self.packing.shapes[0][0] + 2
        if t_idx.numel() * n > DENSE_ENTRIES:
            return (z0[:, None], z1[:, None], t_idx, vals, dvals)
        rows: tuple[Tensor, ...] = _dense_rows(t_idx, vals, n, z0, z1)
        if self.estimator == "metric":
            rows += _dense_rows(t_idx, dvals, n, z0, z1)
        return rows

    def control_points(self, x: Tensor, idx: Tensor) -> Tensor:
        """``[z0, inner, z1]`` of the pairs ``idx``, ``(A, n, d)`` (linear curves)."""
        n_inner, d = self.packing.shapes[0]
        inner = x.reshape(x.shape[0], n_inner, d)
        z0, z1 = self.buffers["curve.z0"][idx], self.buffers["curve.z1"][idx]
        return torch.cat([z0[:, None], inner, z1[:, None]], 1)

    def _rows_for(self, idx: Tensor) -> tuple[Tensor, ...]:
        """``(w, t or the linear curve's rows)`` of the pairs ``idx``, cached for the last
        ``idx`` (see :meth:`_linear_rows`)."""
        if idx is not self._rows_of:
            w = self.w[idx] if self.estimator == "metric" else self.w
            if self.eval_basis is None:
                rest: tuple[Tensor, ...] = (self.t[idx],)
            elif self.pair_rows:
                rest = tuple(v[idx] for v in self.pair_rows)
            else:  # too many pairs for dense rows of all: dense for these if they fit
                rest = self._linear_rows(idx)
            self._rows_of, self._rows = idx, (w, *rest)
        return self._rows

    def __call__(self, x: Tensor, idx: Tensor) -> Tensor:
        w, *rest = self._rows_for(idx)
        metric_energy = self.estimator == "metric"
        if self.eval_basis is not None:
            n_inner, d = self.packing.shapes[0]
            inner = x.view(x.shape[0], n_inner, d)
            if len(rest) in (2, 4):  # dense rows
                pos = torch.baddbmm(rest[0], rest[1], inner)
                vel = torch.baddbmm(rest[2], rest[3], inner) if metric_energy else None
            else:
                z0, z1, t_idx, vals, dvals = rest
                rows = _gather_rows(torch.cat([z0, inner, z1], 1), t_idx)
                pos = (vals[..., None] * rows).sum(-2)
                vel = (dvals[..., None] * rows).sum(-2) if metric_energy else None
        else:
            state = {k: v[idx] for k, v in self.buffers.items()}
            state.update(self.packing.unflatten(x))
            pos, vel = functional_call(self.evaluate, state, (rest[0], metric_energy))
        if metric_energy:
            assert vel is not None
            return (w * speeds_squared(self.metric, pos, vel)).sum(-1)
        sq = chord_differences(self.metric, pos, estimator=self.estimator, generator=self.generator)
        return w[:, 0] * sq.sum(-1)

    def span_arcs(self, x: Tensor, idx: Tensor) -> Tensor:
        """Latent arc length ``∫ |γ̇| dt`` of every span ``(A, S)`` of the linear curves ``idx``
        (2-point Gauss–Legendre: only their ranking matters, to refine)."""
        assert self.basis is not None
        t_idx, _, dvals, w = (v[idx] for v in self.basis)
        rows = _gather_rows(self.control_points(x, idx), t_idx)
        speed = (dvals[..., None] * rows).sum(-2).norm(dim=-1)
        return (w * speed).reshape(x.shape[0], -1, 2).sum(-1)

    def preconditioner(self, x: Tensor, idx: Tensor) -> Tensor | None:
        """:meth:`_preconditioner` in chunks of pairs."""
        if self.basis is None:
            return None
        parts = [
            self._preconditioner(x[sl], idx[sl])
            for sl in _pair_chunks(idx.numel(), self.basis[0].shape[1])
        ]
        return torch.cat(parts)

    def _preconditioner(self, x: Tensor, idx: Tensor) -> Tensor:
        """Inverses ``(A, p, p)`` of ``2 K``, ``K = Σ_q w_q (∂γ̇_q/∂P)ᵀ G(γ_q) ∂γ̇_q/∂P``.

        ``2 K`` is the energy's Hessian with the metric frozen at the current
        curve: exact for a constant metric, and it carries the local scale of
        the metric along the curve (the main source of ill-conditioning).
        Only for curves linear in their parameters. The inverse is formed
        (from the Cholesky factor) because the optimiser applies it to a
        new vector every iteration: a batched product is far cheaper than a
        batched triangular solve, and as accurate (``cond · eps`` either
        way). Pairs whose matrix is not positive definite get NaN.
        """
        assert self.basis is not None
        t_idx, vals, dvals, w = (v[idx] for v in self.basis)
        a, (n_inner, d) = x.shape[0], self.packing.shapes[0]
        n = n_inner + 2
        pos = (vals[..., None] * _gather_rows(self.control_points(x, idx), t_idx)).sum(-2)
        g = self.metric._metric_tensor(pos.reshape(-1, d)).reshape(*pos.shape, d)  # (A, T, d, d)
        outer = w[..., None, None] * dvals[..., :, None] * dvals[..., None, :]  # (A, T, k, k)
        contrib = outer[..., None, None] * g[:, :, None, None]  # (A, T, k, k, d, d)
        flat_idx = (t_idx[..., :, None] * n + t_idx[..., None, :]).reshape(a, -1)
        stiff = x.new_zeros(a, n * n, d * d)
        stiff.scatter_add_(
            1, flat_idx[..., None].expand(-1, -1, d * d), contrib.reshape(a, -1, d * d)
        )
        stiff = stiff.reshape(a, n, n, d, d)[:, 1:-1, 1:-1].permute(0, 1, 3, 2, 4)
        hess = 2.0 * stiff.reshape(a, n_inner * d, n_inner * d)
        hess = 0.5 * (hess + hess.mT)
        diag = hess.diagonal(dim1=-2, dim2=-1)
        ridge = 1e-12 * diag.abs().mean(-1).clamp_min(1e-300)
        eye = torch.eye(hess.shape[-1], dtype=hess.dtype, device=hess.device)
        chol, info = torch.linalg.cholesky_ex(hess + ridge[:, None, None] * eye)
        bad = info != 0
        if bool(bad.any()):
            chol[bad] = eye  # a harmless factor, replaced by NaN below
        inverse = torch.cholesky_inverse(chol)
        if bool(bad.any()):
            inverse[bad] = torch.nan
        return inverse

    def value_and_grad(self, x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Energies ``(A,)`` and their gradients ``(A, p)``, in chunks of pairs to bound memory."""
        parts = _pair_chunks(idx.numel(), self.t.shape[1])
        if len(parts) == 1:  # one chunk: keep ``idx`` itself (its rows are cached)
            with torch.enable_grad():
                xs = x.detach().requires_grad_(True)
                f = self(xs, idx)
                (g,) = torch.autograd.grad(f.sum(), xs)
            return f.detach(), g
        fs, gs = [], []
        for sl in parts:
            with torch.enable_grad():
                xs = x[sl].detach().requires_grad_(True)
                f = self(xs, idx[sl])
                (g,) = torch.autograd.grad(f.sum(), xs)
            fs.append(f.detach())
            gs.append(g)
        return torch.cat(fs), torch.cat(gs)


def _dense_rows(
    t_idx: Tensor, vals: Tensor, n: int, z0: Tensor, z1: Tensor
) -> tuple[Tensor, Tensor]:
    """``(offset (A, T, d), A_inner (A, T, n − 2))`` of a curve linear in its ``n`` control
    points, from its local basis (indices and values ``(A, T, k)``): ``Σ_r vals_r P_{idx_r}
    = A_inner P_inner + offset``, the end points ``z0``, ``z1`` ``(A, d)`` in the offset."""
    dense = vals.new_zeros(*vals.shape[:-1], n).scatter_add_(-1, t_idx, vals)
    offset = dense[..., :1] * z0[:, None] + dense[..., -1:] * z1[:, None]
    return offset, dense[..., 1:-1].contiguous()


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


class _LBFGS:
    """Per-pair L-BFGS state for A independent problems, stored as batched tensors.

    ``direction`` uses the compact form of Byrd, Nocedal & Schnabel (1994)
    (Nocedal & Wright eq. 7.24), equal to the two-loop recursion but a dozen
    batched products instead of ``4m`` sequential steps (the solver's cost per
    iteration on small problems is the number of tensor operations):

    ``H g = H0 g + S R⁻ᵀ((D + Yᵀ H0 Y) c − Yᵀ H0 g) − H0 Y c``, ``c = R⁻¹ Sᵀ g``,

    with ``R`` the upper triangle of ``SᵀY`` (oldest pair first), ``D`` its
    diagonal and ``H0`` the preconditioner (the inverse frozen-metric Hessian)
    where it is finite, else ``γ I``. Pairs that fail the curvature test, and empty slots,
    are stored as zeros with ``R_ii = 1``: they contribute nothing.

    The state is local to the running pairs: :meth:`keep` drops the pairs that stop.
    """

    def __init__(self, x: Tensor, history: int) -> None:
        b, p = x.shape
        self.s = x.new_zeros(b, history, p)  # oldest first
        self.y = x.new_zeros(b, history, p)
        self.gamma = x.new_zeros(b)  # H0 = gamma · I; 0 until the first update
        self.updates = 0  # calls of update so far
        self.h0: Tensor | None = None  # the preconditioner (see precondition)
        self.h0_missing: Tensor | None = None  # pairs whose h0 is NaN; None if there are none

    def precondition(self, h0: Tensor | None) -> None:
        """Use ``h0`` ``(A, p, p)`` (inverse Hessian approximations, NaN for pairs without
        one) as ``H0`` from now on; ``None``: ``γ I`` for every pair."""
        self.h0, self.h0_missing = h0, None
        if h0 is not None:
            missing = ~torch.isfinite(h0[:, 0, 0])
            if bool(missing.any()):
                self.h0_missing = missing

    def keep(self, keep: Tensor) -> None:
        self.s, self.y, self.gamma = self.s[keep], self.y[keep], self.gamma[keep]
        if self.h0 is not None:
            self.h0 = self.h0[keep]
        if self.h0_missing is not None:
            self.h0_missing = self.h0_missing[keep]

    def rows(self, idx: Tensor) -> _LBFGS:
        """A copy holding the pairs ``idx`` (without a preconditioner)."""
        out = _LBFGS.__new__(_LBFGS)
        out.s, out.y, out.gamma = self.s[idx], self.y[idx], self.gamma[idx]
        out.updates, out.h0, out.h0_missing = self.updates, None, None
        return out

    def put(self, idx: Tensor, other: _LBFGS) -> None:
        """Store the state of ``other`` (its pairs are this one's ``idx``)."""
        self.s[idx], self.y[idx], self.gamma[idx] = other.s, other.y, other.gamma
        self.updates = max(self.updates, other.updates)

    def refined(self, refinement: Tensor, d: int) -> _LBFGS:
        """The memory carried into a refined parametrisation ``x' = A x`` (per pair).

        Steps map exactly, ``s' = A s``. Gradients map as ``g = Aᵀ g'``, so a
        gradient change is carried as the least-norm ``y' = A (AᵀA)⁻¹ y``, which
        keeps every pair's measured curvature ``s'ᵀy' = sᵀy``; the new
        directions get their curvature from the next preconditioner. This
        keeps what the optimiser learnt about slow, large-scale modes (which
        the coarse curve already represents) across a refinement.

        Args:
            refinement: ``A`` ``(A, n', n)`` acting on control points.
            d: the latent dimension (each control point has ``d`` parameters).
        """
        a, m = self.s.shape[:2]

        def apply(mat: Tensor, v: Tensor) -> Tensor:
            blocks = v.reshape(a, m, -1, d)
            return torch.einsum("aij,amjd->amid", mat, blocks).reshape(a, m, -1)

        out = _LBFGS.__new__(_LBFGS)
        out.s = apply(refinement, self.s)
        out.y = apply(torch.linalg.pinv(refinement).mT, self.y)  # A (AᵀA)⁻¹ = (A⁺)ᵀ
        out.gamma, out.updates = self.gamma.clone(), self.updates
        out.h0, out.h0_missing = None, None
        return out

    def direction(self, g: Tensor, first_scale: Tensor | Callable[[], Tensor]) -> Tensor:
        """``−H g`` for every pair. ``H0`` is the preconditioner (:meth:`precondition`)
        where there is one, else ``γ I`` with ``γ`` from the last curvature pair, or
        ``first_scale`` ``(A,)`` (or a function giving it, called only if needed) for
        pairs without updates yet."""
        rhs = torch.cat([g[..., None], self.y.mT], -1)  # [g, Y], (A, p, 1 + m)
        if self.h0 is not None and self.h0_missing is None:
            h = torch.bmm(self.h0, rhs)
        else:
            scale = first_scale() if callable(first_scale) else first_scale
            gamma = torch.where(self.gamma > 0, self.gamma, scale)[:, None, None]
            h = gamma * rhs
            if self.h0 is not None:
                assert self.h0_missing is not None
                h = torch.where(self.h0_missing[:, None, None], h, torch.bmm(self.h0, rhs))
        hg, hy = h[..., :1], h[..., 1:]  # H0 g (A, p, 1), H0 Y (A, p, m)
        if self.updates == 0:
            return -hg[..., 0]
        s, y = self.s, self.y
        sy = torch.bmm(s, y.mT)  # (A, m, m): s_i · y_j
        diag = sy.diagonal(dim1=-2, dim2=-1)
        r = sy.triu() + torch.diag_embed((diag == 0).to(sy.dtype))
        bmm = torch.bmm  # (plain batched products: ``@`` dispatches several ops each)
        c = torch.linalg.solve_triangular(r, bmm(s, g[..., None]), upper=True)
        inner = diag[..., None] * c + bmm(bmm(y, hy), c) - bmm(y, hg)
        p = torch.linalg.solve_triangular(r.mT, inner, upper=False)
        return (bmm(hy, c) - hg - bmm(s.mT, p))[..., 0]

    def update(self, s: Tensor, y: Tensor, idx: Tensor | None = None) -> None:
        """Push the step ``s`` and gradient change ``y`` of the pairs ``idx`` (default: all)."""
        self.updates += 1
        sy, yy = _dot(s, y), _dot(y, y)
        ok = sy > 1e-10 * torch.sqrt(_dot(s, s) * yy)  # curvature condition
        gamma = sy / yy  # (selected only where ok: then yy > 0)
        okc = ok[:, None]
        s, y = torch.where(okc, s, 0.0), torch.where(okc, y, 0.0)  # a failed pair: zeros
        if idx is None:
            self.s = torch.cat([self.s[:, 1:], s[:, None]], 1)
            self.y = torch.cat([self.y[:, 1:], y[:, None]], 1)
            self.gamma = torch.where(ok, gamma, self.gamma)
            return
        self.s[idx] = torch.cat([self.s[idx][:, 1:], s[:, None]], 1)
        self.y[idx] = torch.cat([self.y[idx][:, 1:], y[:, None]], 1)
        self.gamma[idx] = torch.where(ok, gamma, self.gamma[idx])


def _run_lbfgs(
    objective: _Objective,
    x: Tensor,
    f: Tensor,
    g: Tensor,
    status: Tensor,
    iterations: Tensor,
    scale: Tensor,
    *,
    max_iter: int,
    tol: float,
    history: int,
    precondition_every: int,
    on_step: Callable[[], None] | None,
    memory: _LBFGS | None = None,
) -> None:
    """Run until every running pair has converged, stalled or hit ``max_iter`` (in place).

    ``memory`` (all pairs) is the L-BFGS memory to start from and is updated
    with the final one (default: start empty).

    The state of the running pairs ``idx`` is kept compact (``xl``, ``fl``, ``gl``,
    the L-BFGS memory...) and written back to ``x``, ``f``, ``g``, ``iterations``
    whenever pairs stop, so that an iteration costs no gathers or scatters
    while the set of running pairs is unchanged.
    """
    idx = ((status == RUNNING) & (iterations < max_iter)).nonzero()[:, 0]
    if idx.numel() == 0:
        return
    xl, fl, gl, its = x[idx], f[idx], g[idx], iterations[idx]
    scl = scale[idx]
    opt = _LBFGS(xl, history) if memory is None else memory.rows(idx)
    age = precondition_every  # iterations since the preconditioner (the same for all pairs)
    flat = ~gl.any(-1)  # the last step lowered f by at most tol (a zero gradient: done)
    its_max = int(its.max())
    eps = torch.finfo(x.dtype).eps

    def write_back() -> None:
        x[idx], f[idx], g[idx], iterations[idx] = xl, fl, gl, its
        if memory is not None:
            memory.put(idx, opt)

    def first_scale() -> Tensor:  # step length of a first, steepest-descent step
        return 0.1 * scl / gl.norm(dim=-1).clamp_min(1e-300)

    # ``f ≤ bound`` rejects NaN and +inf energies without a test of its own (each tensor
    # operation counts on small problems).
    while True:
        if objective.basis is not None:
            if age >= precondition_every:
                opt.precondition(objective.preconditioner(xl, idx))
                age = 0
            age += 1
        d = opt.direction(gl, first_scale)
        slope = _dot(gl, d)
        if not bool((slope < 0).all()):  # not a descent direction: steepest descent
            d = torch.where((slope < 0)[:, None], d, -gl * first_scale()[:, None])
            slope = _dot(gl, d)
        # (a gradient that becomes zero gives a zero step, accepted; done at the next test)
        done = (slope >= fl.abs() * -tol) & flat
        if bool(done.any()):
            status[idx[done]] = CONVERGED
            write_back()
            keep = (~done).nonzero()[:, 0]
            running = (idx, xl, fl, gl, its, scl, flat, d, slope)
            idx, xl, fl, gl, its, scl, flat, d, slope = (v[keep] for v in running)
            opt.keep(keep)
            if idx.numel() == 0:
                break
        # Armijo backtracking line search, per pair.
        n = idx.numel()
        x_new, f_new, g_new = xl, fl, gl
        everyone = True  # every pair accepted at its first trial (the unit step)
        for trial_no in range(30):
            if trial_no == 0:
                trial = xl + d
                ft, gt = objective.value_and_grad(trial, idx)
                ok = ft <= fl + 1e-4 * slope
                if bool(ok.all()):
                    x_new, f_new, g_new = trial, ft, gt
                    break
                everyone = False
                step = torch.ones_like(fl)
                pending = torch.ones_like(fl, dtype=torch.bool)
                sub = torch.arange(n, device=idx.device)
                x_new, f_new, g_new = xl.clone(), fl.clone(), gl.clone()
            else:
                sub = pending.nonzero()[:, 0]
                if sub.numel() == 0:
                    break
                trial = xl[sub] + step[sub, None] * d[sub]
                ft, gt = objective.value_and_grad(trial, idx[sub])
                ok = ft <= fl[sub] + 1e-4 * step[sub] * slope[sub]
            acc = sub[ok]
            x_new[acc], f_new[acc], g_new[acc] = trial[ok], ft[ok], gt[ok]
            pending[acc] = False
            # next trial: minimiser of the quadratic through f(0), f'(0), f(step), safeguarded
            rej = sub[~ok]
            st, ftr = step[rej], ft[~ok]
            denom = 2.0 * (ftr - fl[rej] - slope[rej] * st)
            quad = -slope[rej] * st * st / torch.where(denom > 0, denom, 1.0)
            quad = torch.where(torch.isfinite(ftr) & (denom > 0), quad, 0.1 * st)
            step[rej] = torch.minimum(torch.maximum(quad, 0.1 * st), 0.5 * st)
        its += 1
        its_max += 1
        any_failed = not everyone and bool(pending.any())
        if any_failed:
            failed = pending
            # No decrease found: at rounding level this is convergence, otherwise a stall.
            tiny = -slope[failed] <= max(tol, math.sqrt(eps)) * fl[failed].abs()
            status[idx[failed]] = torch.where(tiny, CONVERGED, STALLED).to(status.dtype)
            moved = (~failed).nonzero()[:, 0]
            if moved.numel():
                xm, fm, gm = x_new[moved], f_new[moved], g_new[moved]
                opt.update(xm - xl[moved], gm - gl[moved], moved)
                flat[moved] = fl[moved] - fm <= tol * fm.abs()
                xl, fl, gl = xl.clone(), fl.clone(), gl.clone()
                xl[moved], fl[moved], gl[moved] = xm, fm, gm
        else:
            opt.update(x_new - xl, g_new - gl)
            flat = fl - f_new <= tol * f_new.abs()
            xl, fl, gl = x_new, f_new, g_new
        if any_failed or its_max >= max_iter:
            stop = its >= max_iter
            if any_failed:
                stop |= failed
            if bool(stop.any()):
                write_back()
                keep = (~stop).nonzero()[:, 0]
                state = (idx, xl, fl, gl, its, scl, flat)
                idx, xl, fl, gl, its, scl, flat = (v[keep] for v in state)
                opt.keep(keep)
                its_max = int(its.max()) if idx.numel() else 0
                if idx.numel() == 0:
                    break
        if on_step is not None:
            write_back()
            on_step()
    write_back()


def _run_adam(
    objective: _Objective,
    x: Tensor,
    f: Tensor,
    g: Tensor,
    status: Tensor,
    iterations: Tensor,
    scale: Tensor,
    *,
    max_iter: int,
    tol: float,
    lr: float,
    patience: int,
    on_step: Callable[[], None] | None,
) -> None:
    """Per-pair Adam with learning rate ``lr · scale``; stops a pair after ``patience``
    steps without a relative improvement of ``tol`` (in place; keeps the best iterate)."""
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    best_x, best_f = x.clone(), f.clone()
    since = torch.zeros_like(iterations)
    step_count = torch.zeros_like(f)
    b1, b2, eps = 0.9, 0.999, 1e-8
    while True:
        running = (status == RUNNING) & (iterations < max_iter)
        if not bool(running.any()):
            break
        idx = running.nonzero()[:, 0]
        step_count[idx] += 1
        k = step_count[idx][:, None]
        m[idx] = b1 * m[idx] + (1 - b1) * g[idx]
        v[idx] = b2 * v[idx] + (1 - b2) * g[idx] ** 2
        mhat, vhat = m[idx] / (1 - b1**k), v[idx] / (1 - b2**k)
        x[idx] = x[idx] - lr * scale[idx, None] * mhat / (vhat.sqrt() + eps)
        fi, gi = objective.value_and_grad(x[idx], idx)
        f[idx], g[idx] = fi, gi
        iterations[idx] += 1
        nan = ~torch.isfinite(fi)
        better = (best_f[idx] - fi > tol * fi.abs()) & ~nan
        since[idx] = torch.where(better, 0, since[idx] + 1)
        improved = idx[(fi < best_f[idx]) & ~nan]
        best_x[improved], best_f[improved] = x[improved], f[improved]
        status[idx[since[idx] >= patience]] = CONVERGED
        status[idx[nan & ~torch.isfinite(best_f[idx])]] = NAN
        if on_step is not None:
            on_step()
    x.copy_(best_x)
    f.copy_(best_f)


@torch.no_grad()
def _refine_fastest_spans(curve: CubicSpline, knots: int, arc: Tensor) -> Tensor:
    """Insert ``knots`` knots per curve, each halving the piece of largest latent arc length.

    Greedy halving (split the largest piece, repeat) picks, among the candidate
    pieces ``a_j / 2^l`` (span ``j`` of latent arc ``a_j`` halved ``l`` times:
    ``2^l`` pieces), the ``knots`` largest: a piece is larger than its halves, so
    it is always chosen before them. All of them are found by one ``topk``.

    Args:
        curve: the splines to refine (in place).
        knots: the number of knots to insert per curve.
        arc: the latent arc length of every span ``(B, S)``.

    Returns the refinement matrices (see :meth:`CubicSpline.insert_knots`)."""
    bp = curve.breakpoints()
    if knots == 0:
        return curve.insert_knots(bp[:, :0])
    # candidate l-th halving of a span: its 2^l pieces, piece m centred at (m + 1/2) / 2^l
    levels = math.ceil(math.log2(knots + 1))
    level = torch.cat([torch.full((2**q,), q, device=bp.device) for q in range(levels)])
    piece = torch.cat([torch.arange(2**q, device=bp.device) for q in range(levels)])
    size = torch.exp2(-level.to(bp.dtype))  # (P,) fraction of the span per piece
    chosen = (arc[..., None] * size).flatten(1).topk(knots, dim=1).indices  # (B, knots)
    span, cand = chosen // size.numel(), chosen % size.numel()
    lo, hi = bp[:, :-1].gather(1, span), bp[:, 1:].gather(1, span)
    return curve.insert_knots(lo + ((piece + 0.5) * size)[cand] * (hi - lo))


def _pair_chunks(pairs: int, points_per_pair: int) -> list[slice]:
    """Slices of pairs holding at most about ``CHUNK_POINTS`` evaluation points each."""
    return list(chunks(pairs, max(1, CHUNK_POINTS // max(points_per_pair, 1))))


def _quadrature(
    metric: Metric, curve: Curve, idx: Tensor, z0: Tensor, z1: Tensor, t: Tensor
) -> tuple[Tensor, Tensor]:
    """``(γ̇ᵀ G γ̇, |γ̇|_G)`` at times ``t`` ``(A, T)`` of the curves ``idx``, with the end
    points replaced by ``z0``, ``z1`` ``(A, d)`` (so gradients reach them), in chunks."""
    params = {f"curve.{n}": p.detach() for n, p in curve.named_parameters()}
    sqs = []
    for sl in _pair_chunks(idx.numel(), t.shape[1]):
        rows = idx[sl]
        state = {k: v[rows] for k, v in params.items()}
        state.update({f"curve.{n}": b[rows] for n, b in curve.named_buffers()})
        state.update({"curve.z0": z0[sl], "curve.z1": z1[sl]})
        pos, vel = functional_call(_Evaluate(curve), state, (t[sl], True))
        assert vel is not None
        sqs.append(speeds_squared(metric, pos, vel))
    sq = torch.cat(sqs)
    return sq, sq.clamp_min(0.0).sqrt()


def _quadrature_energy(metric: Metric, curve: Curve, idx: Tensor) -> Tensor:
    """The reported (Gauss–Legendre) energies of the curves ``idx``, alone."""
    t, w = (
        v[idx] for v in arc_length_nodes(curve, min_pieces=REPORT_PIECES, nodes=REPORT_NODES)[1:]
    )
    sq = _quadrature(metric, curve, idx, curve.z0[idx], curve.z1[idx], t)[0]
    return (w * sq).sum(-1)


@dataclass
class _Report:
    """The reported quadrature of some curves: energies and lengths (differentiable in the
    end points), and the speeds the constant-speed reparametrisation needs."""

    u: Tensor  # piece boundaries (A, M + 1)
    w: Tensor  # quadrature weights (A, M · q)
    energy: Tensor  # (A,)
    length: Tensor  # (A,)
    speed: Tensor  # |γ̇|_G at the quadrature times (A, M · q), detached
    node_speed: Tensor  # |γ̇|_G at u (A, M + 1), detached

    def rows(self, idx: Tensor) -> _Report:
        return _Report(*(v[idx] for v in vars(self).values()))


def _report(metric: Metric, curve: Curve, idx: Tensor, z0: Tensor, z1: Tensor) -> _Report:
    """Gauss–Legendre energies and lengths of the curves ``idx`` with end points ``z0``,
    ``z1`` ``(A, d)`` put in (so that gradients reach them); one metric evaluation at the
    quadrature times and the piece boundaries together."""
    u, t, w = (
        v[idx] for v in arc_length_nodes(curve, min_pieces=REPORT_PIECES, nodes=REPORT_NODES)
    )
    sq, speed = _quadrature(metric, curve, idx, z0, z1, torch.cat([t, u], 1))
    n = t.shape[1]
    return _Report(
        u=u,
        w=w,
        energy=(w * sq[:, :n]).sum(-1),
        length=(w * speed[:, :n]).sum(-1),
        speed=speed[:, :n].detach(),
        node_speed=speed[:, n:].detach(),
    )


def minimize_energy(
    metric: Metric,
    curve: Curve,
    *,
    estimator: str | None = None,
    optimizer: str = "lbfgs",
    max_iter: int = 500,
    tol: float | None = None,
    num_points: int | None = None,
    nodes: int = 4,
    refine: bool | None = None,
    refine_tol: float | None = None,
    max_knots: int = 64,
    lr: float = 0.05,
    patience: int = 20,
    history: int = 5,
    precondition_every: int = 10,
    reparametrize: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
    z0: Tensor | None = None,
    z1: Tensor | None = None,
) -> GeodesicResult:
    r"""Minimise the energy of every curve of a batch; the internal engine of the
    ``"spline"``, ``"discrete"`` and ``"neural"`` methods.

    The curves are returned inside the result, reparametrised to constant
    speed; without refinement ``curve`` itself is optimised in place (its
    parameters then no longer require gradients). With refinement, pairs that
    settle are split off, so the result may be a
    :class:`~latentgeo.curves.CurveStack` of splines with different numbers
    of knots.

    Args:
        metric: the metric (validated).
        curve: B curves; their end points stay fixed.
        estimator: the energy to minimise: ``"metric"`` (Gauss–Legendre
            quadrature of ``γ̇ᵀ G γ̇``, any metric), ``"chord"`` (embedding
            differences, pull-backs; no Jacobian, about three times cheaper
            per point than a JVP) or ``"sampled"`` (ensembles, stochastic;
            only with ``optimizer="adam"``). Default: ``"chord"`` for
            pull-backs (decoders, ensembles), ``"metric"`` otherwise.
        optimizer: ``"lbfgs"`` (per-pair L-BFGS, default) or ``"adam"`` (per-pair
            Adam with learning rate ``lr × |z1 − z0|_∞``).
        max_iter: most iterations per pair, all refinement levels together.
        tol: relative energy tolerance per pair (default ``1e-5``: at a
            minimum the energy is flat, so lengths come out far more accurate,
            about ``1e-6`` relative on the test geometries).
        num_points: least number of energy evaluation points per curve
            (``"metric"``: default ``nodes`` per span; chord estimators: 24,
            and at least two per span).
        nodes: Gauss–Legendre nodes per span for ``"metric"``.
        refine: insert knots after convergence until the energy settles
            (default: for splines).
        refine_tol: relative energy change from one refinement below which a
            pair is done (default ``1e-4``; lengths then settle to about
            ``1e-6`` relative or better, since each refinement shrinks the
            discretisation error by far more than it moves the energy).
        max_knots: most interior knots a spline may grow to.
        lr: Adam's learning rate, relative to the size of ``z1 − z0``.
        patience: Adam stops a pair after this many steps without progress.
        history: L-BFGS memory.
        precondition_every: recompute the L-BFGS preconditioner (the
            frozen-metric stiffness matrix, splines and polylines) every this
            many iterations.
        reparametrize: return the curves reparametrised to constant speed.
        generator: random generator for ``estimator="sampled"``.
        progress: show a tqdm progress bar.
        z0: the end points to differentiate the reported lengths against
            (default: the curve's own, detached).
        z1: as ``z0``.

    Returns:
        A :class:`GeodesicResult`; ``length`` and ``energy`` come from
        Gauss–Legendre quadrature of the metric (3 nodes per piece, spans cut
        into at least 8 pieces), whatever ``estimator`` was minimised, and are
        differentiable with respect to ``z0``/``z1`` (envelope theorem:
        ``∂L/∂z1 = G(z1) γ̇(1) / |γ̇(1)|_G`` at a geodesic), not with respect to
        the decoder's parameters (for those, evaluate
        :func:`~latentgeo.curves.curve_length` on the returned curve).

    Example:
        >>> import torch
        >>> from latentgeo.curves import CubicSpline
        >>> from latentgeo.metrics import as_metric
        >>> from latentgeo.testing import StereographicSphere
        >>> sphere = StereographicSphere()
        >>> z0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
        >>> z1 = torch.tensor([[-0.5, 2.0]], dtype=torch.float64)
        >>> res = minimize_energy(as_metric(sphere), CubicSpline(z0, z1))
        >>> res.status, float((res.length / sphere.distance(z0, z1) - 1).abs()) < 1e-5
        ([Status.CONVERGED], True)
    """
    if estimator is None:
        estimator = "chord" if is_pullback(metric) else "metric"
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if estimator == "sampled" and optimizer == "lbfgs":
        raise ValueError("estimator='sampled' is stochastic: use optimizer='adam'")
    if not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    dtype, device = curve.z0.dtype, curve.z0.device
    if tol is None:
        tol = 1e-5
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    refine_tol = 1e-4 if refine_tol is None else refine_tol
    if refine is None:
        refine = isinstance(curve, CubicSpline)
    if refine and not isinstance(curve, CubicSpline):
        raise ValueError("refine=True needs a CubicSpline curve")

    b = curve.num_curves
    status = torch.zeros(b, dtype=torch.long, device=device)
    iterations = torch.zeros(b, dtype=torch.long, device=device)
    z0 = curve.z0 if z0 is None else z0  # the end points the reported lengths depend on
    z1 = curve.z1 if z1 is None else z1
    # (pair indices, their final curves, their report if already computed)
    finished: list[tuple[Tensor, Curve, _Report | None]] = []

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="geodesics", leave=False)

    def on_step() -> None:
        if bar is not None:
            bar.n = int(iterations.max())
            bar.set_postfix(running=int((status == RUNNING).sum()))
            bar.refresh()

    # The decoder's own parameters need no gradients while the curves are optimised.
    frozen = [p for p in metric.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        # `active` holds the pairs `pairs` still being solved; pairs that settle are
        # split off, so that refinement only grows the curves that need it.
        active, pairs = curve, torch.arange(b, device=device)
        level_energy = torch.full((b,), math.inf, dtype=dtype, device=device)
        carried: _LBFGS | None = None  # L-BFGS memory carried across refinements
        while True:
            n = pairs.numel()
            objective = _Objective(metric, active, estimator, num_points, nodes, generator)
            x = objective.packing.flatten(active)
            st = torch.full((n,), RUNNING, dtype=torch.long, device=device)
            its = iterations[pairs]
            coincident = (active.z0 == active.z1).all(-1)  # solved by the constant curve
            st[coincident] = CONVERGED
            f = torch.zeros(n, dtype=dtype, device=device)
            g = torch.zeros_like(x)
            live = (~coincident).nonzero()[:, 0]
            if live.numel():
                f[live], g[live] = objective.value_and_grad(x[live], live)
            st[live[~torch.isfinite(f[live])]] = NAN
            st[live[f[live] == 0]] = CONVERGED
            status[pairs] = st
            scale = (active.z1 - active.z0).abs().amax(-1).clamp_min(torch.finfo(dtype).tiny)

            def report(st: Tensor = st, its: Tensor = its, pairs: Tensor = pairs) -> None:
                status[pairs], iterations[pairs] = st, its
                on_step()

            step = report if bar is not None else None  # only the progress bar reads them

            # The first of several levels only has to bring the curves close: no pair
            # can settle on it, and a looser first solve only makes the later
            # comparison of levels more conservative (its energy can only be higher).
            first = refine and not bool(torch.isfinite(level_energy[pairs]).any())
            level_tol = max(tol, FIRST_LEVEL_TOL) if first else tol
            memory = None
            if optimizer == "lbfgs":
                if refine:
                    memory = carried if carried is not None else _LBFGS(x, history)
                _run_lbfgs(
                    objective, x, f, g, st, its, scale,
                    max_iter=max_iter, tol=level_tol, history=history,
                    precondition_every=precondition_every, on_step=step, memory=memory,
                )  # fmt: skip
            else:
                _run_adam(
                    objective, x, f, g, st, its, scale,
                    max_iter=max_iter, tol=level_tol, lr=lr, patience=patience, on_step=step,
                )  # fmt: skip
            status[pairs], iterations[pairs] = st, its
            objective.packing.write(active, x)
            if not refine:
                finished.append((pairs, active, None))
                break
            assert isinstance(active, CubicSpline)
            converged = st == CONVERGED
            # Compare levels by one consistent, accurate energy, the reported quadrature
            # (a chord energy's bias changes with the grid); the pairs that settle keep it.
            level_report, position = None, torch.full_like(pairs, -1)
            if estimator != "metric":
                f = f.clone()
                sel = (converged & ~coincident).nonzero()[:, 0]
                prev = level_energy[pairs]
                if sel.numel() and not bool(torch.isfinite(prev[sel]).any()):
                    # the first level: no pair can settle yet, only the energy is needed
                    with torch.no_grad():
                        f[sel] = _quadrature_energy(metric, active, sel)
                elif sel.numel():
                    level_report = _report(metric, active, sel, z0[pairs[sel]], z1[pairs[sel]])
                    f[sel] = level_report.energy.detach()
                    position[sel] = torch.arange(sel.numel(), device=device)
            prev = level_energy[pairs]
            settled = (prev - f).abs() <= refine_tol * f.abs()
            level_energy[pairs] = torch.where(converged, f, prev)
            interior = active.breakpoints().shape[1] - 2
            # failures are final; so is reaching the knot limit
            final = settled | ~converged | coincident | (interior >= max_knots)
            for reported in (True, False):
                group = (final & ((position >= 0) == reported)).nonzero()[:, 0]
                if group.numel() == 0:
                    continue
                group_curve = active if group.numel() == n else active.subset(group)
                rows = None
                if level_report is not None and reported:
                    rows = level_report.rows(position[group])
                finished.append((pairs[group], group_curve, rows))
            if bool(final.all()):
                break
            keep = (~final).nonzero()[:, 0]
            arcs = objective.span_arcs(x[keep], keep)
            active, pairs = active.subset(keep), pairs[keep]
            knots = min(interior + 1, max_knots - interior)
            refinement = _refine_fastest_spans(active, knots, arcs)
            if memory is not None:
                carried = memory.rows(keep).refined(refinement, active.dim)

        # Report: deterministic quadrature on the final curves, differentiable in z0, z1
        # (the decoder's parameters stay frozen: tracking them doubles the cost).
        parts: list[Curve] = []
        lengths, energies = [], []
        for idx, part, done in finished:
            part.requires_grad_(False)  # the result is a fixed curve: it tracks no gradients
            every = torch.arange(part.num_curves, device=device)
            rep = done if done is not None else _report(metric, part, every, z0[idx], z1[idx])
            energies.append(rep.energy)
            lengths.append(rep.length)
            if reparametrize:
                parts.append(reparametrize_by_speeds(part, rep.u, rep.w, rep.speed, rep.node_speed))
            else:
                parts.append(part)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        if bar is not None:
            bar.close()
    order = torch.cat([idx for idx, _, _ in finished])
    inverse = order.argsort()
    length, energy = torch.cat(lengths)[inverse], torch.cat(energies)[inverse]
    bad = ~torch.isfinite(length)
    status[bad & (status == CONVERGED)] = NAN
    out_curve = parts[0] if len(parts) == 1 else CurveStack(parts, [i for i, _, _ in finished])
    return GeodesicResult(
        curve=out_curve,
        length=length,
        energy=energy,
        converged=status == CONVERGED,
        iterations=iterations,
        status=[STATUS.get(int(s), Status.MAX_ITERATIONS) for s in status.tolist()],
        method="",
        info={"estimator": estimator, "optimizer": optimizer},
    )


# --------------------------------------------------------------- registered methods
def _solve(
    method: str, metric: Metric, curve: Curve, z0: Tensor, z1: Tensor, **options: object
) -> GeodesicResult:
    result = minimize_energy(metric, curve, z0=z0, z1=z1, **options)  # type: ignore[arg-type]
    result.method = method
    return result


@register_method("spline")
def _spline(
    metric: Metric, z0: Tensor, z1: Tensor, *, num_knots: int = 6, **options: object
) -> GeodesicResult:
    """Cubic B-spline (default): per-pair L-BFGS on the metric energy, refined by knot insertion."""
    curve = CubicSpline(z0.detach(), z1.detach(), num_knots=num_knots)
    return _solve("spline", metric, curve, z0, z1, **options)


@register_method("discrete")
def _discrete(
    metric: Metric, z0: Tensor, z1: Tensor, *, num_points: int = 32, **options: object
) -> GeodesicResult:
    """Polyline with ``num_points`` vertices: per-pair L-BFGS on the metric energy."""
    curve = DiscreteCurve(z0.detach(), z1.detach(), num_points=num_points)
    return _solve("discrete", metric, curve, z0, z1, **options)


@register_method("neural")
def _neural(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    *,
    hidden: tuple[int, ...] = (32, 32),
    activation: str = "tanh",
    generator: torch.Generator | None = None,
    **options: object,
) -> GeodesicResult:
    """Neural curve: per-pair L-BFGS on the metric energy at 64 Gauss–Legendre points."""
    curve = NeuralGeodesic(
        z0.detach(), z1.detach(), hidden=hidden, activation=activation, generator=generator
    )
    options.setdefault("num_points", 64)
    return _solve("neural", metric, curve, z0, z1, generator=generator, **options)
