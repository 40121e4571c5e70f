"""The terms of the geodesic equation, ``γ̈ = −G⁻¹ b``, and their Christoffel form.

Every metric answers :meth:`~latentgeo.metrics.Metric.geodesic_terms`
``(z, v) -> GeodesicTerms(G, b)``; sums, scalings and ensemble means combine
their members' terms, pull-backs use second-order forward mode, and any other
metric the Christoffel form of this module:

.. math::
    b^a = ∂_c G_{ab} v^b v^c − ½ ∂_a G_{bc} v^b v^c \\quad (= G Γ(v, v)),

with ``∂G`` by forward mode through the metric tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from latentgeo.metrics.jacobians import forward_jacobian, nested_forward_mode

__all__ = ["GeodesicTerms", "christoffel_terms", "metric_derivative"]


class TensorField(Protocol):
    """What the Christoffel form needs of a metric (any :class:`~latentgeo.metrics.Metric`)."""

    def _metric_tensor(self, z: Tensor) -> Tensor: ...


class GeodesicTerms(NamedTuple):
    """``(G, b)`` at ``N`` points with velocities ``v``: the geodesic acceleration is ``−G⁻¹ b``.

    Attributes:
        g: the metric tensors, ``(N, d, d)``.
        b: ``∂G[v] v − ½ ∇(vᵀ G v)``, ``(N, d)`` (``Jᵀ ∂²f[v, v]`` for a pull-back of ``f``);
            ``(M, N, d)`` for M velocities at each point
            (:meth:`~latentgeo.metrics.Metric.geodesic_terms_along`).
    """

    g: Tensor
    b: Tensor

    def scaled(self, c: float) -> GeodesicTerms:
        """The terms of ``c · G``."""
        return GeodesicTerms(c * self.g, c * self.b)

    @staticmethod
    def total(terms: Sequence[GeodesicTerms]) -> GeodesicTerms:
        """The terms of a sum of metrics."""
        g, b = terms[0]
        for term in terms[1:]:
            g, b = g + term.g, b + term.b
        return GeodesicTerms(g, b)

    @staticmethod
    def joined(parts: Sequence[GeodesicTerms]) -> GeodesicTerms:
        """The terms of consecutive chunks of points, joined along the points."""
        if len(parts) == 1:
            return parts[0]
        b = torch.cat([t.b for t in parts], dim=-2)
        return GeodesicTerms(torch.cat([t.g for t in parts]), b)

    def acceleration(self) -> Tensor:
        """``γ̈ = −G⁻¹ b``, ``(N, d)``; NaN where ``G`` is singular."""
        sol, info = torch.linalg.solve_ex(self.g, self.b)
        return torch.where((info == 0)[:, None], -sol, torch.nan)


@nested_forward_mode
def metric_derivative(metric: TensorField, z: Tensor) -> tuple[Tensor, Tensor]:
    """``G(z)`` and its derivative ``∂G`` for validated points ``z`` of shape ``(N, d)``.

    Args:
        metric: any metric (its ``_metric_tensor`` must be differentiable by forward mode).
        z: points of shape ``(N, d)``.

    Returns:
        ``(G, dG)`` with ``G`` of shape ``(N, d, d)`` and ``dG`` of shape
        ``(N, d, d, d)``, ``dG[n, a, b, c] = ∂G_ab / ∂z_c`` at ``z[n]``.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import ExplicitMetric
        >>> g = ExplicitMetric(lambda z: z[..., :1, None] * torch.eye(2))  # G = z₀ I
        >>> _, dg = metric_derivative(g, torch.ones(1, 2))
        >>> dg[0, :, :, 0]  # ∂G/∂z₀ = I
        tensor([[1., 0.],
                [0., 1.]])
    """
    n, d = z.shape
    g = metric._metric_tensor(z)

    def flat_tensor(x: Tensor) -> Tensor:
        return metric._metric_tensor(x).reshape(x.shape[0], d * d)

    dg = forward_jacobian(flat_tensor, z).reshape(n, d, d, d)
    return g, dg


def christoffel_terms(metric: TensorField, z: Tensor, v: Tensor) -> GeodesicTerms:
    """``(G, ∂G[v] v − ½ ∇(vᵀ G v))`` by forward mode through the metric tensor.

    Works for any metric; points and velocities ``(N, d)``, not validated.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> z = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
        >>> christoffel_terms(PoincareDisk(), z, torch.tensor([[0.0, 1.0]], dtype=z.dtype)).b
        tensor([[-9.4815,  0.0000]], dtype=torch.float64)
    """
    g, dg = metric_derivative(metric, z)  # dg[n, a, b, c] = ∂_c G_ab
    dgv = torch.einsum("nabc,nc->nab", dg, v)  # ∂G[v]
    term1 = torch.einsum("nab,nb->na", dgv, v)
    term2 = torch.einsum("nbca,nb,nc->na", dg, v, v)
    return GeodesicTerms(g, term1 - 0.5 * term2)
