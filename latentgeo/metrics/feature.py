"""Metrics of a decoder followed by a feature map (Michelis et al., eq. 3–4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor
from torch.distributions import Independent, Normal
from torch.func import jvp

from latentgeo._chunked import run_over_points
from latentgeo.metrics.base import Metric
from latentgeo.metrics.feature_diagonal import (
    DIAGONAL_METHODS,
    exact_feature_diagonal,
    hutchinson_feature_diagonal,
    rademacher_probes,
)
from latentgeo.metrics.jacobians import forward_jacobian

__all__ = ["FeatureMetric"]


def _check_diagonal(diagonal: object, probes: object, seed: object) -> tuple[str, int | None, int]:
    """The validated ``(diagonal, probes, seed)`` of :class:`FeatureMetric`."""
    if diagonal not in DIAGONAL_METHODS:
        raise ValueError(f"diagonal must be one of {DIAGONAL_METHODS}, got {diagonal!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if diagonal == "exact":
        if probes is not None:
            raise ValueError("probes is for diagonal='hutchinson'; the exact diagonal takes none")
        return "exact", None, seed
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be an int >= 1 with diagonal='hutchinson', got {probes!r}")
    return "hutchinson", probes, seed


def _mean_and_scale(output: object, batch: int) -> tuple[Tensor, Tensor | None]:
    """Split a decoder output into mean and std ``(N, m)``; std is ``None`` if deterministic."""
    if isinstance(output, Independent):
        output = output.base_dist
    if isinstance(output, Normal):
        loc, scale = torch.broadcast_tensors(output.loc, output.scale)
        return loc.reshape(batch, -1), scale.reshape(batch, -1)
    if isinstance(output, Tensor):
        return output.reshape(batch, -1), None
    raise TypeError(
        f"FeatureMetric needs a decoder returning a Tensor, Normal or Independent(Normal), "
        f"got {type(output).__name__}"
    )


class FeatureMetric(Metric):
    """The metric of a decoder ``z ↦ N(μ(z), σ(z)²)`` seen through a feature map ``h``.

    .. math::
        G(z) = J_μᵀ M_h J_μ + J_σᵀ \\operatorname{diag}(M_h) J_σ,
        \\qquad M_h = J_hᵀ J_h \\text{ at } μ(z),

    (Michelis et al., eq. 3–4). For a deterministic decoder the second term is
    absent and ``G`` is the pull-back through ``h ∘ μ``. ``h`` may be a
    classifier's logits (``c`` outputs) or any feature extractor.

    The diagonal ``diag(M_h)`` (see :mod:`latentgeo.metrics.feature_diagonal`)
    is built one of two ways, chosen by ``diagonal`` (never switched behind
    the user's back):

    * ``"exact"`` (default): ``min(c, m)`` products of ``h`` per point, ``c``
      reverse-mode products (one per feature) when ``h`` is narrower than its
      input ``m`` (a classifier on a 784-pixel image: ``c`` of them, not 784),
      else ``m`` forward-mode ones.
    * ``"hutchinson"``: ``probes`` reverse-mode products per point whatever
      ``c``, an unbiased estimate with ``probes`` Rademacher vectors, variance
      ``(2/s)(diag(M_h)_i² − Σ_k (∂h_k/∂x_i)⁴)`` per entry for ``s`` probes.
      Cheaper only when ``probes < min(c, m)``. The probes are drawn from
      ``seed`` for the points of each call (point ``n`` of a call gets the same
      probes whatever the chunks), so one call is reproducible; a solver that
      evaluates changing subsets of its pairs sees a slightly different metric
      as the subset changes, so ``"exact"`` suits geodesics best.

    Args:
        decoder: maps ``(N, d)`` to a Tensor, ``Normal`` or ``Independent(Normal)``
            of data shape ``(N, ...)``.
        feature: maps decoded data to features ``(N, ...)``; it receives the
            decoder's mean flattened to ``(N, m)``, or reshaped to
            ``(N, *data_shape)`` when ``data_shape`` is given.
        data_shape: the shape of one decoded sample (e.g. ``(1, 28, 28)``) given
            to ``feature``; ``None`` gives it the flat ``(N, m)`` mean.
        chunk_size: points per chunk (``None``: as many as the memory budget
            allows, see :mod:`latentgeo.memory`).
        latent_dim: ``d``, if known.
        diagonal: ``"exact"`` or ``"hutchinson"``, how ``diag(M_h)`` is built.
        probes: Rademacher probes per point for ``"hutchinson"`` (required
            there, ``>= 1``; not allowed with ``"exact"``).
        seed: seed of the probes (``"hutchinson"`` only).

    Example:
        >>> import torch
        >>> a = torch.randn(5, 2, dtype=torch.float64)
        >>> b = torch.randn(3, 5, dtype=torch.float64)
        >>> g = FeatureMetric(lambda z: z @ a.T, lambda x: x @ b.T)
        >>> g0 = g.metric_tensor(torch.zeros(2, dtype=torch.float64))
        >>> torch.allclose(g0, (b @ a).T @ (b @ a))
        True
    """

    def __init__(
        self,
        decoder: Callable[[Tensor], object],
        feature: Callable[[Tensor], Tensor],
        *,
        data_shape: tuple[int, ...] | None = None,
        chunk_size: int | None = None,
        latent_dim: int | None = None,
        diagonal: str = "exact",
        probes: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not callable(decoder):
            raise TypeError(f"decoder must be callable, got {type(decoder).__name__}")
        if not callable(feature):
            raise TypeError(f"feature must be callable, got {type(feature).__name__}")
        self.decoder = decoder
        self.feature = feature
        self.data_shape = data_shape
        self.chunk_size = chunk_size
        self.latent_dim = latent_dim
        self.diagonal, self.probes, self.seed = _check_diagonal(diagonal, probes, seed)

    def _flat_feature(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        if self.data_shape is not None:
            x = x.reshape(n, *self.data_shape)
        return self.feature(x).reshape(n, -1)

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor, bool]:
        """``(h(μ(z)) ⧺ σ(z), μ(z), stochastic)``, all flattened to ``(N, ·)``."""
        mean, scale = _mean_and_scale(self.decoder(z), z.shape[0])
        stochastic = scale is not None
        feats = self._flat_feature(mean)
        if scale is not None:
            feats = torch.cat([feats, scale], dim=-1)
        return feats, mean, stochastic

    def _feature_diag(self, x: Tensor, probes: Tensor | None, features: int) -> Tensor:
        """``diag(J_hᵀ J_h)`` at data points ``x (N, m)`` -> ``(N, m)`` for ``c = features``:
        exact, or Hutchinson's estimate with ``probes (s, N, c)``."""
        if probes is None:
            return exact_feature_diagonal(self._flat_feature, x, features=features)
        return hutchinson_feature_diagonal(self._flat_feature, x, probes)

    def _draw_probes(self, z: Tensor) -> Tensor | None:
        """The probes ``(s, N, c)`` of the points ``z (N, d)`` of one call (``None`` for the
        exact diagonal or a deterministic decoder); ``c`` from one point's features."""
        if self.probes is None:
            return None
        with torch.no_grad():
            feats, mean, stochastic = self._split(z[:1])
        if not stochastic:
            return None
        c = feats.shape[-1] - mean.shape[-1]
        return rademacher_probes(
            self.probes, z.shape[0], c, seed=self.seed, dtype=z.dtype, device=z.device
        )

    def _chunk_squared_norm(self, z: Tensor, v: Tensor, probes: Tensor | None) -> Tensor:
        stochastic: list[bool] = []

        def f(zz: Tensor) -> tuple[Tensor, Tensor]:
            feats, mean, is_stochastic = self._split(zz)
            stochastic.append(is_stochastic)
            return feats, mean

        _, jv, mean = cast(tuple[Tensor, Tensor, Tensor], jvp(f, (z,), (v,), has_aux=True))
        if not stochastic[0]:
            return (jv * jv).sum(-1)
        n_scale = mean.shape[1]
        jh, js = jv[:, :-n_scale], jv[:, -n_scale:]
        diag = self._feature_diag(mean, probes, jh.shape[-1])
        return (jh * jh).sum(-1) + (diag * js * js).sum(-1)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, vf = z.reshape(-1, d), v.reshape(-1, d)
        probes = self._draw_probes(zf)
        parts = run_over_points(
            lambda s: self._chunk_squared_norm(zf[s], vf[s], _rows(probes, s)),
            zf,
            owner=self,
            kind=f"squared_norm/{self.diagonal}",
            chunk_size=self.chunk_size,
        )
        return torch.cat(parts).reshape(batch)

    def _chunk_metric_tensor(self, z: Tensor, probes: Tensor | None) -> Tensor:
        _, mean, stochastic = self._split(z)
        jac = forward_jacobian(lambda zz: self._split(zz)[0], z)  # (N, c [+ m], d)
        if not stochastic:
            return jac.mT @ jac
        n_scale = mean.shape[1]
        jh, js = jac[:, :-n_scale], jac[:, -n_scale:]
        weights = self._feature_diag(mean, probes, jh.shape[1])  # (N, m)
        return jh.mT @ jh + js.mT @ (weights.unsqueeze(-1) * js)

    def _metric_tensor(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        zf = z.reshape(-1, d)
        probes = self._draw_probes(zf)
        parts = run_over_points(
            lambda s: self._chunk_metric_tensor(zf[s], _rows(probes, s)),
            zf,
            owner=self,
            kind=f"metric_tensor/{self.diagonal}",
            chunk_size=self.chunk_size,
        )
        return torch.cat(parts).reshape(*batch, d, d)


def _rows(probes: Tensor | None, s: slice) -> Tensor | None:
    """The probes of the points ``s`` (``None`` stays ``None``)."""
    return None if probes is None else probes[:, s]
