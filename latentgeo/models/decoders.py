"""Stochastic decoders ``p(x | z)`` whose metrics latentgeo knows.

* :class:`GaussianDecoder` returns ``Normal(μ(z), σ(z))``; its metric
  (:func:`latentgeo.metrics.as_metric`) is the expected metric
  ``J_μᵀ J_μ + J_σᵀ J_σ``. ``σ`` comes from a network, from an
  :class:`~latentgeo.models.RBFPrecision`, or is a constant.
* :class:`BernoulliDecoder` returns ``Bernoulli(logits=f(z))``; its metric is
  the pull-back of the Fisher–Rao metric.

A plain network returning a Tensor (e.g. an :class:`~latentgeo.models.MLP`)
is a deterministic decoder, with the pull-back metric ``Jᵀ J``.

All of them are batch-separable and free of data-dependent control flow (the
distributions are built with ``validate_args=False``), so the metrics'
``torch.func.jvp``/``vmap`` work through them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from latentgeo.models.config import from_spec, register_model, to_spec

__all__ = ["BernoulliDecoder", "GaussianDecoder", "output_mean", "output_sample"]


@register_model
class GaussianDecoder(nn.Module):
    """``p(x | z) = N(μ(z), diag σ(z)²)``.

    Args:
        mean_net: the mean network ``(N, d) -> (N, D)``.
        scale: ``σ``: a module ``(N, d) -> (N, D)`` returning positive values
            (an :class:`~latentgeo.models.RBFPrecision`, or e.g.
            ``MLP(d, D, output_activation="softplus")``), or a positive
            number for a constant ``σ`` (then ``J_σ = 0`` and the metric is
            ``J_μᵀ J_μ``).

    Example:
        >>> import torch
        >>> from latentgeo.models import MLP, RBFPrecision
        >>> from latentgeo.metrics import as_metric
        >>> dec = GaussianDecoder(MLP(2, 3, hidden=(8,)), RBFPrecision(2, 3, num_centres=4))
        >>> p = dec(torch.zeros(5, 2))
        >>> type(p).__name__, p.mean.shape
        ('Normal', torch.Size([5, 3]))
        >>> as_metric(dec).metric_tensor(torch.zeros(5, 2)).shape
        torch.Size([5, 2, 2])
    """

    def __init__(self, mean_net: nn.Module, scale: nn.Module | float) -> None:
        super().__init__()
        if not isinstance(mean_net, nn.Module):
            raise TypeError(f"mean_net must be an nn.Module, got {type(mean_net).__name__}")
        self.mean_net = mean_net
        self.scale: nn.Module | None
        if isinstance(scale, nn.Module):
            self.scale = scale
            self.constant_scale: float | None = None
        elif isinstance(scale, (int, float)) and not isinstance(scale, bool):
            if not (scale > 0 and math.isfinite(scale)):
                raise ValueError(f"a constant scale must be finite and positive, got {scale!r}")
            self.scale = None
            self.constant_scale = float(scale)
        else:
            raise TypeError(
                f"scale must be an nn.Module or a positive number, got {type(scale).__name__}"
            )

    def forward(self, z: Tensor) -> Normal:
        """``p(x | z)`` with batch shape ``(N, D)``."""
        mu = self.mean_net(z)
        if self.scale is None:
            sigma = torch.full_like(mu, float(self.constant_scale))  # type: ignore[arg-type]
        else:
            sigma = self.scale(z)
        return Normal(mu, sigma, validate_args=False)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        scale = self.constant_scale if self.scale is None else to_spec(self.scale)
        return {"mean_net": to_spec(self.mean_net), "scale": scale}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GaussianDecoder:
        """Rebuild from :meth:`config` (fresh weights)."""
        scale = config["scale"]
        if not isinstance(scale, (int, float)):
            scale = from_spec(scale)
        return cls(from_spec(config["mean_net"]), scale)


@register_model
class BernoulliDecoder(nn.Module):
    """``p(x | z) = Bernoulli(logits = f(z))``, for binary (or [0, 1]) data.

    Its metric is the pull-back of the Fisher–Rao metric of the Bernoulli
    family, ``Σ_k (∂p_k)ᵀ(∂p_k) / (p_k (1 − p_k))``.

    Args:
        logits: the network ``(N, d) -> (N, D)`` giving the logits.

    Example:
        >>> import torch
        >>> from latentgeo.models import MLP
        >>> dec = BernoulliDecoder(MLP(2, 4, hidden=(8,)))
        >>> dec(torch.zeros(3, 2)).probs.shape
        torch.Size([3, 4])
    """

    def __init__(self, logits: nn.Module) -> None:
        super().__init__()
        if not isinstance(logits, nn.Module):
            raise TypeError(f"logits must be an nn.Module, got {type(logits).__name__}")
        self.logits = logits

    def forward(self, z: Tensor) -> Bernoulli:
        """``p(x | z)`` with batch shape ``(N, D)``."""
        return Bernoulli(logits=self.logits(z), validate_args=False)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        return {"logits": to_spec(self.logits)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BernoulliDecoder:
        """Rebuild from :meth:`config` (fresh weights)."""
        return cls(from_spec(config["logits"]))


def output_mean(output: object) -> Tensor:
    """The mean of a decoder's output: a Tensor itself, or a distribution's ``mean``.

    Raises:
        TypeError: ``output`` is neither a Tensor nor a distribution.
    """
    if isinstance(output, Tensor):
        return output
    if isinstance(output, Distribution):
        return output.mean
    raise TypeError(
        f"a decoder must return a Tensor or a distribution, got {type(output).__name__}"
    )


def output_sample(output: object, generator: torch.Generator | None = None) -> Tensor:
    """One draw from a decoder's output (a Tensor as is), reproducible with ``generator``.

    Supports ``Normal``, ``Independent(Normal)`` and ``Bernoulli``; other
    distributions fall back to their own ``sample()`` (global RNG).
    """
    if isinstance(output, Tensor):
        return output
    base = output.base_dist if isinstance(output, Independent) else output
    if isinstance(base, Normal):
        loc, scale = base.loc, base.scale
        noise = torch.randn(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)
        return loc + scale * noise
    if isinstance(base, Bernoulli):
        p = base.probs
        u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        return (u < p).to(p.dtype)
    if isinstance(output, Distribution):
        return output.sample()
    raise TypeError(
        f"a decoder must return a Tensor or a distribution, got {type(output).__name__}"
    )
