"""The logarithm map to a stated tolerance: the energy geodesic, then a few quasi-Newton shots.

:func:`log_map` finds ``v`` with ``exp_{z0}(v) = z1`` for B pairs at once:

1. **Start** from the energy geodesic (``connecting_geodesic(method="spline")``):
   its initial velocity, scaled to its length, is typically within 1e-3
   relative of the answer.
2. **Quasi-Newton** on the end-point residual ``r(v) = exp_{z0}(v) − z1``, one
   batched exponential map per iteration. The Jacobian is measured once, at
   the first (loose) shot: exactly along ``v`` by the Gauss lemma
   ``J v = γ̇(1)``, across it by forward differences of ``d − 1`` loose
   exponential maps in one batch (``logmap_measure``). A
   model without curvature, ``G(z1)^{−1/2} R G(z0)^{1/2}`` with ``R`` the
   transport between orthonormal frames (:func:`initial_jacobian`), steers
   the first step; near a conjugate point it underestimates ``‖J⁻¹‖`` tenfold
   and so the error, so no pair is converged on it: where the differences
   fail (an exponential map of them did not converge, or they are not
   finite) the pair is marked unmeasured and measured again, in one batch
   with the others, at the next shots (``remeasure``: their
   tighter tolerance gives a shorter step; every other try backward
   differences), at most ``MEASURES`` tries in all; then it stops with the
   failed maps' status. Later shots refine the model by rank-one updates,
   the Broyden secant ``B s = Δr`` and the Gauss lemma.
   Each pair has its own backtracking, per-step integrator tolerance and stop.
   The first shot is integrated loosely (``FIRST_TAU``: its residual only
   steers); every later one at the per-step tolerance whose summed local
   errors should meet the integration's share of the tolerance at once
   (:meth:`_LogSolver.sure_tau`), so that from the energy start most pairs
   stop after two exponential maps.
3. **Stop** when the estimated velocity error is within ``atol + rtol·‖v‖``:
   ``θ/(1 − θ)·‖δ‖`` for the Newton part (the classical stop of simplified
   Newton methods) plus ``‖B⁻¹‖·e`` for the integrator's estimated end-point
   error ``e`` (the integration tolerance is tightened until this term is a
   quarter of the tolerance). ``θ`` is the observed contraction
   ``‖δ_k‖ / ‖δ_{k−1}‖``, but at least the turn the Jacobian may have taken
   since it was measured, where the secants did not look
   (:meth:`_LogSolver.drift`, ``DRIFT·(κ − 1)·‖v − v_m‖/‖v‖``, ``κ`` the
   model's condition number in orthonormal frames, ``v_m`` where it was
   measured): the contraction of one long step sees the model's error along
   it only, and near a conjugate point the Jacobian turns across it ``κ``
   times faster (starts 1–30 % off were reported converged 2.6–16× off the
   tolerance). Past a turn of ``MAX_THETA`` the model is stale: it is measured
   again at the next shot, as an unmeasured one (``remeasure``). ``κ`` is the
   larger of the model's and the one it had when measured (``jac_at``): the
   secant updates of long rejected trials once left a model five times better
   conditioned than the Jacobian, which never looked stale (float32, rtol 1e-2:
   1.8× and 2.1× off the tolerance). A model measured again stops nothing at that
   shot: the contraction of the step the stale model made says nothing of the
   new model's (1.1× off).
   Nor is ``θ`` below the model's error across the directions the first shot's
   probes did not span, where the model without curvature was kept
   (``SolverState.doubt``, their scaled miss, see
   :meth:`~latentgeo.solvers.logmap_measure.JacobianMeasurement.measure_jacobian`):
   the first contraction sees one direction only (a conv-VAE pair, d = 16, was
   reported converged at θ = 0.03, 2.1× off the tolerance, where the model was
   about 0.1 off). A damped step (the model failed on the full one) proves
   nothing. The returned velocity is ``v + δ``.

A pair that cannot meet the tolerance keeps its best iterate and says why:
``max_iter``, ``integration_error`` (the Newton part converged, the
integrator's error could not be brought under the tolerance),
``line_search_failed`` or the integrator's ``nonfinite``/``max_steps``/``step_underflow``
(of a shot, or of the differences where the Jacobian could not be measured:
``LogMapResult.jacobian_measured`` is false there);
``invalid_metric`` where ``vᵀ G(z0) v`` of the answer is negative or not finite.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from latentgeo.metrics import Metric
from latentgeo.solvers.logmap_measure import JacobianMeasurement, Shot, SolverState
from latentgeo.solvers.logmap_start import jacobian_and_frames, probe_directions
from latentgeo.solvers.ode import geodesic_rhs
from latentgeo.solvers.result import LogMapResult
from latentgeo.solvers.status import (
    Status,
    code,
    converged_mask,
    statuses_from_codes,
)
from latentgeo.solvers.validity import INVALID, invalid_squared_norms

__all__ = ["LogMapResult", "solve_log"]

INT_SHARE = 0.5  # share of the tolerance left to the integration error
MAX_THETA = 0.5  # contraction above which no convergence is claimed
BACKTRACK = 0.7  # step length factor after a rejected trial
MIN_ALPHA = 0.7**8  # at most 8 rejected trials in a row
NEGLIGIBLE = 0.01  # a correction this small relative to the tolerance is converged
FIRST_TAU = 1e-5  # loosest per-step integrator tolerance of the first shot
LOCAL_FRACTION = 0.05  # per-step tolerance as a share of the end-point error allowed
DRIFT = 10.0  # the Jacobian's turn per relative step, in units of κ − 1 (2 in theory; 5x margin)
MEASURES = 3  # attempts to measure a pair's Jacobian (the first shot's and two later ones)
_OK = code(Status.CONVERGED)
_NON_FINITE = code(Status.NON_FINITE)
_INTEGRATION = code(Status.INTEGRATION_ERROR)
_MAX_ITER = code(Status.MAX_ITERATIONS)


# ------------------------------------------------------------------ the solver
def _rank_one(jac: Tensor, s: Tensor, y: Tensor, use: Tensor) -> Tensor:
    """``B + (y − B s) sᵀ / sᵀs`` (so that ``B s = y``) where ``use``, ``B`` elsewhere."""
    ss = (s * s).sum(-1)
    use = use & (ss > 0)
    upd = (y - (jac @ s[..., None])[..., 0])[..., None] * s[..., None, :]
    return jac + torch.where(use[:, None, None], upd / ss.clamp_min(1e-300)[:, None, None], 0.0)


def _direction(jac: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
    """``(−B⁻¹ r, ‖B⁻¹‖₂)``; least squares and ``inf`` where ``B`` is singular."""
    inv, info = torch.linalg.inv_ex(jac)
    ok = (info == 0) & torch.isfinite(inv).flatten(1).all(-1)
    inv = torch.where(ok[:, None, None], inv, torch.linalg.pinv(jac))
    norm = torch.linalg.matrix_norm(inv, ord=2)
    return -(inv @ r[..., None])[..., 0], torch.where(ok, norm, torch.inf)


class _LogSolver(JacobianMeasurement):
    """The iteration of the module documentation for validated ``(B, d)`` tensors."""

    def __init__(
        self,
        metric: Metric,
        z0: Tensor,
        z1: Tensor,
        v: Tensor,
        rtol: float,
        atol: float,
        max_steps: int,
    ) -> None:
        b = z0.shape[0]
        self.metric, self.z0, self.z1, self.rtol, self.atol = metric, z0, z1, rtol, atol
        self.rhs, self.max_steps = geodesic_rhs(metric), max_steps
        self.floor = 10.0 * torch.finfo(z0.dtype).eps
        self.ends = torch.tensor([0.0, 1.0], dtype=z0.dtype, device=z0.device)
        inf = torch.full((b,), torch.inf, dtype=z0.dtype, device=z0.device)
        longs = torch.zeros(b, dtype=torch.long, device=z0.device)
        jac, root0, root1 = jacobian_and_frames(metric, z0, z1)
        self.root0, self.root1 = root0, root1  # G(z0)^{1/2}, G(z1)^{1/2}: orthonormal frames
        self.root0_inv = torch.linalg.inv_ex(root0)[0]
        self.st = SolverState(
            v=v.clone(),
            r=torch.zeros_like(z0),
            e=inf.clone(),
            jac=jac,
            delta=torch.zeros_like(z0),
            alpha=torch.ones_like(inf),
            tau=torch.full_like(inf, max(rtol, FIRST_TAU, self.floor)),
            answer=v.clone(),
            error=inf.clone(),
            codes=longs + _MAX_ITER,
            active=longs == 0,
            shots=longs.clone(),
            exp_maps=longs.clone(),
            measured=longs != 0,
            at=v.clone(),
            jac_at=jac.clone(),
            stale=longs != 0,
            measures=longs.clone(),
            why=longs + _NON_FINITE,
            doubt=torch.zeros_like(inf),
        )

    def sure_tau(self, rows: Tensor, inv_norm: Tensor, bound: Tensor, v: Tensor) -> Tensor:
        """Per-step tolerances ``(A,)`` whose summed local errors should meet the
        integration's share of the tolerance, ``‖B⁻¹‖·e ≤ INT_SHARE·bound``, in one shot
        (``LOCAL_FRACTION`` of it per step, relative to the state's size)."""
        scale = 1.0 + torch.maximum(self.z0[rows].abs().amax(-1), v.abs().amax(-1))
        tau = LOCAL_FRACTION * INT_SHARE * bound / (inv_norm * scale)
        return torch.where(torch.isfinite(tau), tau, self.floor).clamp_min(self.floor)

    def shoot(self, probe: bool = False) -> Shot:
        """One batched exponential map of the running pairs at their trial velocities;
        with ``probe``, in the same batch, the maps along :func:`probe_directions` that
        measure the Jacobian by forward differences (:meth:`measure_jacobian`)."""
        st, d = self.st, self.z0.shape[1]
        idx = st.active.nonzero().squeeze(1)
        x = st.v[idx] + st.alpha[idx, None] * st.delta[idx]
        tau = st.tau[idx]
        dirs = probe_directions(x) if probe and d > 1 else x.new_zeros(x.shape[0], d, 0)
        ends, codes, errors, step = self.integrate(idx, x, tau, dirs, base=True)
        st.shots[idx] += 1
        r = ends[:, 0, :d] - self.z1[idx]
        shot = Shot(idx, x, r, ends[:, 0, d:], errors[:, 0], codes[:, 0], tau)
        shot.probes = (dirs, self.columns(idx, r, ends[:, 1:], codes[:, 1:], step), codes[:, 1:])
        return shot

    def learn(self, shot: Shot, first: bool) -> Tensor:
        """Update the Jacobian models from a shot; return which trials are accepted."""
        st, idx = self.st, shot.idx
        finite = shot.codes == _OK
        if first:
            accept = finite
            st.codes[idx[~finite]] = shot.codes[~finite]
            st.active[idx[~finite]] = False
        else:  # accept a decrease, or no increase beyond the integration errors
            v, r, e = st.v[idx], st.r[idx], st.e[idx]
            rn, rxn = r.norm(dim=-1), shot.r.norm(dim=-1)
            accept = finite & (rxn <= rn + 2.0 * (shot.e + e))
            s, y = shot.x - v, shot.r - r  # Broyden: B s = Δr, unless Δr is mostly noise
            miss = (y - (st.jac[idx] @ s[..., None])[..., 0]).norm(dim=-1)
            st.jac[idx] = _rank_one(st.jac[idx], s, y, finite & (miss > shot.e + e))
        st.jac[idx] = _rank_one(st.jac[idx], shot.x, shot.vel, accept)  # Gauss: J(x) x = γ̇(1)
        return accept

    def reject(self, shot: Shot, accept: Tensor, delta: Tensor) -> None:
        """Rejected trials: half the step along the new direction, or give up."""
        st = self.st
        keep = ~accept & st.active[shot.idx]
        rej = shot.idx[keep]
        # the model has learnt from the failed trial: its new direction, a shorter step
        st.alpha[rej] *= BACKTRACK
        st.delta[rej] = delta[keep]
        failed = rej[st.alpha[rej] < MIN_ALPHA]
        st.codes[failed] = code(Status.LINE_SEARCH_FAILED)
        st.active[failed] = False

    def advance(
        self, shot: Shot, accept: Tensor, delta: Tensor, inv_norm: Tensor, fresh: Tensor
    ) -> None:
        """Accepted trials: the new iterate, its correction, error estimate and stop
        (``fresh`` ``(A,)``: the shot's rows whose model was measured again at it)."""
        st, a = self.st, shot.idx[accept]
        x, delta = shot.x[accept], delta[accept]
        taken, dn = (x - st.v[a]).norm(dim=-1), delta.norm(dim=-1)
        theta = torch.where(taken > 0, dn / taken, torch.where(dn > 0, torch.inf, 0.0))
        # a model measured again at x: the contraction of the step to x (by the old model)
        # says nothing of the step it gives now; as after the first shot, no stop yet
        theta = torch.where(fresh[accept], torch.inf, theta)
        # the model is measured at `at`; past a turn of MAX_THETA it is measured again
        drift = self.drift(a, x, x - st.at[a])
        st.stale[a] = drift > MAX_THETA
        # nor the model's error across the directions its probes did not span
        theta = torch.maximum(torch.maximum(theta, drift), st.doubt[a])
        # a damped step: the model failed on the full one, its contraction proves nothing
        theta = torch.where(st.alpha[a] < 1.0, torch.inf, theta)
        newton = torch.where(theta <= MAX_THETA, theta / (1.0 - theta) * dn, torch.inf)
        answer = x + delta
        bound = self.atol + self.rtol * answer.norm(dim=-1)
        # a correction far below the tolerance (round-off level): the error is about ‖δ‖
        tiny = (dn <= NEGLIGIBLE * bound) & (st.shots[a] > 1)
        newton = torch.where(tiny, torch.minimum(newton, 2.0 * dn), newton)
        integ = inv_norm[accept] * shot.e[accept]
        st.v[a], st.r[a], st.e[a], st.delta[a] = x, shot.r[accept], shot.e[accept], delta
        st.alpha[a] = 1.0
        better = newton + integ < st.error[a]
        st.answer[a[better]] = answer[better]
        st.error[a[better]] = (newton + integ)[better]
        # an estimate built on a model that was never measured proves nothing
        measured = st.measured[a]
        done = (newton + integ <= bound) & measured

        newton_ok = newton <= bound
        # had the budget ended now: the integration is to blame where the Newton part is fine,
        # the failed measurement where the model is unmeasured
        blame = torch.where(newton_ok, _INTEGRATION, _MAX_ITER)
        st.codes[a] = torch.where(done, _OK, torch.where(measured, blame, st.why[a]))
        stuck = (
            ~done & newton_ok & measured & (shot.tau[accept] <= self.floor)
        )  # nothing to tighten
        spent = ~measured & (st.measures[a] >= MEASURES)  # the Jacobian cannot be measured
        st.active[a[done | stuck | spent]] = False
        # the first shot is loose (its residual only steers); from the second on any shot may
        # be the last: at most the tolerance whose summed local errors should meet the
        # integration's share at once (the estimate of a loose shot at dopri5's minimum step
        # count cannot be trusted to say it is fine), and tighter where it did not
        target = INT_SHARE * bound
        # the summed local errors fall like tau^p, p from 0.8 (asymptotically) down to about
        # 0.5 while the step count is held by its minimum: assume the slow end
        shrink = (target / integ.clamp_min(1e-300)).pow(2.0).clamp(1e-4, 1.0)
        sure = self.sure_tau(a, inv_norm[accept], bound, answer)
        tau = torch.where(integ > target, st.tau[a] * shrink, st.tau[a])
        st.tau[a] = torch.minimum(tau, sure).clamp_min(self.floor)

    def drift(self, pairs: Tensor, x: Tensor, step: Tensor) -> Tensor:
        """How far the Jacobian may have turned, relative, in the directions the
        ``step`` ``(A, d)`` to ``x`` ``(A, d)`` (from where it was measured) did not
        probe, ``(A,)``: ``DRIFT·(κ − 1)·‖s‖/‖x‖`` (norms of ``G(z0)``, ``κ`` the
        condition number of the model in orthonormal frames ``G(z1)^{1/2} B G(z0)^{−1/2}``).

        The contraction ``θ`` sees the model's error along the step only. On a space of
        constant curvature the singular values of ``∂ exp/∂v`` in orthonormal frames are 1
        along ``v`` and ``σ = sin(r)/r`` (``r = √K‖v‖``) across it; a step of relative size
        ``ε`` changes ``σ`` by ``|r cot r − 1|·ε``, at most ``2 (1/σ − 1)·ε`` (twice at
        small ``r``, once near the conjugate point ``r → π``), and turning ``v`` by ``ε``
        changes the Jacobian by ``(1/σ − 1)·ε`` relative: an error the secant does not see.
        ``DRIFT`` is that 2 with a margin of 5 for the model's own error (measured by
        loose differences) and higher orders: on the sphere the error after steps 1–10 %
        long was up to 2.7 (near conjugate points) and 4.5 (short pairs) times
        ``2 (κ − 1)·ε``.
        """
        # the model's condition number, but at least the measured one's: secant updates
        # along a few steps (far ones, of rejected trials) can make the model look better
        # conditioned than the Jacobian it was measured as
        cond = torch.maximum(
            self.condition(pairs, self.st.jac), self.condition(pairs, self.st.jac_at)
        )
        root = self.root0[pairs]
        sn = (root @ step[..., None])[..., 0].norm(dim=-1)
        xn = (root @ x[..., None])[..., 0].norm(dim=-1)
        rel = torch.where(xn > 0, sn / xn, torch.where(sn > 0, torch.inf, 0.0))
        return torch.where(rel > 0, DRIFT * (cond - 1.0).clamp_min(0.0) * rel, 0.0)

    def condition(self, pairs: Tensor, jac: Tensor) -> Tensor:
        """The condition numbers ``(A,)`` of ``jac[pairs]`` in orthonormal frames
        ``G(z1)^{1/2} B G(z0)^{−1/2}`` (plain where the frames are not finite)."""
        white = self.root1[pairs] @ jac[pairs] @ self.root0_inv[pairs]
        sv = torch.linalg.svdvals(white)
        cond = sv[:, 0] / sv[:, -1]
        plain = torch.linalg.svdvals(jac[pairs])
        return torch.where(torch.isfinite(cond), cond, plain[:, 0] / plain[:, -1])

    def result(self) -> LogMapResult:
        st = self.st
        # v + δ wherever its error could be estimated, else the last accepted iterate
        velocity = torch.where(torch.isfinite(st.error)[:, None], st.answer, st.v)
        sq = self.metric.squared_norm(self.z0, velocity, validate=False)
        # ‖γ̇‖²_G is constant along a geodesic: its sign at z0 is its sign everywhere
        invalid = invalid_squared_norms(sq[:, None], torch.isfinite(velocity).all(-1, True))
        st.codes = torch.where(invalid, INVALID, st.codes)
        status = statuses_from_codes(st.codes)
        converged = converged_mask(status, device=self.z0.device)
        length = torch.where(invalid, torch.nan, sq.clamp_min(0.0).sqrt())
        residual = torch.where(torch.isfinite(st.e), st.r.norm(dim=-1), torch.inf)
        return LogMapResult(
            velocity, residual, length, converged, status, st.shots, st.error, st.exp_maps,
            st.measured,
        )  # fmt: skip


def solve_log(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    v_init: Tensor,
    *,
    rtol: float,
    atol: float,
    max_iter: int,
    max_steps: int,
    on_iteration: Callable[[int, int], None] | None = None,
) -> LogMapResult:
    """Quasi-Newton shooting from ``v_init`` for validated ``(B, d)`` tensors (no checks);
    ``on_iteration(done, running)`` after each iteration (a progress bar)."""
    solver = _LogSolver(metric, z0, z1, v_init, rtol, atol, max_steps)
    for it in range(max_iter):
        if not bool(solver.st.active.any()):
            break
        shot = solver.shoot(probe=it == 0)
        accept = solver.learn(shot, first=it == 0)
        if it == 0:
            solver.measure_jacobian(shot)
            fresh = torch.zeros_like(accept)  # the first shot's θ is infinite anyway
        else:
            fresh = solver.remeasure(shot)
        r = torch.where(accept[:, None], shot.r, solver.st.r[shot.idx])
        delta, inv_norm = _direction(solver.st.jac[shot.idx], r)
        solver.reject(shot, accept, delta)
        solver.advance(shot, accept, delta, inv_norm, fresh)
        if on_iteration is not None:
            on_iteration(it + 1, int(solver.st.active.sum()))
    return solver.result()
