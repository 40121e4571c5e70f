"""Christoffel symbols of any metric by forward-mode automatic differentiation.

.. math::
    Γ^k_{ij} = \\tfrac12 G^{kl} (∂_i G_{lj} + ∂_j G_{li} − ∂_l G_{ij}).

The derivatives ``∂_c G_{ab}`` come from forward mode through the metric
tensor (``d`` Jacobian-vector products batched by ``torch.func.vmap``, the
``jacfwd`` of ``z ↦ G(z)``), for every point at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo._validation import check_points
from latentgeo.metrics.dispatch import MetricLike, as_metric
from latentgeo.metrics.terms import metric_derivative

__all__ = ["christoffel_symbols", "metric_derivative"]


def christoffel_symbols(metric_or_decoder: MetricLike, z: Tensor) -> Tensor:
    """Christoffel symbols of the second kind, ``Γ^k_{ij}`` at every point.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(..., d)``.

    Returns:
        Tensor of shape ``(..., d, d, d)`` with ``out[..., k, i, j] = Γ^k_{ij}``
        (symmetric in ``i, j``). The geodesic equation reads
        ``γ̈^k = −Γ^k_{ij} γ̇^i γ̇^j``. Points where ``G`` is singular give NaN.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import ExplicitMetric
        >>> flat = ExplicitMetric(lambda z: torch.eye(2).expand(*z.shape[:-1], 2, 2))
        >>> christoffel_symbols(flat, torch.zeros(3, 2)).abs().max()
        tensor(0.)
    """
    metric = as_metric(metric_or_decoder)
    z = check_points(z, "z", dim=metric.latent_dim)
    batch, d = z.shape[:-1], z.shape[-1]
    g, dg = metric_derivative(metric, z.reshape(-1, d))
    # first kind: Γ_{l i j} = ½ (∂_i G_lj + ∂_j G_li − ∂_l G_ij), with dg[n, a, b, c] = ∂_c G_ab
    first = 0.5 * (dg.permute(0, 1, 3, 2) + dg - dg.permute(0, 3, 1, 2))
    second, info = torch.linalg.solve_ex(g, first.reshape(-1, d, d * d))
    second = torch.where((info == 0)[:, None, None], second, torch.nan)
    return second.reshape(*batch, d, d, d)
