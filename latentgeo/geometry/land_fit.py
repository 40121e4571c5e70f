"""Fitting a LAND, or a mixture of LANDs, by expectation–maximisation (Arvanitidis et al. 2016).

Each iteration, all K components at once:

* E-step: responsibilities ``r_nk ∝ π_k p_k(x_n)`` from the tangent logs ``log_{μ_k}(x_n)``;
* mean: ``μ_k ← exp_{μ_k}(τ (m_k − m̃_k))`` with ``m_k = Σ_n r_nk log_{μ_k}(x_n) / Σ_n r_nk``
  and ``m̃_k`` the volume-weighted mean of the Monte Carlo tangent samples (the
  paper's steepest-ascent direction; ``m̃ = 0`` for a flat metric);
* covariance: ``Σ_k ← Σ_k + (S_k − S̃_k)``, the fixed point of the likelihood's
  stationarity condition ``S̃_k = S_k`` (empirical tangent second moment equals
  the volume-weighted second moment of the samples), halved until positive definite;
* weights ``π_k = Σ_n r_nk / N``.

A mean or covariance step that would lower the component's M-step objective
``Σ_n r_nk log p_k(x_n)`` is not taken (the mean's step length is halved for the
next iteration, the covariance's change is halved and retried), so every
accepted update raises it (up to Monte Carlo and solver accuracy).

The normalising constants use the same antithetic, whitened draws throughout,
so the log-likelihood changes smoothly and the stopping test is meaningful. For
a flat metric the first iteration lands on the Gaussian (mixture) update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from latentgeo._options import check_bool
from latentgeo._progress import Update, iteration_bar
from latentgeo._validation import check_points
from latentgeo.exceptions import NumericsWarning, warn
from latentgeo.geometry.land import LAND, MonteCarloVolume, Volume, standard_draws
from latentgeo.geometry.logmaps import Method, log_maps
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers import ShootingError, Status, exp_map_result
from latentgeo.solvers.status import code, failure_summary, raise_if_failed, statuses_from_codes

__all__ = ["LANDFit", "fit_land"]


@dataclass
class LANDFit:
    """A fitted LAND and how the fit went.

    Attributes:
        distribution: the fitted :class:`~latentgeo.geometry.LAND`.
        log_likelihood: mean log-likelihood (w.r.t. ``dM``) after each iteration, ``(I + 1,)``.
        iterations: EM iterations run.
        status: ``[converged]`` when the relative change of the mean log-likelihood
            fell below ``tol``; ``[max_iter]`` otherwise.
        responsibilities: ``r_nk`` at the end, ``(N, K)``.
        failed_points: how many points had a failed log map (to some component)
            at the end; they are left out of the updates (and the fit warns).
        message: detail, e.g. about failed log maps or normalising constants that rest on
            few Monte Carlo samples (:meth:`MonteCarloVolume.few_samples_note`) or on too
            few RK4 steps (:meth:`LAND.few_steps_note`).
        point_status: per data point, ``converged`` when its log maps to every
            component converged at the end, else the status of the first that did not
            (``nonfinite`` for a converged one with a non-finite answer).
    """

    distribution: LAND
    log_likelihood: Tensor
    iterations: int
    status: list[Status]
    responsibilities: Tensor
    failed_points: int
    message: list[str] = field(default_factory=list)
    point_status: list[Status] = field(default_factory=list)

    def raise_if_failed(self) -> None:
        """Raise :class:`~latentgeo.solvers.ShootingError` unless the fit converged with
        every point in it (no point left out for a failed log map)."""
        raise_if_failed(self.status, self, ShootingError, what="fits", messages=self.message)
        if self.failed_points:
            raise ShootingError(
                f"the fit converged without {self.failed_points} of {len(self.point_status)} "
                f"points, whose log maps failed ({failure_summary(self.point_status)}); "
                "LANDFit.point_status names them",
                self,
            )


def _point_status(codes: Tensor) -> list[Status]:
    """Per point (column of the ``(K, N)`` log-map codes): converged, or its first failure."""
    converged = code(Status.CONVERGED)
    failed = codes != converged
    first = torch.where(failed.any(0), codes.gather(0, failed.int().argmax(0)[None])[0], converged)
    return statuses_from_codes(first)


def _initial_means(x: Tensor, k: int, seed: int) -> Tensor:
    """k-means++ centres (scikit-learn), each moved to its nearest data point."""
    from sklearn.cluster import KMeans

    if k == 1:
        centres = x.mean(0, keepdim=True)
    else:
        km = KMeans(k, n_init=4, random_state=seed).fit(x.detach().cpu().double().numpy())
        centres = torch.as_tensor(km.cluster_centers_, dtype=x.dtype, device=x.device)
    return x[torch.cdist(centres, x).argmin(1)]


class _EM:
    """The state of a LAND fit: parameters, tangent logs, Monte Carlo picture."""

    def __init__(self, metric: Metric, x: Tensor, means: Tensor, draws: Tensor,
                 cfg: dict[str, Any]) -> None:  # fmt: skip
        self.metric, self.x, self.cfg, self.draws = metric, x, cfg, draws
        self.means = means
        self.logs, self.ok, self.codes = self._logs(means, None)
        k, n = self.logs.shape[:2]
        near = torch.where(self.ok, self.logs.norm(dim=-1), torch.inf).argmin(0)
        r = torch.nn.functional.one_hot(near, k).T.to(x.dtype)  # (K, N) hard start
        self.weights = r.sum(1) / n
        self.cov = self._second_moment(r, cfg["floor"])
        self.mc = self._estimate()
        self.mean_step = torch.full((k,), float(cfg["mean_step"]), dtype=x.dtype, device=x.device)

    def _logs(self, means: Tensor, warm: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """``log_{μ_k}(x_n)`` ``(K, N, d)``, whether each is usable ``(K, N)``, and its
        status code ``(K, N)`` (a converged one that is not finite: ``nonfinite``)."""
        k, n = means.shape[0], self.x.shape[0]
        init = None if warm is None else warm.reshape(k * n, -1)
        res = log_maps(self.metric, means.repeat_interleave(n, 0), self.x.repeat(k, 1),
                       method=self.cfg["log_method"], init=init,
                       options=self.cfg["log_options"])  # fmt: skip
        logs = res.velocity.reshape(k, n, -1)
        codes = torch.tensor([code(s) for s in res.status], device=self.x.device).reshape(k, n)
        converged = codes == code(Status.CONVERGED)
        finite = torch.isfinite(logs).all(-1)
        codes = torch.where(converged & ~finite, code(Status.NON_FINITE), codes)
        return logs, converged & finite, codes

    def _second_moment(self, r: Tensor, floor: float = 0.0) -> Tensor:
        r = torch.where(self.ok, r, 0.0)
        logs = torch.where(self.ok[..., None], self.logs, 0.0)
        s = torch.einsum("kn,kni,knj->kij", r, logs, logs)
        s = s / r.sum(1).clamp_min(1e-300)[:, None, None]
        eye = torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
        ridge = floor * s.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)
        return 0.5 * (s + s.mT) + ridge[:, None, None] * eye

    def _estimate(self) -> MonteCarloVolume:
        return MonteCarloVolume.estimate(
            self.metric, self.means, self.cov, self.draws, self.cfg["volume"], self.cfg["steps"]
        )

    def e_step(self) -> tuple[Tensor, Tensor]:
        """``(mean log-likelihood, responsibilities (K, N))`` over points with all logs."""
        sol = torch.linalg.solve(self.cov[:, None], self.logs[..., None])[..., 0]
        comp = -0.5 * (self.logs * sol).sum(-1) - self.mc.log_normalizer[:, None]
        comp = comp + self.weights.clamp_min(1e-300).log()[:, None]
        good = self.ok.all(0)
        total = torch.logsumexp(comp, 0)
        r = torch.where(good, torch.exp(comp - total), 0.0)
        return total[good].mean(), r

    def q(self, r: Tensor, logs: Tensor, ok: Tensor, cov: Tensor, mc: MonteCarloVolume) -> Tensor:
        """The M-step objective ``Σ_n r_nk log p_k(x_n)`` over the ``ok`` points, ``(K,)``."""
        rs = torch.where(ok, r, 0.0)
        sol = torch.linalg.solve(cov[:, None], logs[..., None])[..., 0]
        quad = torch.where(ok, (logs * sol).sum(-1), 0.0)
        return -0.5 * (rs * quad).sum(1) - rs.sum(1) * mc.log_normalizer

    def m_step(self, r: Tensor) -> None:
        """Weights, then means, then covariances; each step kept only where it raises ``Q``."""
        self.weights = r.sum(1) / r.sum().clamp_min(1e-300)
        self._update_means(r)
        self._update_covariances(r)

    def _update_means(self, r: Tensor) -> None:
        rs = torch.where(self.ok, r, 0.0)
        mass = rs.sum(1).clamp_min(1e-300)
        m_emp = torch.einsum("kn,knd->kd", rs, torch.where(self.ok[..., None], self.logs, 0.0))
        m_mc, _ = self.mc.moments()
        step = self.mean_step[:, None] * (m_emp / mass[:, None] - m_mc)
        ex = exp_map_result(self.metric, self.means, step)
        means = torch.where(ex.converged[:, None], ex.point, self.means)
        logs, ok, codes = self._logs(means, self.logs - step[:, None])
        mc = MonteCarloVolume.estimate(self.metric, means, self.cov, self.draws,
                                       self.cfg["volume"], self.cfg["steps"])  # fmt: skip
        both = ok & self.ok
        q_old = self.q(r, self.logs, both, self.cov, self.mc)
        q_new = self.q(r, logs, both, self.cov, mc)
        keep = ex.converged & (q_new >= q_old - 1e-9 * q_old.abs())
        self.means = torch.where(keep[:, None], means, self.means)
        self.logs = torch.where(keep[:, None, None], logs, self.logs)
        self.ok = torch.where(keep[:, None], ok, self.ok)
        self.codes = torch.where(keep[:, None], codes, self.codes)
        self.mc = mc.where(keep, self.mc)
        self.mean_step = torch.where(keep, self.mean_step, 0.5 * self.mean_step)

    def _update_covariances(self, r: Tensor) -> None:
        _, s_mc = self.mc.moments()
        delta = self._second_moment(r) - s_mc
        q_old = self.q(r, self.logs, self.ok, self.cov, self.mc)
        keep = torch.zeros_like(self.mean_step, dtype=torch.bool)
        for _ in range(4):
            cov = self.cov + delta
            for _ in range(30):  # halve until positive definite
                bad = torch.linalg.cholesky_ex(cov).info != 0
                if not bool(bad.any()):
                    break
                delta = torch.where(bad[:, None, None], 0.5 * delta, delta)
                cov = self.cov + delta
            cov = 0.5 * (cov + cov.mT)
            mc = MonteCarloVolume.estimate(self.metric, self.means, cov, self.draws,
                                           self.cfg["volume"], self.cfg["steps"])  # fmt: skip
            keep = self.q(r, self.logs, self.ok, cov, mc) >= q_old - 1e-9 * q_old.abs()
            if bool(keep.all()):
                break
            delta = torch.where(keep[:, None, None], delta, 0.5 * delta)
        self.cov = torch.where(keep[:, None, None], cov, self.cov)
        self.mc = mc.where(keep, self.mc)


def _iterate(
    em: _EM, max_iter: int, tol: float, update: Update | None = None
) -> tuple[list[Tensor], Status, int, Tensor]:
    """EM until the mean log-likelihood changes by at most ``tol`` relative: the
    log-likelihoods, the status, the iterations and the last responsibilities
    (``update``: a progress bar's, after each iteration)."""
    ll, r = em.e_step()
    history, status, it = [ll], Status.MAX_ITERATIONS, 0
    for it in range(1, max_iter + 1):
        em.m_step(r)
        ll, r = em.e_step()
        history.append(ll)
        if update is not None:
            update(it, log_likelihood=f"{float(ll):.6g}")
        if bool((history[-1] - history[-2]).abs() <= tol * max(1.0, float(ll.abs()))):
            status = Status.CONVERGED
            break
    return history, status, it, r


def _check_some_point_fits(em: _EM) -> None:
    """Refuse a fit in which no point has all its log maps (there is nothing to fit)."""
    if not bool(em.ok.all(0).any()):
        raise ShootingError(
            f"fit_land: the log maps of all {em.ok.shape[1]} points failed "
            f"({failure_summary(_point_status(em.codes))}): there is nothing to fit; give the log "
            "maps more budget (log_options) or check the metric near the data",
            None,
        )


def fit_land(
    metric_or_decoder: MetricLike,
    x: Tensor,
    *,
    num_components: int = 1,
    init_means: Tensor | None = None,
    max_iter: int = 30,
    tol: float = 1e-4,
    num_samples: int = 512,
    volume: Volume = "exact",
    steps: int = 16,
    mean_step: float = 1.0,
    log_method: Method = "energy",
    log_options: dict[str, Any] | None = None,
    covariance_floor: float = 1e-6,
    seed: int = 0,
    throw: bool = False,
    memory_budget: int | None = None,
    progress: bool = False,
) -> LANDFit:
    """Fit a LAND (``num_components = 1``) or a mixture of LANDs to points, by EM.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        x: the data ``(N, d)``.
        num_components: K.
        init_means: starting means ``(K, d)`` (default: k-means++ centres moved to
            their nearest data point).
        max_iter: EM iterations at most.
        tol: stop when the mean log-likelihood changes by at most ``tol · max(1, |ℓ|)``.
        num_samples: Monte Carlo samples per component for the normalising constants.
        volume: ``"exact"`` or ``"paper"`` (see :mod:`latentgeo.geometry.land`).
        steps: RK4 steps of the exponential maps.
        mean_step: the step ``τ`` of the mean update.
        log_method: how log maps are computed (see :func:`~latentgeo.geometry.log_maps`;
            ``"energy"`` by default, the reference implementation's boundary-value geodesics).
        log_options: options of the log-map solver.
        covariance_floor: a ridge of this fraction of the mean variance keeps the
            starting covariances positive definite.
        seed: seeds the Monte Carlo draws and the k-means++ start.
        throw: raise :class:`~latentgeo.solvers.ShootingError` unless the fit converged
            with every point (else a point left out for a failed log map is announced
            by a :class:`~latentgeo.exceptions.NumericsWarning`).
        memory_budget: bytes the log maps, exponential maps and metric evaluations may
            use (``None``: the budget in force, see :mod:`latentgeo.memory`).
        progress: show a progress bar of the EM iterations on a terminal.

    Returns:
        A :class:`LANDFit`.

    Example:
        >>> import torch
        >>> from latentgeo.testing import LinearMap
        >>> x = torch.randn(200, 2, dtype=torch.float64) * torch.tensor([2.0, 0.5]).double()
        >>> fit = fit_land(LinearMap(torch.eye(2).double()), x, num_samples=64, log_method="energy")
        >>> fit.status, torch.allclose(fit.distribution.means[0], x.mean(0), atol=1e-6)
        ([Status.CONVERGED], True)
    """
    metric = as_metric(metric_or_decoder)
    x = metric.validated_points(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, d), got {tuple(x.shape)}")
    if not isinstance(num_components, int) or not 1 <= num_components <= x.shape[0]:
        raise ValueError(
            f"num_components must be an int in [1, N={x.shape[0]}], got {num_components!r}"
        )
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if init_means is None:
        means = _initial_means(x, num_components, seed)
    else:
        means = check_points(init_means, "init_means", dim=x.shape[1]).to(x.dtype)
        if means.shape != (num_components, x.shape[1]):
            raise ValueError(f"init_means must have shape ({num_components}, {x.shape[1]})")
    gen = torch.Generator().manual_seed(seed)
    draws = standard_draws(num_samples, x.shape[1], generator=gen, dtype=x.dtype).to(x.device)
    cfg = {"log_method": log_method, "log_options": log_options, "volume": volume,
           "steps": steps, "mean_step": mean_step, "floor": covariance_floor}  # fmt: skip
    check_bool(progress, "progress")
    with use_memory_budget(memory_budget):
        with torch.no_grad(), iteration_bar(progress, max_iter, "LAND (EM)") as update:
            em = _EM(metric, x.detach(), means, draws, cfg)
            _check_some_point_fits(em)
            history, status, it, r = _iterate(em, max_iter, tol, update)
        _check_some_point_fits(em)
        dist = LAND(metric, em.means, em.cov, em.weights, volume=volume, steps=steps,
                    log_method=log_method, log_options=log_options, draws=draws)  # fmt: skip
    failed = int((~em.ok.all(0)).sum())
    notes = [f"{failed} points with a failed log map were left out" if failed else ""]
    notes += [dist.mc.few_samples_note(), dist.few_steps_note()]  # the LAND warned of them
    message = ["; ".join(n for n in notes if n)]
    points = _point_status(em.codes)
    fit = LANDFit(dist, torch.stack(history), it, [status], r.T, failed, message, points)
    if failed and not throw:
        warn(
            NumericsWarning(
                f"fit_land: {failed} of {x.shape[0]} points had a log map that failed "
                f"({failure_summary(points)}) and were left out of the fit: it describes the other "
                "points only (LANDFit.point_status names them; log_options can give the log "
                "maps more budget)"
            )
        )
    if throw:
        fit.raise_if_failed()
    return fit
