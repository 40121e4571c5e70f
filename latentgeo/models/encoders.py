"""Encoders: amortised Gaussian posteriors ``q(z | x)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from latentgeo.models.config import register_model
from latentgeo.models.nets import MLP

__all__ = ["GaussianEncoder"]

# log-variance is clamped to this range so that exp() neither overflows nor underflows
_LOGVAR_MIN, _LOGVAR_MAX = -30.0, 20.0


@register_model
class GaussianEncoder(nn.Module):
    """``q(z | x) = N(μ(x), diag σ²(x))`` with ``(μ, log σ²)`` from one :class:`MLP`.

    Inputs of any trailing shape are flattened, so images ``(N, 1, 28, 28)``
    work with ``in_dim = 784``.

    Args:
        in_dim: data dimension ``D`` (after flattening).
        latent_dim: latent dimension ``d``.
        hidden: hidden widths of the MLP.
        activation: hidden activation (see :data:`latentgeo.models.nets.ACTIVATIONS`).

    Example:
        >>> import torch
        >>> enc = GaussianEncoder(4, 2, hidden=(8,))
        >>> q = enc(torch.zeros(3, 4))
        >>> q.mean.shape, bool((q.stddev > 0).all())
        (torch.Size([3, 2]), True)
    """

    def __init__(
        self,
        in_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        self.net = MLP(in_dim, 2 * latent_dim, hidden, activation=activation)
        self.in_dim = in_dim
        self.latent_dim = latent_dim

    def forward(self, x: Tensor) -> Normal:
        """``q(z | x)`` for ``x`` of shape ``(N, D)`` (or ``(N, ...)``), batch shape ``(N, d)``."""
        h = self.net(x.reshape(x.shape[0], -1))
        mean, logvar = h.split(self.latent_dim, dim=-1)
        std = torch.exp(0.5 * logvar.clamp(_LOGVAR_MIN, _LOGVAR_MAX))
        return Normal(mean, std, validate_args=False)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        return {
            "in_dim": self.in_dim,
            "latent_dim": self.latent_dim,
            "hidden": list(self.net.hidden),
            "activation": self.net.activation,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GaussianEncoder:
        """Rebuild from :meth:`config` (fresh weights)."""
        return cls(**config)
