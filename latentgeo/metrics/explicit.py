"""Metrics given by a closed-form metric tensor ``G(z)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from latentgeo.metrics.base import Metric
from latentgeo.metrics.embeddings import captured_modules

__all__ = ["ExplicitMetric"]


class ExplicitMetric(Metric):
    """A metric from a closed-form tensor field ``z ↦ G(z)``.

    Use it for conformal metrics, learned metrics such as the RHVAE's and
    analytic test manifolds. ``tensor_fn`` must be differentiable with torch
    (so that Christoffel symbols and gradients through lengths work). It is
    always called on a flat batch of points ``(N, d)`` and returns ``(N, d, d)``
    (or one ``(d, d)`` matrix for all): points with leading batch dimensions,
    such as the ``(B, T, d)`` curves the solvers evaluate, are flattened before
    the call and the result is reshaped to ``(B, T, d, d)``.

    With ``latent_dim`` given, ``tensor_fn`` is called once at construction on
    two points (zero and a point of ones; in the dtype and device of the modules
    it calls, if any) to check the shape and symmetry of what it returns.

    Args:
        tensor_fn: the metric tensor field, ``(N, d) -> (N, d, d)``.
        latent_dim: ``d``, if known (used to check inputs and ``tensor_fn``).

    Raises:
        ValueError: ``tensor_fn`` returns the wrong shape or a non-symmetric matrix
            at the check points.

    Example:
        >>> import torch
        >>> def poincare(z):  # 4 / (1 - |z|²)² I
        ...     s = 4.0 / (1.0 - (z * z).sum(-1)) ** 2
        ...     return s[..., None, None] * torch.eye(z.shape[-1], dtype=z.dtype)
        >>> g = ExplicitMetric(poincare, latent_dim=2)
        >>> g.metric_tensor(torch.zeros(2))
        tensor([[4., 0.],
                [0., 4.]])
    """

    def __init__(
        self, tensor_fn: Callable[[Tensor], Tensor], *, latent_dim: int | None = None
    ) -> None:
        super().__init__()
        if not callable(tensor_fn):
            raise TypeError(f"tensor_fn must be callable, got {type(tensor_fn).__name__}")
        if latent_dim is not None and (isinstance(latent_dim, bool) or latent_dim < 1):
            raise ValueError(f"latent_dim must be a positive int or None, got {latent_dim!r}")
        self.tensor_fn = tensor_fn
        self.latent_dim = latent_dim
        if latent_dim is not None:
            self._check_once(latent_dim)

    def _check_once(self, d: int) -> None:
        """Call ``tensor_fn`` on two points and check the shape and symmetry of ``G``."""
        like = next(
            (t for m in captured_modules(self.tensor_fn) for t in m.parameters()), torch.zeros(())
        )
        z = torch.stack([torch.zeros(d), torch.ones(d)]).to(like)
        with torch.no_grad():
            g = self._metric_tensor(z)
        finite = g.isfinite().all((-2, -1))
        asym = (g - g.mT).abs().amax((-2, -1))
        scale = g.abs().amax((-2, -1)).clamp_min(torch.finfo(g.dtype).tiny)
        bad = finite & (asym > 1e-5 * scale)
        if bool(bad.any()):
            where = "zero" if bool(bad[0]) else "the point of ones"
            raise ValueError(
                f"tensor_fn must return symmetric matrices G(z); at {where} "
                f"max |G − Gᵀ| = {float(asym[bad].max()):.3g}"
            )

    def _metric_tensor(self, z: Tensor) -> Tensor:
        d = z.shape[-1]
        batch = z.shape[:-1]
        g = self.tensor_fn(z.reshape(-1, d))
        n = batch.numel()
        if not isinstance(g, Tensor) or g.shape not in ((n, d, d), (d, d)):
            got = tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__
            raise ValueError(
                f"tensor_fn must return a tensor of shape (N, {d}, {d}) for points (N, {d}) "
                f"(or one ({d}, {d}) matrix), got {got} for N = {n}"
            )
        return g.expand(n, d, d).reshape(*batch, d, d)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        return torch.einsum("...i,...ij,...j->...", v, self._metric_tensor(z), v)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        return torch.einsum("...i,...ij,...j->...", u, self._metric_tensor(z), v)
