"""From a decoder (or anything metric-like) to its :class:`Metric`.

``as_metric`` dispatches on the type of the object (``functools.singledispatch``,
open to extension with ``as_metric.register``):

=============================================  =============================================
the object                                     its metric
=============================================  =============================================
a :class:`Metric`                              itself
a list, tuple or ``nn.ModuleList`` of decoders  the mean of the members' metrics
(and :class:`~latentgeo.models.EnsembleDecoder`,
registered by :mod:`latentgeo.models`)
any other callable (decoder)                   the pull-back of ``output_embedding`` of what
                                               it returns: Jᵀ J for a Tensor, the expected
                                               metric for a Normal, Fisher–Rao for
                                               Bernoulli/Categorical
=============================================  =============================================

A decoder followed by a feature map is :class:`~latentgeo.metrics.FeatureMetric`.

This module knows nothing of :mod:`latentgeo.models`: the models register
their own rules (``as_metric.register``, ``embedding_module.register``) when
they are imported, so the layers stay one-way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from typing import Any

from torch import Tensor, nn

from latentgeo.metrics.base import Metric
from latentgeo.metrics.embeddings import DecoderEmbedding, embedding_module
from latentgeo.metrics.ensemble import MeanMetric
from latentgeo.metrics.pullback import PullbackMetric

__all__ = ["MetricLike", "as_metric", "ensemble_metric", "expected_metric"]

MetricLike = Metric | Callable[..., Any] | list[Any] | tuple[Any, ...] | nn.ModuleList


@singledispatch
def as_metric(obj: object) -> Metric:
    """The Riemannian metric a decoder induces on its latent space.

    Args:
        obj: a :class:`Metric` (returned as is), a decoder (a module or function
            mapping ``(N, d)`` to a Tensor or a ``torch.distributions`` object),
            or an ensemble of decoders.

    Returns:
        A :class:`Metric`. Decoders give pull-back metrics whose ``squared_norm``
        is one forward-mode product.

    Raises:
        TypeError: ``obj`` is neither a metric, a callable nor a collection of decoders.

    Example:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> decoder = lambda z: Normal(2 * z, torch.exp(z))  # μ = 2z, σ = exp(z)
        >>> as_metric(decoder).metric_tensor(torch.zeros(2))  # 4 I + I
        tensor([[5., 0.],
                [0., 5.]])
    """
    if callable(obj):
        fast = embedding_module(obj)
        return PullbackMetric(fast if fast is not None else DecoderEmbedding(obj))
    raise TypeError(
        f"cannot make a metric from {type(obj).__name__}: expected a latentgeo Metric, a decoder "
        "(callable returning a Tensor, Normal, Independent(Normal), Bernoulli or Categorical), "
        "or an ensemble of decoders (EnsembleDecoder, list, tuple or nn.ModuleList)"
    )


@as_metric.register
def _(obj: Metric) -> Metric:
    return obj


def ensemble_metric(members: list[Any] | tuple[Any, ...] | nn.ModuleList) -> Metric:
    """The mean of the members' metrics, ``(1/K) Σ_k G_k``.

    Args:
        members: K decoders (or metrics), K >= 1.

    Returns:
        A :class:`~latentgeo.metrics.MeanMetric`.
    """
    if len(members) == 0:
        raise ValueError("an ensemble of decoders needs at least one member, got none")
    return MeanMetric([as_metric(m) for m in members])


@as_metric.register(list)
@as_metric.register(tuple)
@as_metric.register(nn.ModuleList)
def _(obj: list[Any] | tuple[Any, ...] | nn.ModuleList) -> Metric:
    return ensemble_metric(obj)


def expected_metric(decoder: MetricLike, z: Tensor) -> Tensor:
    """The (expected) metric tensor of a decoder at ``z``: ``as_metric(decoder).metric_tensor(z)``.

    Args:
        decoder: anything :func:`as_metric` accepts.
        z: points of shape ``(..., d)``.

    Returns:
        Tensor of shape ``(..., d, d)``.

    Example:
        >>> import torch
        >>> expected_metric(lambda z: 3 * z, torch.zeros(1, 2))
        tensor([[[9., 0.],
                 [0., 9.]]])
    """
    return as_metric(decoder).metric_tensor(z)
