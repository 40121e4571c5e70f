"""The learned metric of a Riemannian Hamiltonian VAE (Chadebec et al. 2020; AutoEncoderToolkit.jl).

The RHVAE learns the *inverse* metric as a smooth interpolation of
positive-definite matrices attached to centroids ``c_i`` in latent space:

    G(z)⁻¹ = (1/N) Σ_i L_i L_iᵀ exp(−‖z − c_i‖² / T²) + λ I,

with lower-triangular ``L_i``, a temperature ``T`` and a regulariser ``λ``.
AutoEncoderToolkit.jl divides by the number of centroids N (Chadebec et al.
sum instead; pass ``normalize=False`` for their form). The metric is the
inverse of that matrix; latentgeo never forms the inverse explicitly for
norms and inner products: it factors ``G⁻¹ = C Cᵀ`` (Cholesky) and solves.

A trained pythae ``RHVAE`` gives its metric with :meth:`RHVAEMetric.from_pythae`
(pythae sums over the centroids, keeps ``M_i = L_i L_iᵀ`` rather than ``L_i``,
and holds ``T`` and ``λ`` as ``nn.Parameter``; ``from_pythae`` reads all three
as they are meant).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from latentgeo.metrics.base import Metric

__all__ = ["RHVAEMetric"]


class RHVAEMetric(Metric):
    """``G(z) = [(1/N) Σ_i L_i L_iᵀ exp(−‖z − c_i‖²/T²) + λ I]⁻¹``.

    Args:
        centroids: ``c_i``, shape ``(N, d)``.
        factors: ``L_i``, shape ``(N, d, d)``, lower triangular (entries above
            the diagonal must be zero).
        temperature: ``T > 0``.
        regularization: ``λ > 0`` (keeps ``G⁻¹`` positive definite far from the centroids,
            where ``G → I/λ``).
        normalize: divide the sum by ``N`` (AutoEncoderToolkit.jl, default) or not
            (Chadebec et al. 2020).

    Example:
        >>> import torch
        >>> c = torch.zeros(1, 2)
        >>> L = torch.eye(2).expand(1, 2, 2)
        >>> g = RHVAEMetric(c, L, temperature=1.0, regularization=1.0)
        >>> g.metric_tensor(torch.zeros(2))  # (I + I)⁻¹
        tensor([[0.5000, 0.0000],
                [0.0000, 0.5000]])
    """

    centroids: Tensor
    factors: Tensor

    def __init__(
        self,
        centroids: Tensor,
        factors: Tensor,
        *,
        temperature: float,
        regularization: float,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(centroids, Tensor) or centroids.ndim != 2 or centroids.shape[0] == 0:
            got = tuple(centroids.shape) if isinstance(centroids, Tensor) else type(centroids)
            raise ValueError(f"centroids must be a tensor of shape (N, d) with N >= 1, got {got}")
        n, d = centroids.shape
        if not isinstance(factors, Tensor) or factors.shape != (n, d, d):
            got = tuple(factors.shape) if isinstance(factors, Tensor) else type(factors)
            raise ValueError(f"factors must have shape (N, d, d) = ({n}, {d}, {d}), got {got}")
        if not (torch.is_floating_point(centroids) and factors.dtype == centroids.dtype):
            raise TypeError(
                f"centroids and factors must share one floating dtype, got {centroids.dtype} "
                f"and {factors.dtype}"
            )
        if bool((factors.triu(1) != 0).any()):
            raise ValueError("factors must be lower triangular (zeros above the diagonal)")
        for name, value in (("temperature", temperature), ("regularization", regularization)):
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")
        self.register_buffer("centroids", centroids.detach().clone())
        self.register_buffer("factors", factors.detach().clone())
        self.temperature = float(temperature)
        self.regularization = float(regularization)
        self.normalize = bool(normalize)
        self.latent_dim = d

    @classmethod
    def from_pythae(cls, model: Any, *, dtype: torch.dtype | None = None) -> RHVAEMetric:
        """The learned metric of a trained pythae ``RHVAE``, exactly as pythae evaluates it.

        pythae's metric is ``G(z)⁻¹ = Σ_i M_i exp(−‖z − c_i‖²/T²) + λ I`` with
        ``M_i = L_i L_iᵀ`` stored in ``model.M_tens`` and the centroids in
        ``model.centroids_tens`` (both set by ``model.update()``, which pythae's
        trainer calls at the end of every epoch): the factors here are the
        Cholesky factors of ``M_i`` (computed in ``dtype``), the sum is not
        normalised, ``T = model.temperature`` and ``λ = model.lbd``.
        pythae itself is not imported.

        Args:
            model: a pythae ``RHVAE`` (anything with ``M_tens``, ``centroids_tens``,
                ``temperature`` and ``lbd``).
            dtype: the metric's dtype (default: that of ``model.M_tens``); ask for
                ``torch.float64`` to evaluate a float32 model's metric in float64.

        Returns:
            The ``RHVAEMetric`` (its tensors are copies: the model is not changed).

        Raises:
            TypeError: ``model`` has no RHVAE metric.
            ValueError: the metric was never fitted (``update()`` not called), or an
                ``M_i`` is not positive definite.
        """
        missing = [
            a for a in ("M_tens", "centroids_tens", "temperature", "lbd") if not hasattr(model, a)
        ]
        if missing:
            raise TypeError(
                f"RHVAEMetric.from_pythae needs a pythae RHVAE, got {type(model).__name__} "
                f"(no {', '.join(missing)})"
            )
        metric_fn = getattr(model, "G", None)
        if "__init__" in getattr(metric_fn, "__qualname__", ""):
            raise ValueError(
                "the RHVAE's metric has not been fitted: pythae sets it with model.update() at "
                "the end of each training epoch (its trainer does this); call model.update() "
                "after a training epoch before RHVAEMetric.from_pythae(model)"
            )
        matrices = model.M_tens.detach()
        dtype = matrices.dtype if dtype is None else dtype
        matrices = matrices.to(dtype)
        factors, info = torch.linalg.cholesky_ex(matrices)
        if bool((info != 0).any()):
            bad = int((info != 0).nonzero()[0, 0])
            raise ValueError(f"the RHVAE's matrix M_{bad} is not positive definite")
        centroids = model.centroids_tens.detach().to(device=matrices.device, dtype=dtype)
        return cls(
            centroids,
            factors,
            temperature=float(model.temperature.detach().reshape(-1)[0]),
            regularization=float(model.lbd.detach().reshape(-1)[0]),
            normalize=False,
        )

    def inverse_metric_tensor(self, z: Tensor) -> Tensor:
        """``G(z)⁻¹`` (what the RHVAE learns), shape ``(..., d, d)``."""
        if z.dtype != self.centroids.dtype or z.device != self.centroids.device:
            raise TypeError(
                f"z is {z.dtype} on {z.device} but the metric is {self.centroids.dtype} on "
                f"{self.centroids.device}; convert one (e.g. metric.to(z))"
            )
        sq = ((z.unsqueeze(-2) - self.centroids) ** 2).sum(-1)  # (..., N)
        w = torch.exp(-sq / self.temperature**2)
        if self.normalize:
            w = w / self.centroids.shape[0]
        m = self.factors @ self.factors.mT  # (N, d, d)
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return torch.einsum("...n,nij->...ij", w, m) + self.regularization * eye

    def _cholesky(self, z: Tensor) -> Tensor:
        return torch.linalg.cholesky(self.inverse_metric_tensor(z))

    def _metric_tensor(self, z: Tensor) -> Tensor:
        chol = self._cholesky(z)
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device).expand_as(chol)
        return torch.cholesky_solve(eye, chol)

    def _whiten(self, chol: Tensor, v: Tensor) -> Tensor:
        """``C⁻¹ v`` for ``G⁻¹ = C Cᵀ``, so that ``vᵀ G v = ‖C⁻¹ v‖²``."""
        return torch.linalg.solve_triangular(chol, v.unsqueeze(-1), upper=False).squeeze(-1)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        w = self._whiten(self._cholesky(z), v)
        return (w * w).sum(-1)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        chol = self._cholesky(z)
        return (self._whiten(chol, u) * self._whiten(chol, v)).sum(-1)
