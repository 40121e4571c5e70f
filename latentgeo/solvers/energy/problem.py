"""The problem the optimisers see: per-pair energies of packed curve parameters.

A batch of B curves becomes one tensor of parameters ``x`` of shape ``(B, p)``
(:class:`Packing`), and :class:`Objective` gives every pair's energy and its
gradient as functions of its own row of ``x`` only, for any subset of the
pairs (``idx``). Curves linear in their control points (splines, polylines)
are evaluated through a fixed basis (:class:`LocalBasis`): as one batched
product with dense rows (:class:`DenseRows`) when they fit in memory, else by
a gather of the control points (:class:`SparseRows`). :class:`PairState` is
the state of the pairs of one refinement level that the optimisers update in
place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.func import functional_call

from latentgeo._chunked import run_chunked
from latentgeo.curves import Curve, LinearInControlPoints, gather_rows
from latentgeo.curves.length import chord_differences, gauss_legendre_times, speeds_squared
from latentgeo.metrics import Metric
from latentgeo.solvers.status import Status, code

__all__ = [
    "CHORD_POINTS",
    "DENSE_ENTRIES",
    "CurvePoints",
    "DenseRows",
    "LocalBasis",
    "Objective",
    "Packing",
    "PairState",
    "SparseRows",
    "over_pairs",
    "start_level",
]

CHORD_POINTS = 24  # default grid of the chord estimator while optimising
DENSE_ENTRIES = 2**20  # largest dense basis (pairs × points × control points) kept

T = TypeVar("T")


def over_pairs(
    metric: Metric,
    kind: Hashable,
    fn: Callable[[slice], T],
    pairs: int,
    points: int,
    like: Tensor,
    generator: torch.Generator | None = None,
) -> list[T]:
    """``fn`` over chunks of ``pairs`` pairs of ``points`` evaluation points each, as many
    per chunk as the memory budget allows (:mod:`latentgeo.memory`) given the bytes per
    point measured for ``metric`` and ``kind`` (on the device and dtype of ``like``);
    ``generator``: the one ``fn`` draws from, left as it was by a measurement."""
    owner, prefix = metric.footprint_owner()
    key = (prefix, kind, like.dtype, like.device)
    return run_chunked(
        fn, pairs, owner=owner, key=key, weight=max(points, 1), device=like.device,
        generator=generator,
    )  # fmt: skip


class CurvePoints(nn.Module):
    """``functional_call`` target: points and (on request) velocities of a curve at ``(A, T)``
    times, for the pairs whose parameters and buffers are passed in."""

    def __init__(self, curve: Curve) -> None:
        super().__init__()
        self.curve = curve

    def forward(self, t: Tensor, velocities: bool) -> tuple[Tensor, Tensor | None]:
        if velocities:
            return self.curve.points_and_velocities(t)
        return self.curve(t), None


@dataclass
class Packing:
    """The curve's parameters as one ``(B, p)`` tensor, and back."""

    names: list[str]
    shapes: list[tuple[int, ...]]

    @classmethod
    def of(cls, curve: Curve) -> Packing:
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
        """The parameters of ``x`` ``(A, p)`` by name, prefixed for :class:`CurvePoints`."""
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


@dataclass(frozen=True)
class LocalBasis:
    """A curve linear in its control points ``P`` ``(A, n, d)`` at fixed times ``(A, T)``:
    ``γ(t_q) = Σ_r values[:, q, r] P[index[:, q, r]]``, and ``γ̇`` with ``derivatives``.
    Each tensor is ``(A, T, k)``, ``k`` the control points acting at a time."""

    index: Tensor
    values: Tensor
    derivatives: Tensor

    def rows(self, idx: Tensor) -> LocalBasis:
        return LocalBasis(self.index[idx], self.values[idx], self.derivatives[idx])

    def split(self, at: int) -> tuple[LocalBasis, LocalBasis]:
        """The basis at the first ``at`` times, and at the others."""
        first = LocalBasis(*(v[:, :at] for v in (self.index, self.values, self.derivatives)))
        rest = LocalBasis(*(v[:, at:] for v in (self.index, self.values, self.derivatives)))
        return first, rest


