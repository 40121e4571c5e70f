"""Metrics of a decoder followed by a feature map (Michelis et al., eq. 3–4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor
from torch.func import jvp

from latentgeo._chunked import run_over_points
from latentgeo.metrics.base import Metric
from latentgeo.metrics.checks import check_eval_mode
from latentgeo.metrics.ensemble import MeanMetric, ensemble_members
from latentgeo.metrics.feature_decoder import DecoderJets
from latentgeo.metrics.feature_diagonal import (
    DIAGONAL_METHODS,
    exact_feature_diagonal,
    feature_jacobian,
    hutchinson_feature_diagonal,
    rademacher_probes,
    sequential_rows,
)
from latentgeo.metrics.forward.kinks import kinked_operations
from latentgeo.metrics.jacobians import push_tangents
from latentgeo.metrics.pullback_parts import check_points_reach

__all__ = ["FeatureMetric", "feature_metric"]


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
      else ``m`` forward-mode ones. The Jacobian ``J_h`` they give also makes
      ``J_h J_μ`` (no separate pass of ``h``). For an ``nn.Sequential`` of linear
      layers, convolutions, elementwise activations and reshapes the rows are
      pulled back layer by layer
      (:func:`~latentgeo.metrics.feature_diagonal.sequential_rows`: the same
      numbers, about 3× cheaper with the energy's gradient through them).
    * ``"hutchinson"``: ``probes`` reverse-mode products per point whatever
      ``c`` (pulled back layer by layer too for an ``nn.Sequential``), an
      unbiased estimate with ``probes`` Rademacher vectors, variance
      ``(2/s)(diag(M_h)_i² − Σ_k (∂h_k/∂x_i)⁴)`` per entry for ``s`` probes.
      Cheaper only when ``probes < min(c, m)``. The ``s`` probes are drawn once
      from ``seed`` and shared by every point, so the estimate is a fixed,
      smooth function of ``z``: the same at a point whatever the call, chunk or
      batch it comes in (a solver's energy does not change as its pairs drop
      out). The price: its errors at different points are correlated (one draw
      for all), so they do not average out along a curve.

    The decoder's ``μ``, ``σ`` and their derivatives come from the forward engine
    where its traced embedding is exactly ``(μ, σ)`` (a ``GaussianDecoder``, a
    traceable module), else from ``torch.func`` (see
    :mod:`~latentgeo.metrics.feature_decoder`).

    One decoder: the feature metric of an ensemble is
    :func:`feature_metric`'s mean of its members'.

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

    Raises:
        TypeError: ``decoder`` is an ensemble (use :func:`feature_metric`), or it or
            ``feature`` is not callable.
        ValueError: a layer of ``decoder`` or ``feature`` is in training mode (Dropout,
            BatchNorm: call ``.eval()``), or an option is out of range.

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
        members = ensemble_members(decoder)
        if members is not None:
            raise TypeError(
                f"decoder must be one decoder, got an ensemble of {len(members)} "
                f"({type(decoder).__name__}); its feature metric, the mean of the members' "
                "(1/K) Σ_k G_k, is latentgeo.metrics.feature_metric(decoder, feature, ...)"
            )
        if not callable(decoder):
            raise TypeError(f"decoder must be callable, got {type(decoder).__name__}")
        if not callable(feature):
            raise TypeError(f"feature must be callable, got {type(feature).__name__}")
        check_eval_mode(decoder, "decoder")  # a random or batch-dependent layer: no metric
        check_eval_mode(feature, "feature")
        self.decoder = decoder
        self.feature = feature
        self.data_shape = data_shape
        self.chunk_size = chunk_size
        self.latent_dim = latent_dim
        self.diagonal, self.probes, self.seed = _check_diagonal(diagonal, probes, seed)
        self._jets = DecoderJets(decoder)

    def check_like(self, z: Tensor) -> None:
        check_eval_mode(self.decoder, "decoder", built=True)  # before anything runs them
        check_eval_mode(self.feature, "feature", built=True)
        check_points_reach(self.decoder, z, self._squared_norm)

    def kinks(self) -> tuple[str, ...]:
        decoder = kinked_operations(self.decoder)
        return decoder + tuple(f"feature's {k}" for k in kinked_operations(self.feature))

    def _flat_feature(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        if self.data_shape is not None:
            x = x.reshape(n, *self.data_shape)
        return self.feature(x).reshape(n, -1)

    def _feature_diag(self, x: Tensor, probes: Tensor | None, features: int) -> Tensor:
        """``diag(J_hᵀ J_h)`` at data points ``x (N, m)`` -> ``(N, m)`` for ``c = features``:
        exact, or Hutchinson's estimate with the shared ``probes (s, 1, c)`` (pulled back
        layer by layer where :func:`~latentgeo.metrics.feature_diagonal.sequential_rows`
        applies, else by ``torch.func``)."""
        if probes is None:
            return exact_feature_diagonal(self._flat_feature, x, features=features)
        feature = cast(torch.nn.Module, self.feature)
        rows = sequential_rows(
            feature, x, self.data_shape, below=x.shape[1], cotangents=probes[:, 0]
        )
        if rows is not None:
            return (rows * rows).mean(0)
        return hutchinson_feature_diagonal(self._flat_feature, x, probes)

    def _draw_probes(self, z: Tensor) -> Tensor | None:
        """The probes ``(s, 1, c)`` shared by every point (``None`` for the exact diagonal
        or a deterministic decoder), drawn from ``seed``; ``c`` from one point of ``z``."""
        if self.probes is None:
            return None
        with torch.no_grad():
            decoded = self._decoded(z[:1])
            if len(decoded) == 1:
                return None
            c = self._flat_feature(decoded[0]).shape[-1]
        return rademacher_probes(self.probes, 1, c, seed=self.seed, dtype=z.dtype, device=z.device)

    def _decoded(self, z: Tensor) -> tuple[Tensor, ...]:
        """``(μ(z),)`` (deterministic decoder) or ``(μ(z), σ(z))`` (Gaussian), each ``(N, m)``."""
        return self._jets.decoded(z)

    def _feature_jacobian(self, mean: Tensor) -> Tensor:
        """``J_h (N, c, m)`` at decoded means ``(N, m)``: by hand for an ``nn.Sequential``
        of common layers (:func:`~latentgeo.metrics.feature_diagonal.sequential_rows`),
        else by ``torch.func`` (:func:`~latentgeo.metrics.feature_diagonal.feature_jacobian`)."""
        feature = cast(torch.nn.Module, self.feature)
        rows = sequential_rows(feature, mean, self.data_shape, below=mean.shape[1])
        if rows is not None:
            return rows.permute(1, 0, 2)
        return feature_jacobian(self._flat_feature, mean)

    def _chunk_squared_norm(self, z: Tensor, v: Tensor, probes: Tensor | None) -> Tensor:
        """``‖J_h J_μ v‖² + Σ_i diag(M_h)_i (J_σ v)_i²`` for one chunk: one JVP of the decoder,
        then ``h`` at ``μ``: with the exact diagonal, ``J_h`` (``min(c, m)`` products) serves
        both terms (``J_h J_μ v`` is a product with its rows); else one JVP of ``h``."""
        decoded, tangents = self._jets.values_and_jvp(z, v)
        mean, t_mean = decoded[0], tangents[0]
        if len(decoded) == 2 and self.diagonal == "exact":
            j_h = self._feature_jacobian(mean)
            jh = (j_h @ t_mean.unsqueeze(-1)).squeeze(-1)  # (N, c)
            diag = (j_h * j_h).sum(1)  # (N, m)
        else:
            jh = cast(Tensor, jvp(self._flat_feature, (mean,), (t_mean,))[1])
            if len(decoded) == 1:
                return (jh * jh).sum(-1)
            diag = self._feature_diag(mean, probes, jh.shape[-1])
        js = tangents[1]
        return (jh * jh).sum(-1) + (diag * js * js).sum(-1)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, vf = z.reshape(-1, d), v.reshape(-1, d)
        probes = self._draw_probes(zf)
        parts = run_over_points(
            lambda s: self._chunk_squared_norm(zf[s], vf[s], probes),
            zf,
            owner=self,
            kind=f"squared_norm/{self.diagonal}",
            chunk_size=self.chunk_size,
        )
        return torch.cat(parts).reshape(batch)

    def _chunk_metric_tensor(self, z: Tensor, probes: Tensor | None) -> Tensor:
        """``G`` of one chunk: the decoder's Jacobians (``d`` JVPs), then ``J_h J_μ`` as the
        product of ``J_h`` (exact diagonal: ``min(c, m)`` products, reused for ``diag(M_h)``)
        with ``J_μ``, or as ``d`` JVPs of ``h`` (Hutchinson's diagonal, or none)."""
        decoded, jac = self._jets.values_and_jacobian(z)  # jac: (N, m[+m], d)
        parts, mean = len(decoded), decoded[0]
        n_mean = mean.shape[1]
        j_mu = jac[:, :n_mean]
        if parts == 2 and self.diagonal == "exact":
            j_h = self._feature_jacobian(mean)
            j_comp = j_h @ j_mu  # (N, c, d)
            weights = (j_h * j_h).sum(1)  # (N, m)
        else:
            j_comp = push_tangents(self._flat_feature, mean, j_mu.permute(2, 0, 1))
            j_comp = j_comp.permute(1, 2, 0)  # (N, c, d)
            if parts == 1:
                return j_comp.mT @ j_comp
            weights = self._feature_diag(mean, probes, j_comp.shape[1])
        js = jac[:, n_mean:]
        return j_comp.mT @ j_comp + js.mT @ (weights.unsqueeze(-1) * js)

    def _metric_tensor(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        zf = z.reshape(-1, d)
        probes = self._draw_probes(zf)
        parts = run_over_points(
            lambda s: self._chunk_metric_tensor(zf[s], probes),
            zf,
            owner=self,
            kind=f"metric_tensor/{self.diagonal}",
            chunk_size=self.chunk_size,
        )
        return torch.cat(parts).reshape(*batch, d, d)


def feature_metric(decoder: Any, feature: Callable[[Tensor], Tensor], **options: Any) -> Metric:
    """The feature metric of a decoder or of an ensemble of decoders.

    For one decoder, :class:`FeatureMetric` ``(decoder, feature, **options)``. For an
    ensemble (an :class:`~latentgeo.models.EnsembleDecoder`, a list, tuple or
    ``nn.ModuleList`` of decoders: see :func:`~latentgeo.metrics.ensemble.ensemble_members`)
    the mean of the members' feature metrics,

    .. math::
        G(z) = \\frac{1}{K} \\sum_k J_{μ_k}ᵀ M_h(μ_k) J_{μ_k}
               + J_{σ_k}ᵀ \\operatorname{diag}(M_h(μ_k)) J_{σ_k},

    the expected metric of Syrota et al. seen through ``h`` (a
    :class:`~latentgeo.metrics.MeanMetric`). Each member gets the same options
    (with ``diagonal="hutchinson"``, the same probes).

    Args:
        decoder: a decoder or an ensemble of decoders.
        feature: the feature map ``h``, shared by every member.
        options: keyword options of :class:`FeatureMetric`.

    Returns:
        A :class:`FeatureMetric`, or a :class:`~latentgeo.metrics.MeanMetric` of them.

    Example:
        >>> import torch
        >>> h = lambda x: x[:, :1]  # the first coordinate
        >>> g = feature_metric([lambda z: 2 * z, lambda z: 4 * z], h)
        >>> g.metric_tensor(torch.zeros(2))  # (2² + 4²) / 2 on the first axis
        tensor([[10.,  0.],
                [ 0.,  0.]])
    """
    members = ensemble_members(decoder)
    if members is None:
        return FeatureMetric(decoder, feature, **options)
    if len(members) == 0:
        raise ValueError("decoder is an ensemble with no members; it needs at least one")
    return MeanMetric([FeatureMetric(m, feature, **options) for m in members])
