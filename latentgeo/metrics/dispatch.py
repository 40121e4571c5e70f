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
                                               Bernoulli/Categorical/ContinuousBernoulli
=============================================  =============================================

Decoders are checked when their metric is built: ``output=`` picks the value
of a container output (:mod:`latentgeo.metrics.outputs`), and one probe call
on a zero latent point of the given or inferred size (:mod:`latentgeo.metrics.probe`)
makes a wrong latent size or an unusable output fail here, not in a solver.
Registered implementations receive the keyword options ``output`` and
``latent_dim`` when the caller gives them.

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
from latentgeo.metrics.checks import check_eval_mode
from latentgeo.metrics.embeddings import DecoderEmbedding, embedding_module
from latentgeo.metrics.ensemble import MeanMetric
from latentgeo.metrics.outputs import OutputSpec, check_output_spec
from latentgeo.metrics.probe import (
    LatentSize,
    check_latent_dim,
    check_output_symbolically,
    infer_latent_dim,
    probe,
)
from latentgeo.metrics.pullback import PullbackMetric

__all__ = ["MetricLike", "as_metric", "decoder_metric", "ensemble_metric", "expected_metric"]

MetricLike = Metric | Callable[..., Any] | list[Any] | tuple[Any, ...] | nn.ModuleList


@singledispatch
def as_metric(obj: object, *, output: OutputSpec = None, latent_dim: int | None = None) -> Metric:
    """The Riemannian metric a decoder induces on its latent space.

    Args:
        obj: a :class:`Metric` (returned as is), a decoder (a module or function
            mapping ``(N, d)`` to a Tensor, a ``torch.distributions`` object, or a
            container of one: dict, dataclass, named tuple, pythae ``ModelOutput``),
            an ensemble of decoders, or a pythae model (:mod:`latentgeo.interop.pythae`).
        output: which value of the decoder's output the metric is made of: ``None``
            (a Tensor or distribution, or the only one in a container), a key or
            attribute name (``"reconstruction"``), an index, or a callable taking
            what the decoder returns (``lambda out: Bernoulli(probs=out.x)``).
        latent_dim: the latent dimension ``d``. Inferred from the decoder's first
            layer where it is an ``nn.Linear``; given or inferred, the decoder is
            called once on a zero point ``(1, d)`` here, and the metric checks that
            its inputs have ``d`` coordinates.

    Returns:
        A :class:`Metric`. Decoders give pull-back metrics whose ``squared_norm``
        is one forward-mode product.

    Raises:
        TypeError: ``obj`` is neither a metric, a callable nor a collection of
            decoders, or the probe call returned something without a metric (the
            message lists what was returned and how to pick from it).
        ValueError: ``latent_dim`` disagrees with the decoder's first layer, or
            the decoder fails on a latent point of that size.

    Example:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> decoder = lambda z: Normal(2 * z, torch.exp(z))  # μ = 2z, σ = exp(z)
        >>> as_metric(decoder).metric_tensor(torch.zeros(2))  # 4 I + I
        tensor([[5., 0.],
                [0., 5.]])
        >>> net = torch.nn.Sequential(torch.nn.Linear(16, 4))
        >>> as_metric(lambda z: {"x": net(z)}).latent_dim  # inferred, and probed once
        16
        >>> as_metric(net, latent_dim=8)
        Traceback (most recent call last):
        ...
        ValueError: decoder Sequential expects latent dimension 16 (its first layer '0' is \
Linear(in_features=16)), got latent_dim=8
    """
    if callable(obj):
        return decoder_metric(obj, output=output, latent_dim=latent_dim)
    raise TypeError(
        f"cannot make a metric from {type(obj).__name__}: expected a latentgeo Metric, a decoder "
        "(callable returning a Tensor, Normal, Independent(Normal), Bernoulli, Categorical or "
        "ContinuousBernoulli, or a container of one), or an ensemble of decoders "
        "(EnsembleDecoder, list, tuple or nn.ModuleList)"
    )


def decoder_metric(
    decoder: object, *, output: OutputSpec = None, latent_dim: int | None = None
) -> PullbackMetric:
    """The pull-back metric of a decoder (what :func:`as_metric` gives any callable).

    Args:
        decoder: a module or function taking ``(N, d)``.
        output: see :func:`as_metric`.
        latent_dim: see :func:`as_metric`.

    Returns:
        A :class:`PullbackMetric` whose ``latent_dim`` is the checked latent size
        (``None`` if it is neither given nor inferable).
    """
    if not callable(decoder):
        raise TypeError(f"decoder must be callable, got {type(decoder).__name__}")
    output = check_output_spec(output)
    dim = check_latent_dim(latent_dim)
    check_eval_mode(decoder)  # before the probe: a module in training mode must not run
    fast = embedding_module(decoder) if output is None else None
    embed = fast if fast is not None else DecoderEmbedding(decoder, output)
    inferred = infer_latent_dim(embed, decoder)
    name = getattr(decoder, "__name__", type(decoder).__name__)
    if dim is not None and inferred is not None and inferred.dim != dim:
        raise ValueError(
            f"decoder {name} expects latent dimension {inferred.dim} ({inferred.source}), "
            f"got latent_dim={dim}"
        )
    size = LatentSize(dim, "latent_dim") if dim is not None else inferred
    if size is not None:
        probe(embed, decoder, size)
    else:
        check_output_symbolically(embed)
    metric = PullbackMetric(embed, latent_dim=size.dim if size is not None else None)
    if output is None:  # the metric depends on the decoder alone: share its footprints
        metric._footprint_source = decoder
    return metric


@as_metric.register
def _(obj: Metric, *, output: OutputSpec = None, latent_dim: int | None = None) -> Metric:
    if output is not None:
        raise TypeError(f"output= picks from a decoder's output; {type(obj).__name__} is a metric")
    dim = check_latent_dim(latent_dim)
    if dim is not None and obj.latent_dim is not None and obj.latent_dim != dim:
        raise ValueError(
            f"the metric {type(obj).__name__} has latent dimension {obj.latent_dim}, "
            f"got latent_dim={dim}"
        )
    return obj


def ensemble_metric(members: list[Any] | tuple[Any, ...] | nn.ModuleList, **options: Any) -> Metric:
    """The mean of the members' metrics, ``(1/K) Σ_k G_k``.

    Args:
        members: K decoders (or metrics), K >= 1.
        options: ``output`` and ``latent_dim``, passed to :func:`as_metric` for each member.

    Returns:
        A :class:`~latentgeo.metrics.MeanMetric`.
    """
    if len(members) == 0:
        raise ValueError("an ensemble of decoders needs at least one member, got none")
    metrics = []
    for k, member in enumerate(members):
        try:
            metrics.append(as_metric(member, **options))
        except (TypeError, ValueError) as err:  # say which member, keep the error's type
            raise _in_member(err, f"ensemble member {k} of {len(members)}: {err}") from err
    return MeanMetric(metrics)


def _in_member(err: Exception, message: str) -> Exception:
    """``err``'s type with ``message`` (its base kind where that type takes other arguments)."""
    try:
        return type(err)(message)
    except TypeError:
        return (TypeError if isinstance(err, TypeError) else ValueError)(message)


@as_metric.register(list)
@as_metric.register(tuple)
@as_metric.register(nn.ModuleList)
def _(obj: list[Any] | tuple[Any, ...] | nn.ModuleList, **options: Any) -> Metric:
    return ensemble_metric(obj, **options)


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