@dataclass(frozen=True)
class DenseRows:
    """A linear curve at the evaluation times as dense matrices of its free control points:
    ``γ = matrix · inner + offset`` (the fixed end points folded into ``offset``
    ``(A, T, d)``; ``matrix`` ``(A, T, n − 2)``), and ``γ̇`` likewise when velocities are
    needed (the ``"metric"`` energy)."""

    offset: Tensor
    matrix: Tensor
    velocity_offset: Tensor | None = None
    velocity_matrix: Tensor | None = None

    def rows(self, idx: Tensor) -> DenseRows:
        vel_offset, vel_matrix = self.velocity_offset, self.velocity_matrix
        return DenseRows(
            self.offset[idx],
            self.matrix[idx],
            None if vel_offset is None else vel_offset[idx],
            None if vel_matrix is None else vel_matrix[idx],
        )

    def points(self, inner: Tensor, velocities: bool) -> tuple[Tensor, Tensor | None]:
        """Points (and velocities) ``(A, T, d)`` for free control points ``inner``
        ``(A, n − 2, d)``: one batched product each."""
        pos = torch.baddbmm(self.offset, self.matrix, inner)
        if not velocities:
            return pos, None
        assert self.velocity_offset is not None and self.velocity_matrix is not None
        return pos, torch.baddbmm(self.velocity_offset, self.velocity_matrix, inner)


@dataclass(frozen=True)
class SparseRows:
    """A linear curve at the evaluation times by its local basis and end points ``(A, 1, d)``
    (when dense rows would take too much memory)."""

    z0: Tensor
    z1: Tensor
    basis: LocalBasis

    def points(self, inner: Tensor, velocities: bool) -> tuple[Tensor, Tensor | None]:
        """As :meth:`DenseRows.points`, by a gather of the control points."""
        rows = gather_rows(torch.cat([self.z0, inner, self.z1], 1), self.basis.index)
        pos = (self.basis.values[..., None] * rows).sum(-2)
        vel = (self.basis.derivatives[..., None] * rows).sum(-2) if velocities else None
        return pos, vel


@dataclass(frozen=True)
class PairRows:
    """What evaluating the energies of some pairs needs: the quadrature ``weights`` (``(A,
    T)``; ``(1, 1)`` for chords), and either the linear curve's rows or the ``times``."""

    weights: Tensor
    linear: DenseRows | SparseRows | None = None
    times: Tensor | None = None


def dense_rows(basis: LocalBasis, values: Tensor, n: int, z0: Tensor, z1: Tensor) -> DenseRows:
    """``Σ_r values_r P_{index_r} = matrix · P_inner + offset`` for a curve of ``n`` control
    points (``values``: the basis' values or derivatives ``(A, T, k)``), the end points
    ``z0``, ``z1`` ``(A, d)`` in the offset."""
    dense = values.new_zeros(*values.shape[:-1], n).scatter_add_(-1, basis.index, values)
    offset = dense[..., :1] * z0[:, None] + dense[..., -1:] * z1[:, None]
    return DenseRows(offset, dense[..., 1:-1].contiguous())


