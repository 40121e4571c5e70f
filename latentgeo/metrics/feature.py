"""Metrics of a decoder followed by a feature map (Michelis et al., eq. 3–4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor
from torch.distributions import Independent, Normal
from torch.func import jvp, vjp, vmap

from latentgeo._chunked import run_over_points
from latentgeo.metrics.base import Metric
from latentgeo.metrics.jacobians import forward_jacobian

__all__ = ["FeatureMetric"]


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
    classifier's logits (``c`` outputs) or any feature extractor; ``diag(M_h)``
    is built by reverse mode when ``h`` is narrower than its input, forward
    mode otherwise.

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

    def _feature_diag(self, x: Tensor) -> Tensor:
        """``diag(J_hᵀ J_h)`` at data points ``x`` of shape ``(N, m)`` -> ``(N, m)``."""
        out, pull = vjp(self._flat_feature, x)[:2]
        n, c = out.shape
        m = x.shape[1]
        if c < m:
            basis = torch.eye(c, dtype=x.dtype, device=x.device).unsqueeze(1).expand(c, n, c)
            rows = vmap(pull)(basis)[0]  # (c, N, m)
            return (rows * rows).sum(0)
        jac = forward_jacobian(self._flat_feature, x)  # (N, c, m)
        return (jac * jac).sum(1)

    def _chunk_squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
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
        return (jh * jh).sum(-1) + (self._feature_diag(mean) * js * js).sum(-1)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, vf = z.reshape(-1, d), v.reshape(-1, d)
        parts = run_over_points(
            lambda s: self._chunk_squared_norm(zf[s], vf[s]),
            zf,
            owner=self,
            kind="squared_norm",
            chunk_size=self.chunk_size,
        )
        return torch.cat(parts).reshape(batch)

    def _chunk_metric_tensor(self, z: Tensor) -> Tensor:
        _, mean, stochastic = self._split(z)
        jac = forward_jacobian(lambda zz: self._split(zz)[0], z)  # (N, c [+ m], d)
        if not stochastic:
            return jac.mT @ jac
        n_scale = mean.shape[1]
        jh, js = jac[:, :-n_scale], jac[:, -n_scale:]
        weights = self._feature_diag(mean)  # (N, m)
        return jh.mT @ jh + js.mT @ (weights.unsqueeze(-1) * js)

    def _metric_tensor(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        zf = z.reshape(-1, d)
        parts = run_over_points(
            lambda s: self._chunk_metric_tensor(zf[s]),
            zf,
            owner=self,
            kind="metric_tensor",
            chunk_size=self.chunk_size,
        )
        return torch.cat(parts).reshape(*batch, d, d)
