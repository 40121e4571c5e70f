"""The LAND: a locally adaptive normal distribution (Arvanitidis, Hansen, Hauberg 2016).

A LAND with mean ``μ`` and tangent covariance ``Σ`` has, with respect to the
Riemannian volume ``dM(x) = √det G(x) dx``, the density

.. math::
    p(x) = \\frac{1}{C(μ, Σ)} \\exp\\big(-½ \\log_μ(x)^⊤ Σ^{-1} \\log_μ(x)\\big),\\qquad
    C(μ, Σ) = Z_Σ \\; \\mathbb{E}_{v ∼ N(0, Σ)}\\big[\\mathrm{vol}(v)\\big],

with ``Z_Σ = √((2π)^d det Σ)`` and, after the change of variables ``x = exp_μ(v)``,
``vol(v) = √det G(exp_μ v) · |det ∂_v exp_μ(v)|`` (``volume="exact"``). The
paper's cheaper approximation drops the Jacobian of the exponential map,
``vol(v) = √det G(exp_μ v)`` (``volume="paper"``); the two agree for flat
metrics. The expectation is a Monte Carlo average over fixed, antithetic and
whitened standard normal draws (common random numbers: ``C`` is a smooth
function of ``(μ, Σ)`` while fitting). Exponential maps and their Jacobians
come from fixed-step RK4 with forward mode through it (exact for the discrete
solution), every sample of every component in one batch.

:class:`LAND` holds ``K ≥ 1`` components (a mixture of LANDs when ``K > 1``);
:func:`~latentgeo.geometry.fit_land` fits one by EM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.func import jvp

from latentgeo._validation import check_points
from latentgeo.exceptions import NumericsWarning, warn
from latentgeo.geometry.logmaps import Method, log_maps
from latentgeo.metrics import Metric, MetricLike, as_metric, log_volume_element
from latentgeo.solvers import Status
from latentgeo.solvers.ode import geodesic_rhs, rk4

__all__ = ["LAND", "STEPS_LOG_TOL", "MonteCarloVolume", "standard_draws", "tangent_volume"]

Volume = Literal["exact", "paper"]

#: A normalising constant whose Monte Carlo weights have an effective sample size
#: below this share of the samples is announced: its estimate rests on a few draws (an
#: audit: the stereographic sphere at spread 1.0 had 20 of 2048 and ``log C`` 0.27 off;
#: at 1.5, one sample held 99.8 % of the weight and ``log C`` was 6 off; at 0.8, 1883 of
#: 2048 and 0.004).
MIN_EFFECTIVE_SHARE = 0.05
#: The most a normalising constant ``log C`` may change when the RK4 steps of its
#: exponential maps are halved before the LAND says its ``steps`` are too few (the change
#: estimates the error of the fixed-step integration: on the stereographic sphere at spread
#: 0.8, 4 steps changed ``log C`` by 0.044 and were 0.042 off its value at 64 steps, 16 steps
#: by 1.3e-4 and were 8e-6 off; on a tanh MLP at spread 3, 16 steps changed it by 0.061 and
#: were 0.09 off the value at 64, itself 0.05 off the value at 256).
STEPS_LOG_TOL = 1e-3


def standard_draws(num_samples: int, d: int, *, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float64) -> Tensor:  # fmt: skip
    """Antithetic, whitened standard normal draws: mean exactly 0, covariance exactly ``I``.

    Args:
        num_samples: ``S``, even and larger than ``2d``.
        d: the dimension.
        generator: CPU random generator.
        dtype: floating dtype.

    Returns:
        Tensor ``(S, d)`` with ``Σ_s ε_s = 0`` and ``(1/S) Σ_s ε_s ε_sᵀ = I``.

    Example:
        >>> e = standard_draws(8, 2, generator=torch.Generator().manual_seed(0))
        >>> bool(e.sum(0).abs().max() < 1e-12), torch.allclose(e.T @ e / 8, torch.eye(2).double())
        (True, True)
    """
    if not isinstance(num_samples, int) or num_samples % 2 or num_samples <= 2 * d:
        raise ValueError(f"num_samples must be an even int > 2d = {2 * d}, got {num_samples!r}")
    half = torch.randn(num_samples // 2, d, generator=generator, dtype=torch.float64)
    e = torch.cat([half, -half])
    vals, vecs = torch.linalg.eigh(e.T @ e / num_samples)
    return (e @ (vecs * vals.rsqrt()) @ vecs.T).to(dtype)


def tangent_volume(
    metric: Metric, z: Tensor, v: Tensor, *, volume: Volume = "exact", steps: int = 16
) -> tuple[Tensor, Tensor]:
    """``exp_z(v)`` and ``log vol(v)`` for P pairs ``(P, d)`` (see the module docstring).

    Returns:
        ``(points (P, d), log_vol (P,))``; NaN where the integration is not finite.
    """
    p, d = z.shape
    rhs = geodesic_rhs(metric)
    if volume == "paper":
        end = rk4(rhs, torch.cat([z, v], -1), 1.0, steps).states[:, -1, :d]
        logdet = torch.zeros(p, dtype=z.dtype, device=z.device)
    elif volume == "exact":
        z_rep = z.repeat(d, 1)
        tangents = torch.eye(d, dtype=z.dtype, device=z.device).repeat_interleave(p, dim=0)

        def end_point(vv: Tensor) -> Tensor:
            return rk4(rhs, torch.cat([z_rep, vv], -1), 1.0, steps).states[:, -1, :d]

        ends, dends = jvp(end_point, (v.repeat(d, 1),), (tangents,))[:2]
        end = ends[:p]
        jac = dends.reshape(d, p, d).permute(1, 2, 0)  # ∂ exp_z(v) / ∂v
        logdet = torch.linalg.slogdet(jac).logabsdet
    else:
        raise ValueError(f"volume must be 'exact' or 'paper', got {volume!r}")
    finite = torch.isfinite(end).all(-1) & torch.isfinite(logdet)
    safe = torch.where(finite[:, None], end, z)
    log_vol = torch.where(finite, log_volume_element(metric, safe) + logdet, torch.nan)
    return torch.where(finite[:, None], end, torch.nan), log_vol


def _listed_components(flags: Tensor, values: Tensor, spec: str) -> tuple[list[int], str]:
    """The components ``k`` where ``flags[k]`` ``(K,)``, and their ``values`` formatted with
    ``spec``, comma-separated (for the LAND's notes)."""
    which = flags.nonzero().squeeze(1).tolist()
    return which, ", ".join(format(float(values[k]), spec) for k in which)


@dataclass
class MonteCarloVolume:
    """The Monte Carlo picture of K components' normalising constants.

    Attributes:
        log_normalizer: ``log C(μ_k, Σ_k)``, ``(K,)``.
        v: the tangent samples ``v = L_k ε``, ``(K, S, d)``.
        weight: their normalised volume weights ``vol(v) / Σ_s vol(v_s)``, ``(K, S)``
            (0 for samples whose exponential map failed).
        failed: how many samples failed per component, ``(K,)``.
    """

    log_normalizer: Tensor
    v: Tensor
    weight: Tensor
    failed: Tensor

    @staticmethod
    def estimate(metric: Metric, means: Tensor, covariances: Tensor, draws: Tensor,
                 volume: Volume, steps: int) -> MonteCarloVolume:  # fmt: skip
        """Estimate ``C`` for every component with the same draws ``(S, d)``."""
        k, d = means.shape
        s = draws.shape[0]
        chol = torch.linalg.cholesky(covariances)
        v = torch.einsum("kij,sj->ksi", chol, draws)
        with torch.no_grad():
            _, log_vol = tangent_volume(
                metric, means.repeat_interleave(s, 0), v.reshape(-1, d), volume=volume, steps=steps
            )
        log_vol = log_vol.reshape(k, s)
        ok = torch.isfinite(log_vol)
        masked = torch.where(ok, log_vol, -torch.inf)
        log_mean = torch.logsumexp(masked, 1) - math.log(s)
        log_z = 0.5 * (d * math.log(2 * math.pi) + torch.logdet(covariances))
        weight = torch.softmax(masked, 1)
        return MonteCarloVolume(log_z + log_mean, v, weight, (~ok).sum(1))

    def where(self, keep: Tensor, other: MonteCarloVolume) -> MonteCarloVolume:
        """Component ``k`` from ``self`` where ``keep[k]``, else from ``other``."""
        k1, k2, k3 = keep[:, None], keep[:, None, None], keep
        return MonteCarloVolume(
            torch.where(k3, self.log_normalizer, other.log_normalizer),
            torch.where(k2, self.v, other.v),
            torch.where(k1, self.weight, other.weight),
            torch.where(k3, self.failed, other.failed),
        )

    @property
    def effective_samples(self) -> Tensor:
        """Kish's effective sample size of each component's weights, ``1 / Σ_s w_s²``,
        ``(K,)``: near ``S`` when the volume varies little over the samples, near 1 when one
        sample carries the estimate."""
        return 1.0 / self.weight.square().sum(1)

    def few_samples_note(self) -> str:
        """A sentence on the components whose estimate rests on few samples, or ``""``."""
        s, ess = self.weight.shape[1], self.effective_samples
        low, figures = _listed_components(ess < MIN_EFFECTIVE_SHARE * s, ess, ".0f")
        if not low:
            return ""
        return (
            f"the normalising constant of component(s) {low} rests on few Monte Carlo samples "
            f"(effective sample size {figures} of {s}; failed exponential maps: "
            f"{self.failed[low].tolist()}): its estimate is unreliable; raise num_samples, or "
            "narrow the covariance if the tangent samples pass a conjugate point"
        )

    def moments(self) -> tuple[Tensor, Tensor]:
        """The volume-weighted tangent mean ``(K, d)`` and second moment ``(K, d, d)``."""
        m1 = torch.einsum("ks,ksd->kd", self.weight, self.v)
        m2 = torch.einsum("ks,ksi,ksj->kij", self.weight, self.v, self.v)
        return m1, m2


class LAND(Distribution):
    """A LAND, or a mixture of K LANDs, under a latent metric (a ``torch.distributions`` object).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        means: ``μ_k``, ``(K, d)`` (or ``(d,)`` for one component).
        covariances: ``Σ_k`` in the tangent space at ``μ_k``, ``(K, d, d)`` (or ``(d, d)``).
        weights: mixture weights ``(K,)`` (default uniform).
        num_samples: Monte Carlo samples for the normalising constants.
        volume: ``"exact"`` or ``"paper"`` (see the module docstring).
        steps: RK4 steps of the exponential maps.
        log_method: how log maps are computed (see :func:`~latentgeo.geometry.log_maps`).
        log_options: options of the log-map solver.
        generator: CPU generator for the Monte Carlo draws.
        draws: standard normal draws ``(S, d)`` to use instead (e.g. from
            :func:`standard_draws`, shared between LANDs); ``num_samples`` is then ignored.

    Attributes:
        log_normalizer_step_error: ``(K,)`` how much ``log C`` changed when the RK4
            steps were halved (one more estimate at construction, at half the cost):
            the evidence of the fixed-step integration's error; above
            :data:`STEPS_LOG_TOL` the LAND warns (``NaN`` for ``steps=1``).

    Example:
        >>> import torch
        >>> from latentgeo.testing import LinearMap
        >>> flat = LinearMap(torch.eye(2, dtype=torch.float64))  # a flat metric: a Gaussian
        >>> land = LAND(flat, torch.zeros(2).double(), torch.eye(2).double(), num_samples=64)
        >>> x = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
        >>> ref = torch.distributions.MultivariateNormal(land.means[0], land.covariances[0])
        >>> torch.allclose(land.log_prob(x), ref.log_prob(x))
        True
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(
        self,
        metric_or_decoder: MetricLike,
        means: Tensor,
        covariances: Tensor,
        weights: Tensor | None = None,
        *,
        num_samples: int = 1024,
        volume: Volume = "exact",
        steps: int = 16,
        log_method: Method = "energy",
        log_options: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
        draws: Tensor | None = None,
    ) -> None:
        self.metric = as_metric(metric_or_decoder)
        mu = self.metric.validated_points(means, "means")
        mu = mu[None] if mu.ndim == 1 else mu
        k, d = mu.shape
        cov = check_points(covariances, "covariances").to(mu.dtype)
        cov = cov[None] if cov.ndim == 2 else cov
        if cov.shape != (k, d, d):
            raise ValueError(f"covariances must have shape {(k, d, d)}, got {tuple(cov.shape)}")
        if not bool(torch.linalg.cholesky_ex(cov).info.eq(0).all()):
            raise ValueError("covariances must be symmetric positive definite")
        w = torch.full((k,), 1.0 / k, dtype=mu.dtype) if weights is None else weights
        w = check_points(w, "weights").to(mu.dtype)
        if w.shape != (k,) or bool((w < 0).any()) or not float(w.sum()) > 0:
            raise ValueError(f"weights must be non-negative of shape ({k},) with a positive sum")
        if volume not in ("exact", "paper"):
            raise ValueError(f"volume must be 'exact' or 'paper', got {volume!r}")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        self.means, self.covariances, self.weights = mu, 0.5 * (cov + cov.mT), w / w.sum()
        self.volume, self.steps = volume, steps
        self.log_method, self.log_options = log_method, log_options
        if draws is None:
            draws = standard_draws(num_samples, d, generator=generator, dtype=mu.dtype)
        draws = check_points(draws, "draws", dim=d)
        if draws.ndim != 2:
            raise ValueError(f"draws must have shape (S, d), got {tuple(draws.shape)}")
        self.draws = draws.to(device=mu.device, dtype=mu.dtype)
        self.mc = MonteCarloVolume.estimate(self.metric, mu, self.covariances, self.draws,
                                            volume, steps)  # fmt: skip
        note = self.mc.few_samples_note()
        if note:
            warn(NumericsWarning(f"LAND: {note}"))
        self.log_normalizer_step_error = self._halved_steps_change()
        note = self.few_steps_note()
        if note:
            warn(NumericsWarning(f"LAND: {note}"))
        super().__init__(torch.Size(), torch.Size([d]), validate_args=False)

    def _halved_steps_change(self) -> Tensor:
        """``|log C(steps) − log C(steps // 2)|`` per component ``(K,)`` with the same
        draws: the estimate of the RK4 error of :attr:`log_normalizers` (NaN for one step)."""
        if self.steps < 2:
            return torch.full_like(self.weights, torch.nan)
        coarse = MonteCarloVolume.estimate(self.metric, self.means, self.covariances,
                                           self.draws, self.volume, self.steps // 2)  # fmt: skip
        return (self.mc.log_normalizer - coarse.log_normalizer).abs()

    def few_steps_note(self) -> str:
        """A sentence on the components whose ``log C`` changed by more than
        :data:`STEPS_LOG_TOL` when the RK4 steps were halved, or ``""``."""
        change = self.log_normalizer_step_error
        over, changes = _listed_components(change > STEPS_LOG_TOL, change, ".1e")
        if not over:
            return ""
        return (
            f"the normalising constant of component(s) {over} changed by {changes} in log C "
            f"when the exponential maps' RK4 steps were halved ({self.steps} -> "
            f"{self.steps // 2}; tolerance {STEPS_LOG_TOL:g}): its integration error is about "
            "as large; raise steps"
        )

    @property
    def num_components(self) -> int:
        """K, the number of components."""
        return int(self.means.shape[0])

    @property
    def log_normalizers(self) -> Tensor:
        """``log C(μ_k, Σ_k)``, ``(K,)``."""
        return self.mc.log_normalizer

    def tangent_logs(self, x: Tensor) -> tuple[Tensor, list[Status]]:
        """``log_{μ_k}(x_n)`` for every component and point: ``(K, N, d)`` and ``K·N`` statuses."""
        x = check_points(x, "x", dim=self.means.shape[1])
        x = x.reshape(-1, x.shape[-1])
        k, n = self.num_components, x.shape[0]
        res = log_maps(self.metric, self.means.repeat_interleave(n, 0), x.repeat(k, 1),
                       method=self.log_method, options=self.log_options)  # fmt: skip
        return res.velocity.reshape(k, n, -1), res.status

    def component_log_prob(self, logs: Tensor, ok: Tensor | None = None) -> Tensor:
        """``log p_k(x_n)`` (w.r.t. ``dM``) from tangent logs ``(K, N, d)``: ``(K, N)``.

        Points whose log map failed (``ok`` false) get NaN.
        """
        sol = torch.linalg.solve(self.covariances[:, None], logs[..., None])[..., 0]
        out = -0.5 * (logs * sol).sum(-1) - self.log_normalizers[:, None]
        return out if ok is None else torch.where(ok, out, torch.nan)

    def log_prob(self, value: Tensor, *, measure: str = "riemannian") -> Tensor:
        """Log-density at points ``(..., d)`` -> ``(...)``; NaN where a log map failed.

        Args:
            value: the points.
            measure: ``"riemannian"`` (w.r.t. ``dM = √det G dz``, the LAND's own) or
                ``"lebesgue"`` (w.r.t. ``dz`` in latent coordinates, comparable with a
                Euclidean density: adds ``log √det G``).
        """
        if measure not in ("riemannian", "lebesgue"):
            raise ValueError(f"measure must be 'riemannian' or 'lebesgue', got {measure!r}")
        x = check_points(value, "value", dim=self.means.shape[1])
        logs, status = self.tangent_logs(x)
        ok = torch.tensor([s is Status.CONVERGED for s in status], device=x.device)
        comp = self.component_log_prob(logs, ok.reshape(logs.shape[:2]))
        out = torch.logsumexp(comp + self.weights.log()[:, None], 0)
        if measure == "lebesgue":
            out = out + log_volume_element(self.metric, x.reshape(-1, x.shape[-1]))
        return out.reshape(x.shape[:-1])

    def sample(  # type: ignore[override]
        self, sample_shape: torch.Size | tuple[int, ...] = (), *,
        oversample: int = 8, generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """Draw points by sampling-importance-resampling of ``exp_μ(v)``, ``v ~ N(0, Σ)``.

        Each draw picks a component by weight, proposes ``oversample`` tangent
        vectors and keeps one with probability ``∝ vol(v)``: the pushed-forward
        Gaussian reweighted to the LAND (exact as ``oversample → ∞``).

        Returns:
            Tensor ``(*sample_shape, d)``.
        """
        shape = torch.Size(sample_shape)
        n, d = max(1, math.prod(shape)), self.means.shape[1]
        dev, dt = self.means.device, self.means.dtype
        comp = torch.multinomial(self.weights.cpu(), n, replacement=True, generator=generator)
        comp = comp.to(dev)
        eps = torch.randn(n, oversample, d, generator=generator, dtype=dt).to(dev)
        chol = torch.linalg.cholesky(self.covariances)[comp]
        v = torch.einsum("nij,noj->noi", chol, eps).reshape(-1, d)
        base = self.means[comp].repeat_interleave(oversample, 0)
        with torch.no_grad():
            pts, log_vol = tangent_volume(
                self.metric, base, v, volume=self.volume, steps=self.steps
            )
        log_vol = torch.where(torch.isfinite(log_vol), log_vol, -torch.inf).reshape(n, oversample)
        pick = torch.multinomial(torch.softmax(log_vol, 1).cpu(), 1, generator=generator)[:, 0]
        out = pts.reshape(n, oversample, d)[torch.arange(n), pick.to(dev)]
        return out.reshape(*shape, d)
