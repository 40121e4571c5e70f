"""The log map's per-pair state and its Jacobian measurements.

:class:`JacobianMeasurement` holds what :mod:`latentgeo.solvers.logmap`'s solver
does to measure ``∂ exp_{z0}(x)/∂x``: batched exponential maps at a trial and at
difference steps from it (:meth:`~JacobianMeasurement.integrate`), the columns
``J u`` they give, the first shot's check of the model on probe directions
(:meth:`~JacobianMeasurement.measure_jacobian`), and the full measurement of
pairs whose model is unmeasured or stale (:meth:`~JacobianMeasurement.remeasure`).
The iteration itself (steps, stops, the error estimate) is in ``logmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo.solvers.integrators import dopri5_rows
from latentgeo.solvers.logmap_start import across
from latentgeo.solvers.status import Status, code

__all__ = ["DOUBT", "JacobianMeasurement", "Shot", "SolverState", "failure"]

DOUBT = 0.5  # a model off by more than this on the probes (scaled by √(d − 1)) is replaced
_OK = code(Status.CONVERGED)
_NON_FINITE = code(Status.NON_FINITE)


def failure(codes: Tensor) -> Tensor:
    """Why a measurement failed, ``(A,)``, from its integrations' codes ``(A, k)``: the
    first that is not converged, ``nonfinite`` where all are (the differences are not)."""
    bad = codes != _OK
    first = codes.gather(-1, bad.to(torch.uint8).argmax(-1, keepdim=True))[:, 0]
    return torch.where(bad.any(-1), first, _NON_FINITE)


@dataclass
class Shot:
    """One batched exponential map from the running pairs ``idx`` at trial velocities ``x``."""

    idx: Tensor  # the pairs (A,)
    x: Tensor  # trial velocities (A, d)
    r: Tensor  # residuals exp(x) − z1 (A, d)
    vel: Tensor  # end velocities γ̇(1) (A, d)
    e: Tensor  # the integrator's end-point error estimates (A,)
    codes: Tensor  # the integrator's status codes (A,)
    tau: Tensor  # the per-step tolerances used (A,)
    probes: tuple[Tensor, Tensor, Tensor] | None = None  # u, J u (A, d, k) and codes (A, k)


@dataclass
class SolverState:
    """Per-pair state of the iteration, all ``(B, ...)``."""

    v: Tensor  # the current (evaluated) iterate
    r: Tensor  # its residual exp(v) − z1
    e: Tensor  # the integrator's error estimate of exp(v)
    jac: Tensor  # the Jacobian model B
    delta: Tensor  # the next correction −B⁻¹ r
    alpha: Tensor  # step length of the next trial
    tau: Tensor  # per-step integrator tolerance of the next shot
    answer: Tensor  # v + δ of the best estimate so far, the returned velocity
    error: Tensor  # its estimated error
    codes: Tensor  # status codes
    active: Tensor  # pairs still iterating
    shots: Tensor  # quasi-Newton shots computed
    exp_maps: Tensor  # exponential maps computed, the Jacobian's included
    measured: Tensor  # whether the Jacobian model was measured (else it is the model alone)
    at: Tensor  # where it was last measured
    jac_at: Tensor  # the model as measured there (before any secant update)
    stale: Tensor  # whether the iterate has gone so far from there that it is measured again
    measures: Tensor  # attempts to measure it
    why: Tensor  # the status of the last failed attempt
    doubt: Tensor  # the model's relative error the probes suggest where it was not measured


class JacobianMeasurement:
    """The Jacobian measurements of the log map's solver (a base class: the solver sets
    the attributes below)."""

    st: SolverState
    z0: Tensor  # (B, d)
    z1: Tensor  # (B, d)
    rhs: Callable[[Tensor], Tensor]  # the geodesic ODE's right-hand side
    ends: Tensor  # the integration times [0, 1]
    max_steps: int

    def integrate(
        self,
        pairs: Tensor,
        x: Tensor,
        tau: Tensor,
        dirs: Tensor,
        base: bool,
        sign: Tensor | float = 1.0,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Exponential maps from ``z0[pairs]`` at ``x`` ``(A, d)`` (with ``base``) and at
        ``x + h u`` for the columns ``u`` of ``dirs`` ``(A, d, k)``, ``h = ±√tau·(1 + |x|)``
        (forward differences: the square root of the noise level; ``sign`` −1: backward
        ones), all in one batch at the per-step tolerances ``tau`` ``(A,)``.

        Returns:
            The end states ``(A, n, 2d)``, the integrator's codes ``(A, n)``, its
            end-point error estimates ``(A, n)`` (``n = k + base``) and ``h`` ``(A,)``.
        """
        d = x.shape[1]
        step = sign * tau.sqrt() * (1.0 + x.norm(dim=-1))
        trials = x[:, None] + step[:, None, None] * dirs.mT  # (A, k, d)
        if base:
            trials = torch.cat([x[:, None], trials], 1)
        n = trials.shape[1]
        y0 = torch.cat([self.z0[pairs].repeat_interleave(n, 0), trials.reshape(-1, d)], -1)
        tol = tau.repeat_interleave(n)
        res = dopri5_rows(self.rhs, y0, self.ends, rtol=tol, atol=tol, max_steps=self.max_steps)
        self.st.exp_maps[pairs] += n
        errors = res.error[:, :d].norm(dim=-1).reshape(-1, n)
        return res.states[:, -1].reshape(-1, n, 2 * d), res.status.reshape(-1, n), errors, step

    def columns(
        self, pairs: Tensor, r0: Tensor, ends: Tensor, codes: Tensor, step: Tensor
    ) -> Tensor:
        """``J u`` ``(A, d, k)`` by forward differences of the end states ``ends``
        ``(A, k, 2d)`` of :meth:`integrate` against the residual ``r0`` ``(A, d)`` at ``x``
        (NaN where an integration failed)."""
        d = r0.shape[1]
        ok = (codes == _OK)[..., None]
        diff = torch.where(ok, ends[..., :d], torch.nan) - self.z1[pairs][:, None] - r0[:, None]
        return diff.mT / step[:, None, None]

    def measure_jacobian(self, shot: Shot) -> None:
        """Check the Jacobian models of the first shot's pairs against ``∂ exp_{z0}(x)/∂x``.

        Along ``x`` the Gauss lemma gives the Jacobian exactly (``J x = γ̇(1)``).
        Across ``x``, the shot measured it on ``min(d − 1, PROBES)`` orthonormal
        directions by forward differences (:meth:`shoot`); the model is corrected
        to match every measured direction (the least change, ``B + (Y − B S) Sᵀ``
        for orthonormal ``S``). Where the probes found the model off by more than
        ``DOUBT`` (``max ‖B⁻¹ J u − u‖·√(d − 1)``: random probes see about
        ``1/√(d − 1)`` of a discrepancy in one direction), the whole Jacobian is
        measured (:meth:`measure_across`). Near a conjugate point the model
        without curvature underestimates ``‖J⁻¹‖`` tenfold and more, and both
        parts of the error estimate with it: where the differences fail (an
        exponential map of them did not converge, or they are not finite) the
        pair keeps the model but is marked unmeasured (:meth:`settle`), and
        :meth:`remeasure` tries again at the next shots.
        """
        st, d = self.st, self.z0.shape[1]
        ok = shot.codes == _OK  # the others stopped with the shot's status (learn)
        zero = ok & (shot.x.norm(dim=-1) == 0)  # x = 0: J = I exactly
        eye = torch.eye(d, dtype=st.jac.dtype, device=st.jac.device)
        eyes = eye.expand(int(zero.sum()), d, d)
        self.settle(shot.idx[zero], eyes, st.why[shot.idx[zero]], shot.x[zero])
        use = ok & ~zero
        if shot.probes is None or d == 1:  # in one dimension the Gauss lemma alone is the Jacobian
            self.settle(shot.idx[use], st.jac[shot.idx[use]], st.why[shot.idx[use]], shot.x[use])
            return
        dirs, cols, codes = shot.probes
        norm = shot.x.norm(dim=-1, keepdim=True)
        rows, jac, why = shot.idx[use], st.jac[shot.idx[use]], failure(codes[use])
        s = torch.cat([(shot.x / norm)[..., None], dirs], -1)[use]
        y = torch.cat([(shot.vel / norm)[..., None], cols], -1)[use]
        solved, info = torch.linalg.solve_ex(jac, y[..., 1:])
        miss = torch.where((info == 0)[:, None, None], solved - s[..., 1:], torch.nan)
        jac = jac + (y - jac @ s) @ s.mT  # now B S = Y
        doubt = torch.zeros_like(norm[use, 0])
        if dirs.shape[-1] < d - 1:
            doubt = miss.norm(dim=-2).amax(-1) * (d - 1) ** 0.5
            full = ~(doubt <= DOUBT)  # NaN: doubtful
            if bool(full.any()):
                jac[full], why[full] = self.measure_across(shot, use.nonzero()[full][:, 0])
            doubt = torch.where(full, 0.0, doubt)
        self.settle(rows, jac, why, shot.x[use])
        # the directions the probes did not span keep the model's error, about `doubt`
        st.doubt[rows] = doubt

    def settle(self, pairs: Tensor, jac: Tensor, why: Tensor, at: Tensor) -> None:
        """Take the Jacobians ``jac`` ``(A, d, d)`` of ``pairs`` ``(A,)`` measured at ``at``
        ``(A, d)`` where they are finite (the pair's model is then measured); elsewhere keep
        the model and remember why the measurement failed (``why``, status codes ``(A,)``)."""
        st = self.st
        good = torch.isfinite(jac).flatten(1).all(-1)
        st.jac[pairs[good]] = jac[good]
        st.jac_at[pairs[good]] = jac[good]
        st.at[pairs[good]] = at[good]
        st.stale[pairs[good]] = False
        st.doubt[pairs[good]] = 0.0
        st.measured[pairs] = good
        st.why[pairs[~good]] = why[~good]
        st.measures[pairs] += 1

    def remeasure(self, shot: Shot) -> Tensor:
        """Measure the whole Jacobian (:meth:`measure_across`) at a later shot's trials
        for the pairs whose model is still unmeasured or stale, in one batch: at the shot's
        tighter tolerance, so over a shorter difference step, and by backward
        differences every other attempt (a region that makes the forward ones fail
        may lie on one side).

        Returns:
            Which of the shot's rows ``(A,)`` were measured again (successfully or not).
        """
        st = self.st
        again = ~st.measured[shot.idx] | st.stale[shot.idx]
        mask = again & (shot.codes == _OK)
        rows = mask.nonzero()[:, 0]
        if rows.numel() == 0:
            return mask
        pairs = shot.idx[rows]
        sign = 1.0 - 2.0 * (st.measures[pairs] % 2).to(shot.x.dtype)  # −1: backward
        jac, why = self.measure_across(shot, rows, sign)
        self.settle(pairs, jac, why, shot.x[rows])
        return mask

    def measure_across(
        self, shot: Shot, rows: Tensor, sign: Tensor | float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """The Jacobians ``(A, d, d)`` at the shot's rows ``rows`` ``(A,)``: the Gauss
        lemma along ``x``, differences (``sign`` of :meth:`integrate`) of ``d − 1``
        more exponential maps across it (one batch, at the shot's tolerance;
        non-finite where one failed), and why they failed (status codes ``(A,)``)."""
        d = self.z0.shape[1]
        x, tau, r0, pairs = shot.x[rows], shot.tau[rows], shot.r[rows], shot.idx[rows]
        dirs = across(x, torch.eye(d, dtype=x.dtype))
        ends, codes, _, step = self.integrate(pairs, x, tau, dirs, base=False, sign=sign)
        cols = self.columns(pairs, r0, ends, codes, step)
        norm = x.norm(dim=-1, keepdim=True)
        y = torch.cat([(shot.vel[rows] / norm)[..., None], cols], -1)
        jac = y @ torch.cat([(x / norm)[..., None], dirs], -1).mT  # J = Y Sᵀ, S orthogonal
        return jac, failure(codes)
