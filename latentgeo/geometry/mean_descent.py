"""The Riemannian gradient descent of :func:`~latentgeo.geometry.frechet_mean`.

:class:`MeanDescent` holds every set's state (its mean, its pairs' log maps and
their error estimates, ``F``, ``v̄``, step length, status) and moves the
running sets once per :meth:`MeanDescent.iterate`; :class:`SetPairs` are the
(set, point) pairs with positive weight. See :mod:`latentgeo.geometry.means`
for the method and its stopping rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from torch import Tensor

from latentgeo.curves import DiscreteCurve, curve_length
from latentgeo.geometry.logmaps import LogMaps, Method, PairMap, log_maps
from latentgeo.metrics import Metric
from latentgeo.solvers import ShootingError, Status, exp_map_result
from latentgeo.solvers.logmap_start import MAX_START_STRETCH
from latentgeo.solvers.status import raise_if_failed

__all__ = ["FrechetMeanResult", "MeanDescent", "SetPairs"]


@dataclass
class FrechetMeanResult:
    """Fréchet means of S sets.

    Attributes:
        mean: the means, ``(S, d)`` (``(d,)`` for one set given as ``(N, d)``).
        variance: ``Σ_n w_n d(μ, x_n)² / Σ_n w_n`` at the mean, ``(S,)``.
        gradient_norm: ``|Σ_n w_n log_μ(x_n) / Σ_n w_n|_G`` at the mean, ``(S,)``.
        iterations: accepted steps per set, ``(S,)``.
        converged: the gradient tolerance holds, ``(S,)`` bool.
        status: per set: ``converged``; ``max_iter``; ``line_search_failed`` (no
            step decreased ``F``); or, the worst first, a failure of the set's
            final log maps or of the exponential map (``nonfinite``, ...).
        logs: the final log maps ``log_μ(x_n)``, ``(S, N, d)`` (NaN for weight 0).
        method: ``"log"`` or ``"energy"``.
        tol: the gradient tolerance that was applied, in units of ``max(1, √variance)``.
        gradient_error: a bound on the error of ``gradient_norm`` from the log maps'
            estimated errors, ``(S,)`` (``inf`` where nothing bounds it: energy log
            maps never checked by shooting). A set converged where
            ``gradient_norm + gradient_error ≤ tol · max(1, √variance)``.
    """

    mean: Tensor
    variance: Tensor
    gradient_norm: Tensor
    iterations: Tensor
    converged: Tensor
    status: list[Status]
    logs: Tensor
    method: str
    tol: float
    message: list[str] = field(default_factory=list)
    gradient_error: Tensor | None = None

    def raise_if_failed(self) -> None:
        """Raise :class:`~latentgeo.solvers.ShootingError` unless every set converged."""
        raise_if_failed(self.status, self, ShootingError, what="sets")


class SetPairs:
    """The (set, point) pairs with positive weight, and their current log maps."""

    def __init__(self, x: Tensor, w: Tensor) -> None:
        self.set_idx, self.pt_idx = (w > 0).nonzero(as_tuple=True)
        self.target = x[self.set_idx, self.pt_idx]
        self.weight = w[self.set_idx, self.pt_idx]
        self.num_sets = x.shape[0]
        self.total = w.sum(1)

    def of(self, sets: Tensor) -> Tensor:
        """Indices of the pairs belonging to the given sets (a bool mask ``(S,)``)."""
        return sets[self.set_idx].nonzero().squeeze(1)

    def weighted_mean(self, values: Tensor) -> Tensor:
        """``Σ_n w_n values_n / Σ_n w_n`` per set ``(S,)`` from per-pair ``values (P,)``."""
        total = self.total.clamp_min(torch.finfo(values.dtype).tiny)
        sums = values.new_zeros(self.num_sets).index_add_(0, self.set_idx, self.weight * values)
        return sums / total

    def summarise(self, rows: Tensor, v: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
        """``(F, v̄)`` per set from the pairs ``rows`` of ``v (P, d)``, ``length (P,)``
        (zeros for sets without rows; ``rows`` must hold all pairs of their sets)."""
        s, wt = self.set_idx[rows], self.weight[rows]
        f = v.new_zeros(self.num_sets).index_add_(0, s, wt * length[rows] ** 2)
        vbar = v.new_zeros(self.num_sets, v.shape[1]).index_add_(0, s, wt[:, None] * v[rows])
        total = self.total.clamp_min(torch.finfo(v.dtype).tiny)
        return 0.5 * f / total, vbar / total[:, None]


class MeanDescent:
    """Riemannian gradient descent with per-set step halving; see :func:`frechet_mean`.

    The state of every set (its mean, its pairs' log maps, ``F``, ``v̄``, step
    length, status) lives here; :meth:`iterate` moves the active sets once.
    """

    def __init__(
        self,
        metric: Metric,
        x: Tensor,
        w: Tensor,
        mu: Tensor,
        method: Method,
        step_size: float,
        log_options: dict[str, Any] | None,
        exp: PairMap | None,
        tol: float,
    ) -> None:
        self.metric, self.method, self.exp, self.tol = metric, method, exp, tol
        self.log_options, self.step_size = log_options, step_size
        self.x, self.mu = x, mu
        self.pairs = SetPairs(x, w)
        s = x.shape[0]
        # the sets whose log maps come with error bounds (energy ones once checked)
        self.checked = torch.full((s,), method != "energy", device=x.device)
        all_rows = torch.arange(self.pairs.target.shape[0], device=x.device)
        start = self._log_maps(mu[self.pairs.set_idx], all_rows, None, first=True)
        self.v, self.length, self.log_status = start.velocity, start.length, list(start.status)
        self.error = start.error
        self.f, self.vbar = self.pairs.summarise(all_rows, self.v, self.length)
        self.step = torch.full((s,), float(step_size), dtype=x.dtype, device=x.device)
        self.iterations = torch.zeros(s, dtype=torch.long, device=x.device)
        self.status: list[Status | None] = [None] * s
        self._mu_root: Tensor | None = None  # _root(self.mu), kept while the means stay

    def _log_maps(
        self, base: Tensor, rows: Tensor, warm: Tensor | None, *, first: bool = False
    ) -> LogMaps:
        """Log maps of the pairs ``rows`` from ``base``: by the method, but by shooting
        (warm started) for the sets of ``method="energy"`` already checked by it."""
        shoot = self.checked[self.pairs.set_idx[rows]] & (self.method == "energy")
        if not bool(shoot.any()):
            return self._call(self.method, base, rows, warm, first)
        if bool(shoot.all()):
            return self._call("log", base, rows, warm, first)
        parts = [
            self._call(m, base[k], rows[k], None if warm is None else warm[k], first)
            for m, k in (("log", shoot), (self.method, ~shoot))
        ]
        velocity, length = torch.empty_like(base), base.new_empty(len(rows))
        error, status = torch.empty_like(length), [Status.CONVERGED] * len(rows)
        for part, k in zip(parts, (shoot, ~shoot), strict=True):
            velocity[k], length[k], error[k] = part.velocity, part.length, part.error
            for i, st in zip(k.nonzero()[:, 0].tolist(), part.status, strict=True):
                status[i] = st
        return LogMaps(velocity, length, status, error)

    def _call(
        self, method: Method, base: Tensor, rows: Tensor, warm: Tensor | None, first: bool
    ) -> LogMaps:
        """:func:`log_maps` by ``method``; shooting at ``tol / 8`` unless told otherwise."""
        options = self.log_options
        if method == "log":
            own = self.method == "log"  # log_options are the energy solver's otherwise
            options = dict((options if first else _warm(options, "log")) or {}) if own else {}
            options.setdefault("rtol", self.tol / 8)
            options.setdefault("atol", self.tol / 8)
        target = self.pairs.target[rows]
        init = warm if method == "log" else None
        return log_maps(self.metric, base, target, method=method, init=init, options=options)

    def running(self) -> Tensor:
        return torch.tensor([s is None for s in self.status], device=self.x.device)

    def gradient_norm(self) -> Tensor:
        return self.metric.squared_norm(self.mu, self.vbar, validate=False).clamp_min(0.0).sqrt()

    def gradient_error(self) -> Tensor:
        """A bound on the error of :meth:`gradient_norm` ``(S,)``: the weighted mean of the
        log maps' (Euclidean) error estimates times ``‖G(μ)^{1/2}‖₂``."""
        mean_error = self.pairs.weighted_mean(self.error)
        bounded = (mean_error > 0) & mean_error.isfinite()  # inf stays inf: nothing bounds it
        return mean_error if not bool(bounded.any()) else self._root_at_mu() * mean_error

    def _root_at_mu(self) -> Tensor:
        """:meth:`_root` at the current means, computed once while they stay."""
        if self._mu_root is None:
            self._mu_root = self._root(self.mu)
        return self._mu_root

    def _root(self, mu: Tensor) -> Tensor:
        """``‖G(μ)^{1/2}‖₂`` ``(S,)``: what turns a Euclidean error into a ``G`` one."""
        g = self.metric.metric_tensor(mu, validate=False)
        return torch.linalg.eigvalsh(g)[:, -1].clamp_min(0.0).sqrt()

    def _noise(self, root: Callable[[], Tensor], length: Tensor, error: Tensor) -> Tensor:
        """How far ``F`` ``(S,)`` at some means may be off from its log maps' errors,
        ``Σ w L δL / Σ w`` with ``δL ≤ ‖G(μ)^{1/2}‖₂ e`` (unbounded errors count 0; ``root``
        gives ``‖G(μ)^{1/2}‖₂``, asked only when needed)."""
        mean = self.pairs.weighted_mean(length * torch.where(error.isfinite(), error, 0.0))
        return mean if not bool((mean > 0).any()) else root() * mean

    def _threshold(self, tol: float) -> Tensor:
        return tol * torch.clamp((2 * self.f).sqrt(), min=1.0)

    def _check_by_shooting(self, sets: Tensor) -> None:
        """Energy log maps of the sets ``sets`` (bool ``(S,)``) replaced by shooting ones,
        warm started from them: from now on these sets' log maps carry error bounds."""
        self.checked |= sets
        rows = self.pairs.of(sets)
        new = self._log_maps(self.mu[self.pairs.set_idx[rows]], rows, self.v[rows])
        self.v[rows], self.length[rows], self.error[rows] = new.velocity, new.length, new.error
        for r, st in zip(rows.tolist(), new.status, strict=True):
            self.log_status[r] = st
        f, vbar = self.pairs.summarise(rows, self.v, self.length)
        self.f[sets], self.vbar[sets] = f[sets], vbar[sets]

    def _reach(self) -> Tensor:
        """Per set, the distance from ``μ`` to its farthest point ``(S,)``: no step goes
        farther (``inf`` where unknown). The mean of points in a convex ball lies in their
        hull, within that distance; a longer step (a Barzilai–Borwein step can be 1000
        times the last) lands beyond all of them, around a sphere, where every log map
        is a long way back."""
        known = torch.where(torch.isfinite(self.length), self.length, torch.inf)
        far = known.new_zeros(self.pairs.num_sets).scatter_reduce(
            0, self.pairs.set_idx, known, "amax", include_self=True
        )
        return torch.where(far > 0, far, torch.inf)

    def _capped_steps(self) -> Tensor:
        """The step lengths ``τ`` ``(S,)``, at most :meth:`_reach` ``/ ‖v̄‖`` (kept where
        that is not a number: a gradient norm of 0, or not finite)."""
        return torch.fmin(self.step, self._reach() / self.gradient_norm())

    def iterate(self, tol: float) -> bool:
        """Check convergence, then one trial step per running set; ``False`` once all stopped.

        A set has converged when its gradient norm plus the bound on its error is within
        the tolerance. Energy log maps have no bound: a set of ``method="energy"`` whose
        gradient looks within it is checked by shooting log maps first (and keeps them).
        """
        if self.method == "energy":
            close = self.running() & ~self.checked & (self.gradient_norm() <= self._threshold(tol))
            if bool(close.any()):
                self._check_by_shooting(close)
        done = self.gradient_norm() + self.gradient_error() <= self._threshold(tol)
        for i in done.nonzero().squeeze(1).tolist():
            self.status[i] = self.status[i] or Status.CONVERGED
        idx = self.running().nonzero().squeeze(1)
        if idx.numel() == 0:
            return False
        self.step = self._capped_steps()
        trial = self.mu.clone()
        trial[idx], exp_status = _step(
            self.metric, self.mu[idx], self.step[idx, None] * self.vbar[idx], self.exp
        )
        for i, st in zip(idx.tolist(), exp_status, strict=True):
            if st is not Status.CONVERGED:
                self.status[i] = st
        rows = self.pairs.of(self.running())
        if rows.numel() == 0:
            return False
        self._accept_or_halve(trial, rows)
        return True

    def _within_reach(self, base: Tensor, rows: Tensor, sets: Tensor) -> Tensor:
        """Warm starts ``(R, d)`` of the log maps from the trial means ``base`` ``(R, d)``:
        ``log_μ(x) − τ v̄`` (first order), or the straight ``x − base`` where that is more
        than :data:`~latentgeo.solvers.logmap_start.MAX_START_STRETCH` times longer than the
        straight segment (or not finite): no shortest geodesic is longer than the segment,
        and after a long step the first-order guess can point around a sphere, where
        shooting it costs minutes."""
        warm = self.v[rows] - self.step[sets, None] * self.vbar[sets]
        shooting = self.method == "log" or (self.method == "energy" and bool(self.checked.any()))
        if not shooting:
            return warm  # no shooting log map will start from it
        target = self.pairs.target[rows]
        with torch.no_grad():
            segment = curve_length(self.metric, DiscreteCurve(base, target, num_points=2))
            speed = self.metric.squared_norm(base, warm, validate=False).clamp_min(0.0).sqrt()
        near = speed <= MAX_START_STRETCH * segment  # False where either is NaN
        return torch.where(near[:, None], warm, target - base)

    def _accept_or_halve(self, trial: Tensor, rows: Tensor) -> None:
        pairs, sets = self.pairs, self.pairs.set_idx[rows]
        warm = self._within_reach(trial[sets], rows, sets)
        new = self._log_maps(trial[sets], rows, warm)
        v_try, len_try = self.v.clone(), self.length.clone()
        v_try[rows], len_try[rows] = new.velocity, new.length
        f_try, vbar_try = pairs.summarise(rows, v_try, len_try)
        moved = torch.zeros_like(self.step, dtype=torch.bool)
        moved[sets] = True
        tiny, eps = torch.finfo(trial.dtype).tiny, 64 * torch.finfo(trial.dtype).eps
        err_try = self.error.clone()
        err_try[rows] = new.error
        # no increase beyond what the log maps' errors leave uncertain (near the mean a
        # step lowers F by |v̄|²τ, far below that: without it the descent stalls there)
        trial_root = cache(lambda: self._root(trial))  # the means' if the step is taken
        noise = self._noise(self._root_at_mu, self.length, self.error)
        noise = noise + self._noise(trial_root, len_try, err_try)
        better = moved & (f_try <= self.f * (1 + eps) + tiny + noise)
        take = better[sets]
        self.v[rows[take]], self.length[rows[take]] = v_try[rows[take]], len_try[rows[take]]
        self.error[rows[take]] = err_try[rows[take]]
        for r, st, t in zip(rows.tolist(), new.status, take.tolist(), strict=True):
            if t:
                self.log_status[r] = st
        # Barzilai–Borwein step for the next iteration: τ = ⟨s, s⟩ / ⟨s, y⟩ with the step
        # s = τ v̄ and the gradient change y = v̄ − v̄_new (coordinates; exact for flat metrics)
        step_vec = self.step[:, None] * self.vbar
        grad_change = self.vbar - vbar_try
        ss = self.metric.inner(trial, step_vec, step_vec, validate=False)
        sy = self.metric.inner(trial, step_vec, grad_change, validate=False)
        ok = better & (sy > 0) & torch.isfinite(ss / sy)
        bb = torch.where(ok, ss / torch.where(ok, sy, 1.0), self.step_size)
        self.step = torch.where(better, bb.clamp(1e-3 * self.step_size, 1e3 * self.step_size),
                                self.step)  # fmt: skip
        self.mu[better], self.f[better] = trial[better], f_try[better]
        if bool(better.any()):
            old = self._mu_root
            if old is not None and trial_root.cache_info().currsize > 0:
                self._mu_root = torch.where(better, trial_root(), old)
            else:
                self._mu_root = None
        self.vbar[better] = vbar_try[better]
        self.iterations[better] += 1
        worse = moved & ~better
        self.step[worse] *= 0.5
        for i in (worse & (self.step < 1e-6 * self.step_size)).nonzero().squeeze(1).tolist():
            self.status[i] = Status.LINE_SEARCH_FAILED

    def result(self, tol: float) -> FrechetMeanResult:
        final = [s or Status.MAX_ITERATIONS for s in self.status]
        for r, st in enumerate(self.log_status):
            i = int(self.pairs.set_idx[r])
            final[i] = Status.combine(final[i], st)
        logs = torch.full_like(self.x, torch.nan)
        logs[self.pairs.set_idx, self.pairs.pt_idx] = self.v
        converged = torch.tensor([s is Status.CONVERGED for s in final], device=self.x.device)
        return FrechetMeanResult(
            mean=self.mu, variance=2 * self.f, gradient_norm=self.gradient_norm(),
            iterations=self.iterations, converged=converged, status=final, logs=logs, tol=tol,
            method=self.method if isinstance(self.method, str) else "callable",
            gradient_error=self.gradient_error(),
        )  # fmt: skip


def _step(
    metric: Metric, mu: Tensor, step: Tensor, exp: PairMap | None
) -> tuple[Tensor, list[Status]]:
    """``exp_μ(step)`` and a status per set (a failed step keeps ``μ``)."""
    if exp is not None:
        out = exp(mu, step)
        ok = torch.isfinite(out).all(-1)
        status = [Status.CONVERGED if o else Status.NON_FINITE for o in ok.tolist()]
    else:
        ex = exp_map_result(metric, mu, step)
        ok, out, status = ex.converged, ex.point, list(ex.status)
    return torch.where(ok[:, None], out, mu), status


def _warm(options: dict[str, Any] | None, method: Method) -> dict[str, Any] | None:
    """Solver options for later iterations (a log map's init comes from the warm start)."""
    if options is None or method != "log":
        return options
    return {k: val for k, val in options.items() if k != "init"}
