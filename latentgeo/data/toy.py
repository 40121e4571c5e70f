"""Toy manifolds in the plane (and lifted into higher dimensions)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentgeo.data.dataset import LabeledData

__all__ = ["lift", "ring", "semicircle", "two_moons"]

# The lifting map depends on the ambient dimension only: one fixed map per D.
_LIFT_SEED = 20240101


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return n


def _check_noise(noise: object) -> float:
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not noise >= 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")
    return float(noise)


def lift(points: Tensor, ambient_dim: int) -> Tensor:
    """Embed planar points into ``R^D`` by a fixed smooth random map.

    ``φ(p) = Q [p, 0.3 sin(A p + b)]`` with a random orthogonal ``Q`` (D×D),
    ``A`` (D−2 × 2) and ``b`` drawn once from a fixed seed, so the map is the
    same in every call with the same ``ambient_dim``. It contains ``p``
    itself (rotated), so it is injective: a ring stays a ring with its hole.

    Args:
        points: ``(N, 2)``.
        ambient_dim: ``D ≥ 2`` (``D = 2`` returns the points unchanged).

    Returns:
        ``(N, D)`` in the dtype of ``points``.
    """
    if isinstance(ambient_dim, bool) or not isinstance(ambient_dim, int) or ambient_dim < 2:
        raise ValueError(f"ambient_dim must be an int >= 2, got {ambient_dim!r}")
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {tuple(points.shape)}")
    if ambient_dim == 2:
        return points
    g = torch.Generator().manual_seed(_LIFT_SEED + ambient_dim)
    extra = ambient_dim - 2
    a = torch.randn(extra, 2, generator=g, dtype=torch.float64) * 1.5
    b = torch.rand(extra, generator=g, dtype=torch.float64) * 2 * math.pi
    q, _ = torch.linalg.qr(torch.randn(ambient_dim, ambient_dim, generator=g, dtype=torch.float64))
    p = points.to(torch.float64)
    feats = torch.cat([p, 0.3 * torch.sin(p @ a.T + b)], dim=1)
    return (feats @ q.T).to(points.dtype)


def ring(
    n: int = 1000,
    *,
    noise: float = 0.05,
    ambient_dim: int = 2,
    radius: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> LabeledData:
    """Points on a circle: the "data on a circle" whose geodesics go around the hole.

    ``θ ~ U[0, 2π)``, ``p = radius (cos θ, sin θ)``, lifted by :func:`lift`
    when ``ambient_dim > 2``, then isotropic Gaussian noise of standard
    deviation ``noise`` in the ambient space.

    Args:
        n: number of points.
        noise: noise standard deviation.
        ambient_dim: ``D``.
        radius: the circle's radius.
        seed: seeds the angles and the noise.
        dtype: floating dtype of ``x``.

    Returns:
        :class:`LabeledData` with ``x`` ``(n, D)`` and ``y`` the angles ``θ`` ``(n,)``.

    Example:
        >>> x, theta = ring(4, noise=0.0, seed=0)
        >>> torch.allclose(x.norm(dim=1), torch.ones(4))
        True
    """
    n, noise = _check_n(n), _check_noise(noise)
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    p = radius * torch.stack([theta.cos(), theta.sin()], dim=1)
    x = lift(p, ambient_dim)
    x = x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return LabeledData(x.to(dtype), theta.to(dtype))


def semicircle(
    n: int = 200, *, noise: float = 0.1, seed: int = 0, dtype: torch.dtype = torch.float32
) -> LabeledData:
    """The upper half circle of Arvanitidis' ``geometric_ml`` examples.

    ``θ ~ U[0, π]``, ``x = (cos θ, sin θ) + noise · ε``.

    Returns:
        :class:`LabeledData` with ``x`` ``(n, 2)`` and ``y`` the angles ``(n,)``.

    Example:
        >>> x, theta = semicircle(50, seed=1)
        >>> bool((theta >= 0).all() and (theta <= torch.pi).all())
        True
    """
    n, noise = _check_n(n), _check_noise(noise)
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    x = torch.stack([theta.cos(), theta.sin()], dim=1)
    x = x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return LabeledData(x.to(dtype), theta.to(dtype))


def two_moons(
    n: int = 500, *, noise: float = 0.1, seed: int = 0, dtype: torch.dtype = torch.float32
) -> LabeledData:
    """Two interleaving half circles (scikit-learn's ``make_moons``).

    Returns:
        :class:`LabeledData` with ``x`` ``(n, 2)`` and ``y`` the moon (0 or 1, ``int64``).

    Example:
        >>> x, y = two_moons(10, seed=0)
        >>> x.shape, sorted(y.unique().tolist())
        (torch.Size([10, 2]), [0, 1])
    """
    from sklearn.datasets import make_moons

    n, noise = _check_n(n), _check_noise(noise)
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return LabeledData(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=torch.long))