class Objective:
    """Per-pair energies of a curve as a function of packed parameters ``(A, p)``.

    Attributes:
        packing: the curve's parameters as one tensor.
        span_basis: for linear curves, the basis at 2 Gauss–Legendre nodes per
            span (the preconditioner's stiffness matrix, the spans' arc lengths);
            ``None`` for other curves.
        span_weights: the weights of those nodes ``(B, 2 S)``.
    """

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
        self.generator, self.num_points, self.nodes = generator, num_points, nodes
        self.evaluate = CurvePoints(curve)
        self.packing = Packing.of(curve)
        self.buffers = {f"curve.{n}": b for n, b in curve.named_buffers()}
        self.times, self.weights = self._evaluation_times(num_points, nodes)
        # Curves linear in their control points (splines, polylines): the basis at
        # the evaluation times is fixed, so it is computed once (both sets of times in
        # one pass), and so are the dense rows of every pair when they all fit.
        self.span_basis: LocalBasis | None = None
        self.span_weights: Tensor | None = None
        self.eval_basis: LocalBasis | None = None
        self.all_rows: DenseRows | None = None
        if isinstance(curve, LinearInControlPoints) and self.packing.names == ["inner"]:
            linear_basis = curve.linear_basis
            tk, self.span_weights = gauss_legendre_times(curve.breakpoints(), nodes=2)
            both = LocalBasis(*linear_basis(torch.cat([tk, self.times], 1)))
            self.span_basis, self.eval_basis = both.split(tk.shape[1])
            every = self._linear_rows(None)
            self.all_rows = every if isinstance(every, DenseRows) else None
        # The rows of the last ``idx`` seen: the optimiser passes the same index tensor
        # while its set of running pairs is unchanged.
        self._rows_of: Tensor | None = None
        self._rows = PairRows(self.weights)

    @property
    def linear(self) -> bool:
        """Whether the curve is linear in its parameters (then it has a preconditioner)."""
        return self.span_basis is not None

    @property
    def tested_by_shape(self) -> bool:
        """Whether a pair that passes the optimiser's step test must pass the stationarity
        test of its shape too (:mod:`~latentgeo.solvers.energy.stationarity`): curves
        without a preconditioner."""
        return not self.linear

    def _evaluation_times(self, num_points: int | None, nodes: int) -> tuple[Tensor, Tensor]:
        """Times ``(B, T)`` and weights of the energy: Gauss–Legendre nodes for ``"metric"``,
        else a uniform grid with the chord energy's factor ``N − 1`` ``(1, 1)``."""
        curve = self.curve
        if self.estimator == "metric":
            return gauss_legendre_times(curve.breakpoints(), nodes=nodes, num_points=num_points)
        # at least two grid points per span, so that every control point is seen
        spans = curve.breakpoints().shape[1] - 1
        n = max(CHORD_POINTS if num_points is None else num_points, 2 * spans + 1)
        t = torch.linspace(0.0, 1.0, n, dtype=curve.z0.dtype, device=curve.z0.device)
        return t.expand(curve.num_curves, -1), t.new_full((1, 1), float(n - 1))

    def _linear_rows(self, idx: Tensor | None) -> DenseRows | SparseRows:
        """The rows of a linear curve for the pairs ``idx`` (``None``: all): dense when the
        matrices are small, so that a point evaluation is one batched product."""
        assert self.eval_basis is not None
        z0, z1 = self.buffers["curve.z0"], self.buffers["curve.z1"]
        basis = self.eval_basis
        if idx is not None:
            z0, z1, basis = z0[idx], z1[idx], basis.rows(idx)
        n = self.packing.shapes[0][0] + 2
        if basis.index.numel() * n > DENSE_ENTRIES:
            return SparseRows(z0[:, None], z1[:, None], basis)
        rows = dense_rows(basis, basis.values, n, z0, z1)
        if self.estimator != "metric":
            return rows
        velocity = dense_rows(basis, basis.derivatives, n, z0, z1)
        return DenseRows(rows.offset, rows.matrix, velocity.offset, velocity.matrix)

    def _rows_for(self, idx: Tensor) -> PairRows:
        """The rows of the pairs ``idx``, cached for the last ``idx``."""
        if idx is not self._rows_of:
            w = self.weights[idx] if self.estimator == "metric" else self.weights
            if self.eval_basis is None:
                rows = PairRows(w, times=self.times[idx])
            elif self.all_rows is not None:
                rows = PairRows(w, linear=self.all_rows.rows(idx))
            else:  # too many pairs for dense rows of all: dense for these if they fit
                rows = PairRows(w, linear=self._linear_rows(idx))
            self._rows_of, self._rows = idx, rows
        return self._rows

    def control_points(self, x: Tensor, idx: Tensor) -> Tensor:
        """``[z0, inner, z1]`` of the pairs ``idx``, ``(A, n, d)`` (linear curves)."""
        n_inner, d = self.packing.shapes[0]
        inner = x.reshape(x.shape[0], n_inner, d)
        z0, z1 = self.buffers["curve.z0"][idx], self.buffers["curve.z1"][idx]
        return torch.cat([z0[:, None], inner, z1[:, None]], 1)

    def positions(self, x: Tensor, idx: Tensor, t: Tensor) -> Tensor:
        """Points ``(A, T, d)`` of the curves of the pairs ``idx`` with parameters ``x``
        ``(A, p)`` at the times ``t`` ``(A, T)`` (any curve)."""
        state = {k: v[idx] for k, v in self.buffers.items()}
        state.update(self.packing.unflatten(x))
        return functional_call(self.evaluate, state, (t, False))[0]

    def __call__(self, x: Tensor, idx: Tensor) -> Tensor:
        """Energies ``(A,)`` of the pairs ``idx`` with parameters ``x`` ``(A, p)``."""
        rows = self._rows_for(idx)
        velocities = self.estimator == "metric"
        if rows.linear is not None:
            n_inner, d = self.packing.shapes[0]
            pos, vel = rows.linear.points(x.view(x.shape[0], n_inner, d), velocities)
        else:
            state = {k: v[idx] for k, v in self.buffers.items()}
            state.update(self.packing.unflatten(x))
            pos, vel = functional_call(self.evaluate, state, (rows.times, velocities))
        if velocities:
            assert vel is not None
            return (rows.weights * speeds_squared(self.metric, pos, vel)).sum(-1)
        sq = chord_differences(self.metric, pos, estimator=self.estimator, generator=self.generator)
        return rows.weights[:, 0] * sq.sum(-1)

    def value_and_grad(self, x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Energies ``(A,)`` and their gradients ``(A, p)``, in chunks of pairs sized by the
        memory budget."""
        n = idx.numel()

        def chunk(sl: slice) -> tuple[Tensor, Tensor]:
            whole = sl.start == 0 and sl.stop == n  # keep ``idx`` itself: its rows are cached
            with torch.enable_grad():
                xs = (x if whole else x[sl]).detach().requires_grad_(True)
                f = self(xs, idx if whole else idx[sl])
                (g,) = torch.autograd.grad(f.sum(), xs)
            return f.detach(), g

        kind = ("energy", self.estimator)
        parts = over_pairs(self.metric, kind, chunk, n, self.times.shape[1], x, self.generator)
        if len(parts) == 1:
            return parts[0]
        return torch.cat([f for f, _ in parts]), torch.cat([g for _, g in parts])

    def span_arcs(self, x: Tensor, idx: Tensor) -> Tensor:
        """Latent arc length ``∫ |γ̇| dt`` of every span ``(A, S)`` of the linear curves ``idx``
        (2-point Gauss–Legendre: only their ranking matters, to refine)."""
        assert self.span_basis is not None and self.span_weights is not None
        basis, w = self.span_basis.rows(idx), self.span_weights[idx]
        rows = gather_rows(self.control_points(x, idx), basis.index)
        speed = (basis.derivatives[..., None] * rows).sum(-2).norm(dim=-1)
        return (w * speed).reshape(x.shape[0], -1, 2).sum(-1)


@dataclass
class PairState:
    """The pairs of one refinement level, all ``n`` of them, as the optimisers leave them
    (updated in place).

    ``status`` holds :class:`~latentgeo.solvers.Status` codes: a pair starts as
    ``max_iter``, the outcome of a pair whose budget runs out before a stopping
    test holds, and keeps it while it is optimised.
    """

    x: Tensor  # (n, p) parameters
    f: Tensor  # (n,) energies
    g: Tensor  # (n, p) their gradients
    status: Tensor  # (n,) status codes
    iterations: Tensor  # (n,) iterations so far, all levels together
    scale: Tensor  # (n,) |z1 − z0|_∞: the scale of a step in latent space
    coincident: Tensor  # (n,) bool: z0 == z1, solved by the constant curve

    def running(self, max_iter: int) -> Tensor:
        """``(n,)`` bool: the pairs still being optimised."""
        return (self.status == code(Status.MAX_ITERATIONS)) & (self.iterations < max_iter)


def start_level(objective: Objective, curve: Curve, iterations: Tensor) -> PairState:
    """The pairs of ``curve`` before optimisation: energies and gradients of the live pairs,
    and the pairs that are done at once (coincident end points or a zero energy:
    converged; a non-finite energy)."""
    x = objective.packing.flatten(curve)
    n, dtype, device = x.shape[0], x.dtype, x.device
    status = torch.full((n,), code(Status.MAX_ITERATIONS), dtype=torch.long, device=device)
    coincident = (curve.z0 == curve.z1).all(-1)
    status[coincident] = code(Status.CONVERGED)
    f = torch.zeros(n, dtype=dtype, device=device)
    g = torch.zeros_like(x)
    live = (~coincident).nonzero()[:, 0]
    if live.numel():
        f[live], g[live] = objective.value_and_grad(x[live], live)
    status[live[~torch.isfinite(f[live])]] = code(Status.NON_FINITE)
    status[live[f[live] == 0]] = code(Status.CONVERGED)
    scale = (curve.z1 - curve.z0).abs().amax(-1).clamp_min(torch.finfo(dtype).tiny)
    return PairState(x, f, g, status, iterations, scale, coincident)
