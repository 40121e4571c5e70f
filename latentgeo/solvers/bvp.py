"""The ``"bvp"`` method: the geodesic ODE as a two-point boundary-value problem.

Each pair is solved by ``scipy.integrate.solve_bvp`` (collocation with
residual control) on the first-order system ``y = (γ, γ̇)``, ``y' = (γ̇, γ̈)``
with ``γ(0) = z0``, ``γ(1) = z1``. ``solve_bvp`` handles one problem at a
time, so pairs are solved one after another; within a pair, the right-hand
side and its Jacobian are evaluated for all mesh points in one batched call
(the Jacobian ``∂γ̈/∂(γ, γ̇)`` by forward mode, not finite differences).
The initial mesh is the straight line (or a given curve). A pair that fails
gets ``converged = False`` and scipy's message as its status; nothing is
printed and nothing exits.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_bvp
from torch import Tensor
from torch.func import jvp

from latentgeo._options import check_int, check_optional_number
from latentgeo.curves import Curve, DiscreteCurve, curve_length
from latentgeo.metrics import Metric
from latentgeo.solvers.connecting import register_method
from latentgeo.solvers.hermite import HermiteCurve, length_and_energy
from latentgeo.solvers.ode import _acceleration, warn_if_kinked
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.shooting import MINIMALITY_SLACK
from latentgeo.solvers.status import Status, converged_mask
from latentgeo.solvers.validity import mark_invalid

__all__: list[str] = []


class _System:
    """The first-order geodesic system of one pair, numpy in and out, torch inside."""

    def __init__(self, metric: Metric, like: Tensor) -> None:
        warn_if_kinked(metric)
        self.metric = metric
        self.dtype, self.device = like.dtype, like.device
        self.d = like.shape[-1]

    def _torch(self, y: np.ndarray) -> Tensor:
        return torch.as_tensor(y.T, dtype=self.dtype, device=self.device)

    def rhs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = self.d
        yt = self._torch(y)
        with torch.no_grad():
            acc = _acceleration(self.metric, yt[:, :d], yt[:, d:])
        return np.concatenate([y[d:], acc.double().cpu().numpy().T], axis=0)

    def jacobian(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d, n = self.d, y.shape[1]
        yt = self._torch(y)
        rep = yt.repeat(2 * d, 1)
        eye = torch.eye(2 * d, dtype=self.dtype, device=self.device)
        tangents = eye.repeat_interleave(n, dim=0)

        def acc(yy: Tensor) -> Tensor:
            return _acceleration(self.metric, yy[:, :d], yy[:, d:])

        with torch.no_grad():
            dacc = jvp(acc, (rep,), (tangents,))[1]  # (2d·n, d): block k = ∂γ̈/∂y_k
        dacc_np = dacc.reshape(2 * d, n, d).double().cpu().numpy()
        jac = np.zeros((2 * d, 2 * d, n))
        jac[:d, d:] = np.eye(d)[:, :, None]
        jac[d:] = dacc_np.transpose(2, 0, 1)  # [i, k, m] = ∂γ̈_i/∂y_k at node m
        return jac


def _check_options(
    num_nodes: object, tol: object, bc_tol: object, max_nodes: object, num_knots: object
) -> None:
    check_int(num_nodes, "num_nodes", minimum=2)
    check_optional_number(tol, "tol")
    check_optional_number(bc_tol, "bc_tol")
    check_int(max_nodes, "max_nodes", minimum=2)
    check_int(num_knots, "num_knots", minimum=2)


@register_method("bvp")
def _bvp(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    *,
    num_nodes: int = 30,
    tol: float | None = None,
    bc_tol: float | None = None,
    max_nodes: int = 1000,
    init: Curve | None = None,
    num_knots: int = 65,
) -> GeodesicResult:
    """``connecting_geodesic(..., method="bvp")``: ``scipy.integrate.solve_bvp`` per pair.

    Args:
        metric: the metric.
        z0: start points ``(B, d)``.
        z1: end points ``(B, d)``.
        num_nodes: nodes of the initial mesh, ``>= 2``.
        tol: ``solve_bvp``'s relative tolerance on the collocation residuals of its own
            solution, ``> 0`` (default 1e-6 in float64, 1e-5 in float32: at 1e-6 a float32
            metric's rounding failed 2 of 8 sphere pairs). The returned curve samples that
            solution at ``num_knots`` knots (a Hermite interpolant, positions and
            velocities exact at the knots): its length is the interpolant's (the
            solution's to about 1e-12 in a reviewer's runs), its own collocation
            residual is that of the interpolation.
        bc_tol: its tolerance on the boundary conditions, ``> 0`` (default ``tol``).
        max_nodes: most mesh nodes per pair before giving up, ``>= 2``.
        init: an initial curve (e.g. an energy solver's or the graph method's
            result) instead of the straight line.
        num_knots: knots of the returned :class:`HermiteCurve` (the solution's
            positions and velocities, sampled uniformly in ``t``), ``>= 2``.

    Returns:
        A :class:`GeodesicResult`; per pair, ``status`` is ``converged``,
        ``failed`` (scipy's reason in ``message``), ``nonfinite``,
        ``invalid_metric`` (a negative or non-finite squared norm on the curve) or
        ``not_minimizing`` (a geodesic longer than the starting curve, whose length
        is ``info["upper_bound"]``), and ``iterations`` scipy's iteration count.
    """
    _check_options(num_nodes, tol, bc_tol, max_nodes, num_knots)
    if tol is None:
        tol = 1e-6 if z0.dtype == torch.float64 else 1e-5
    if init is not None:
        _check_init(init, z0, z1)
    b, d = z0.shape
    z0d, z1d = z0.detach(), z1.detach()
    x = np.linspace(0.0, 1.0, num_nodes)
    xt = torch.as_tensor(x, dtype=z0.dtype, device=z0.device)
    if init is not None:
        with torch.no_grad():
            y_pos, y_vel = init.points_and_velocities(xt)
    else:
        y_pos = z0d[:, None] + xt[None, :, None] * (z1d - z0d)[:, None]
        y_vel = (z1d - z0d)[:, None].expand_as(y_pos)
    y_init = torch.cat([y_pos, y_vel], -1).double().cpu().numpy()  # (B, n, 2d)
    a_np, b_np = z0d.double().cpu().numpy(), z1d.double().cpu().numpy()
    system = _System(metric, z0)
    knots = np.linspace(0.0, 1.0, num_knots)
    pos = np.zeros((b, num_knots, d))
    vel = np.zeros((b, num_knots, d))
    status, messages, iterations = [], [], []
    for p in range(b):
        pos[p], vel[p], code, msg, iters = _solve_pair(
            system, x, y_init[p], a_np[p], b_np[p], knots,
            tol=tol, bc_tol=tol if bc_tol is None else bc_tol, max_nodes=max_nodes,
        )  # fmt: skip
        status.append(code)
        messages.append(msg)
        iterations.append(iters)
    pos_t = torch.as_tensor(pos, dtype=z0.dtype, device=z0.device)
    vel_t = torch.as_tensor(vel, dtype=z0.dtype, device=z0.device)
    # the end points exactly (solve_bvp meets them to bc_tol)
    pos_t[:, 0], pos_t[:, -1] = z0d, z1d
    curve = HermiteCurve(torch.as_tensor(knots, dtype=z0.dtype, device=z0.device), pos_t, vel_t)
    with torch.no_grad():
        length, energy = length_and_energy(metric, curve)
    status = mark_invalid(status, torch.isnan(length))  # a negative or non-finite |γ̇|²_G
    with torch.no_grad():  # a curve known to join the end points: its start
        start = DiscreteCurve(z0d, z1d, num_points=2) if init is None else init
        bound = curve_length(metric, start).to(length.dtype)
    status = _minimizing(status, messages, length, bound, tol)
    return GeodesicResult(
        curve=curve,
        length=length,
        energy=energy,
        converged=converged_mask(status, device=z0.device),
        iterations=torch.tensor(iterations, device=z0.device),
        status=status,
        method="bvp",
        message=messages,
        info={"upper_bound": bound},
    )


def _check_init(init: object, z0: Tensor, z1: Tensor) -> None:
    """``init`` must be B curves from ``z0`` to ``z1``: ``solve_bvp`` starts from them, and
    their lengths bound the geodesics' (``not_minimizing``)."""
    b = z0.shape[0]
    if not isinstance(init, Curve) or init.num_curves != b:
        got = f"{init.num_curves} curves" if isinstance(init, Curve) else type(init).__name__
        raise ValueError(f"init must be a Curve of {b} curves (one per pair), got {got}")
    with torch.no_grad():
        ends = init(torch.tensor([0.0, 1.0], dtype=z0.dtype, device=z0.device))  # (B, 2, d)
    scale = 1.0 + float(torch.maximum(z0.abs().max(), z1.abs().max()))
    off = torch.maximum((ends[:, 0] - z0).abs().max(), (ends[:, 1] - z1).abs().max())
    if not float(off) <= 1e3 * torch.finfo(z0.dtype).eps * scale:
        raise ValueError(f"init must join z0 to z1 (its ends are {float(off):.3g} away)")


def _solve_pair(
    system: _System,
    x: np.ndarray,
    y_init: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    knots: np.ndarray,
    *,
    tol: float,
    bc_tol: float,
    max_nodes: int,
) -> tuple[np.ndarray, np.ndarray, Status, str, int]:
    """One pair by ``solve_bvp``, from ``y_init`` ``(n, 2d)`` on the mesh ``x``: positions
    and velocities at ``knots`` (the straight line where it failed), status, message and
    scipy's iterations."""
    d = a.shape[0]

    def bc(ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return np.concatenate([ya[:d] - a, yb[:d] - b])

    def bc_jac(ya: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        da, db = np.zeros((2 * d, 2 * d)), np.zeros((2 * d, 2 * d))
        da[:d, :d] = np.eye(d)
        db[d:, :d] = np.eye(d)
        return da, db

    try:
        with np.errstate(all="ignore"):
            sol = solve_bvp(
                system.rhs, bc, x, y_init.T, fun_jac=system.jacobian, bc_jac=bc_jac,
                tol=tol, bc_tol=bc_tol, max_nodes=max_nodes,
            )  # fmt: skip
        ys = sol.sol(knots)
        finite = bool(np.isfinite(ys).all())
        ok = bool(sol.success) and finite
        code = Status.CONVERGED if ok else (Status.FAILED if finite else Status.NON_FINITE)
        msg, iters = ("" if ok else f"scipy solve_bvp: {sol.message}"), int(sol.niter)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
        code, msg, iters, ys = Status.FAILED, f"scipy solve_bvp: {err}", 0, None
    if ys is None or not np.isfinite(ys).all():
        return (
            a + knots[:, None] * (b - a),
            np.broadcast_to(b - a, (len(knots), d)),
            code,
            msg,
            iters,
        )
    return ys[:d].T, ys[d:].T, code, msg, iters


def _minimizing(
    status: list[Status], messages: list[str], length: Tensor, bound: Tensor, tol: float
) -> list[Status]:
    """``status`` with ``not_minimizing`` where a converged geodesic is longer than the
    starting curve ``bound`` (which joins the same points) by more than
    :data:`~latentgeo.solvers.shooting.MINIMALITY_SLACK` ``· tol`` relative: it passed a
    conjugate point (on the sphere, the long arc of the great circle); ``messages`` say so."""
    longer = (length - bound > MINIMALITY_SLACK * tol * bound).tolist()
    out = []
    for i, (s, long) in enumerate(zip(status, longer, strict=True)):
        if long and s is Status.CONVERGED:
            s = Status.NOT_MINIMIZING
            messages[i] = (
                f"the geodesic found (length {float(length[i]):.6g}) is longer than the starting "
                f"curve ({float(bound[i]):.6g}): it is not the shortest; start nearer it (init=, "
                "e.g. an energy solver's curve)"
            )
        out.append(s)
    return out
