"""Small random metrics of every kind latentgeo knows, for property tests.

``METRIC_KINDS`` maps a name to a factory ``(d, seed, dtype) -> Metric``; a new
metric kind joins every property test by adding one line here. The decoders
are tiny (hidden width 8) and seeded, so a test can build hundreds.

Example:
    >>> import torch
    >>> metric = make_metric("gaussian", 3, seed=0, dtype=torch.float64)
    >>> metric.metric_tensor(torch.zeros(2, 3, dtype=torch.float64)).shape
    torch.Size([2, 3, 3])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import ContinuousBernoulli

from latentgeo.metrics import (
    ExplicitMetric,
    FeatureMetric,
    LocalPCAMetric,
    Metric,
    RHVAEMetric,
    as_metric,
)
from latentgeo.models import MLP, BernoulliDecoder, EnsembleDecoder, GaussianDecoder
from latentgeo.testing.geometries import PoincareDisk

__all__ = ["METRIC_KINDS", "make_metric"]

OUT = 5  # output size of the random decoders
HIDDEN = (8,)


def _mlp(d: int, m: int = OUT) -> nn.Module:
    return MLP(d, m, HIDDEN, activation="tanh")


def _gaussian(d: int) -> nn.Module:
    scale = MLP(d, OUT, HIDDEN, activation="tanh", output_activation="softplus")
    return GaussianDecoder(_mlp(d), scale)


class _ContinuousBernoulliDecoder(nn.Module):
    """``z ↦ ContinuousBernoulli(logits=f(z))`` (no model class of latentgeo returns one)."""

    def __init__(self, logits: nn.Module) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, z: Tensor) -> ContinuousBernoulli:
        return ContinuousBernoulli(logits=self.logits(z), validate_args=False)


def _spd_field(d: int, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
    """``G(z) = A(z) A(z)ᵀ + 0.1 I`` with ``A(z)`` entries quadratic in ``z``: smooth and SPD."""
    coef = torch.randn(3, d, d, dtype=dtype)

    def tensor_fn(z: Tensor) -> Tensor:
        a = coef[0] + torch.einsum("...k,ij->...ij", z, coef[1]) / d
        a = a + torch.einsum("...k,...k,ij->...ij", z, z, coef[2]) / d**2
        return a @ a.mT + 0.1 * torch.eye(d, dtype=z.dtype, device=z.device)

    return tensor_fn


def _rhvae(d: int, dtype: torch.dtype) -> Metric:
    centroids = torch.randn(6, d, dtype=dtype)
    factors = torch.randn(6, d, d, dtype=dtype).tril()
    return RHVAEMetric(centroids, factors, temperature=1.5, regularization=0.1)


def _local_pca(d: int, dtype: torch.dtype) -> Metric:
    return LocalPCAMetric(torch.randn(20, d, dtype=dtype), sigma=1.0, rho=0.1)


def _feature(d: int) -> Metric:
    return FeatureMetric(_gaussian(d), nn.Sequential(nn.Linear(OUT, 3), nn.Tanh()))


#: name -> factory of a (freshly initialised) module or metric of that kind at dimension d
_FACTORIES: dict[str, Callable[[int, torch.dtype], object]] = {
    "pullback": lambda d, dt: _mlp(d),
    "gaussian": lambda d, dt: _gaussian(d),
    "bernoulli": lambda d, dt: BernoulliDecoder(_mlp(d)),
    "continuous-bernoulli": lambda d, dt: _ContinuousBernoulliDecoder(_mlp(d)),
    "ensemble": lambda d, dt: EnsembleDecoder([_mlp(d), _mlp(d), _mlp(d)]),
    "explicit": lambda d, dt: ExplicitMetric(_spd_field(d, dt)),
    "feature": lambda d, dt: _feature(d),
    "rhvae": _rhvae,
    "local-pca": _local_pca,
    "sum": lambda d, dt: as_metric(_mlp(d)) + as_metric(_gaussian(d)),
    "scaled": lambda d, dt: 0.3 * as_metric(_mlp(d)),
}

#: the kinds :func:`make_metric` builds (``"disk"``: the Poincaré disk, d = 2 only)
METRIC_KINDS = (*_FACTORIES, "disk")


def make_metric(kind: str, d: int, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Metric:
    """A small random metric of ``kind`` on a ``d``-dimensional latent space.

    Args:
        kind: one of :data:`METRIC_KINDS`.
        d: the latent dimension (``"disk"`` needs ``d = 2``).
        seed: seeds the random weights.
        dtype: the metric's floating dtype.

    Returns:
        A :class:`~latentgeo.metrics.Metric` in ``dtype``.
    """
    if kind == "disk":
        if d != 2:
            raise ValueError(f"kind 'disk' needs d = 2, got {d}")
        return PoincareDisk()
    if kind not in _FACTORIES:
        raise ValueError(f"kind must be one of {METRIC_KINDS}, got {kind!r}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        made = _FACTORIES[kind](d, dtype)
    if isinstance(made, nn.Module):
        made = made.to(dtype)
        for p in made.parameters():
            p.requires_grad_(False)
        made.eval()
    return as_metric(made)
