"""Riemannian random walks (Arvanitidis et al. 2018, "Latent Space Oddity").

A walker at ``z_t`` steps by ``√h · G(z_t)^{-1/2} ε`` with ``ε ~ N(0, I)``:
with ``G = U Λ Uᵀ`` that is ``√h · U Λ^{-1/2} ε``, short steps where the
metric is large. Under the expected metric of a decoder with well-behaved
uncertainty the metric grows off the data, so the walk stays on the data
support. This is LSO's heuristic Brownian motion (Euler–Maruyama without the
drift term); all walkers advance together in one batched eigendecomposition
per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo._options import check_int, check_number
from latentgeo._validation import check_points
from latentgeo.metrics import MetricLike, as_metric

__all__ = ["metric_inverse_sqrt", "riemannian_random_walk"]


def metric_inverse_sqrt(g: Tensor, *, eps: float = 1e-12) -> Tensor:
    """``G^{-1/2} = U Λ^{-1/2} Uᵀ`` of symmetric positive (semi-)definite matrices.

    Args:
        g: shape ``(..., d, d)``.
        eps: eigenvalues are clamped at ``eps · max(λ)`` (a singular direction
            gets a long but finite step).

    Returns:
        Tensor of shape ``(..., d, d)``.

    Example:
        >>> metric_inverse_sqrt(torch.diag(torch.tensor([4.0, 0.25])))
        tensor([[0.5000, 0.0000],
                [0.0000, 2.0000]])
    """
    check_number(eps, "eps", positive=False)
    vals, vecs = torch.linalg.eigh(0.5 * (g + g.mT))
    floor = eps * vals.amax(-1, keepdim=True).clamp_min(torch.finfo(g.dtype).tiny)
    scale = vals.clamp_min(0.0).maximum(floor).rsqrt()
    return (vecs * scale.unsqueeze(-2)) @ vecs.mT


def riemannian_random_walk(
    metric_or_decoder: MetricLike,
    z0: Tensor,
    *,
    num_steps: int,
    step_size: float,
    generator: torch.Generator | None = None,
    eps: float = 1e-12,
) -> Tensor:
    """Run W walkers for ``num_steps`` steps ``z ← z + √h · G(z)^{-1/2} ε``.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z0: start points, shape ``(W, d)``.
        num_steps: number of steps.
        step_size: ``h``, the variance of a step in the metric's units
            (a step has Riemannian length about ``√(h d)``).
        generator: random generator (on ``z0``'s device) for reproducible walks.
        eps: relative eigenvalue floor, see :func:`metric_inverse_sqrt`.

    Returns:
        The trajectories, shape ``(W, num_steps + 1, d)``; ``[:, 0]`` is ``z0``.

    Example:
        >>> from latentgeo.metrics import ExplicitMetric
        >>> flat = ExplicitMetric(lambda z: torch.eye(2).expand(*z.shape[:-1], 2, 2))
        >>> riemannian_random_walk(flat, torch.zeros(3, 2), num_steps=5, step_size=0.1).shape
        torch.Size([3, 6, 2])
    """
    z = check_points(z0, "z0")
    if z.ndim != 2:
        raise ValueError(f"z0 must have shape (W, d), got {tuple(z.shape)}")
    check_int(num_steps, "num_steps", minimum=0)
    check_number(step_size, "step_size")
    check_number(eps, "eps", positive=False)
    metric = as_metric(metric_or_decoder)
    scale = float(step_size) ** 0.5
    path = [z.detach()]
    for _ in range(num_steps):
        g = metric.metric_tensor(path[-1]).detach()
        noise = torch.randn(z.shape, dtype=z.dtype, device=z.device, generator=generator)
        step = (metric_inverse_sqrt(g, eps=eps) @ noise.unsqueeze(-1)).squeeze(-1)
        path.append(path[-1] + scale * step)
    return torch.stack(path, dim=1)
