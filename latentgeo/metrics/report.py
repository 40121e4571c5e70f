"""What :meth:`Metric.check <latentgeo.metrics.Metric.check>` reports about a metric at points."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MetricCheck", "check_tensor"]


@dataclass(frozen=True)
class MetricCheck:
    """Whether ``G(z)`` is a metric at each point: finite, symmetric, positive semi-definite.

    Attributes:
        finite: ``(N,)`` bool, every entry of ``G`` finite.
        symmetric: ``(N,)`` bool, ``max |G − Gᵀ| ≤ rtol · max |G|``.
        psd: ``(N,)`` bool, smallest eigenvalue ``≥ −rtol · max |λ|``.
        min_eigenvalue: ``(N,)`` smallest eigenvalue of the symmetric part (NaN where
            not finite).
        asymmetry: ``(N,)`` ``max |G − Gᵀ| / max |G|``.
        rtol: the relative tolerance used.
    """

    finite: Tensor
    symmetric: Tensor
    psd: Tensor
    min_eigenvalue: Tensor
    asymmetry: Tensor
    rtol: float

    @property
    def valid(self) -> Tensor:
        """``(N,)`` bool: finite, symmetric and positive semi-definite."""
        return self.finite & self.symmetric & self.psd

    @property
    def ok(self) -> bool:
        """Whether ``G`` is a metric at every point checked."""
        return bool(self.valid.all())

    @property
    def reasons(self) -> list[str]:
        """What fails, in words (empty when :attr:`ok`)."""
        n = self.finite.numel()
        out = []
        for name, mask, what in (
            ("finite", self.finite, "has NaN or Inf entries"),
            ("symmetric", self.symmetric, f"is not symmetric (relative tolerance {self.rtol:.1e})"),
            ("psd", self.psd, "is not positive semi-definite"),
        ):
            bad = int((~mask).sum())
            if bad:
                first = int((~mask).nonzero()[0, 0])
                detail = ""
                if name == "psd":
                    detail = f"; smallest eigenvalue {float(self.min_eigenvalue[first]):.3g}"
                out.append(f"G {what} at {bad} of {n} points (first: point {first}{detail})")
        return out

    def raise_if_invalid(self) -> None:
        """Raise ``ValueError`` with :attr:`reasons` unless :attr:`ok`."""
        if not self.ok:
            raise ValueError("not a metric: " + "; ".join(self.reasons))


def check_tensor(g: Tensor, rtol: float | None = None) -> MetricCheck:
    """Check metric tensors ``g`` of shape ``(..., d, d)`` (flattened to ``N`` points).

    Args:
        g: metric tensors.
        rtol: relative tolerance for symmetry and the sign of the smallest
            eigenvalue (default ``1000 · d · eps`` of the dtype).

    Returns:
        A :class:`MetricCheck`.
    """
    d = g.shape[-1]
    flat = g.reshape(-1, d, d)
    if rtol is None:
        rtol = 1000.0 * d * torch.finfo(g.dtype).eps
    finite = torch.isfinite(flat).flatten(1).all(-1)
    safe = torch.where(finite[:, None, None], flat, 0.0)
    scale = safe.abs().flatten(1).amax(-1).clamp_min(torch.finfo(g.dtype).tiny)
    asymmetry = (safe - safe.mT).abs().flatten(1).amax(-1) / scale
    eig = torch.linalg.eigvalsh(0.5 * (safe + safe.mT))
    min_eig = torch.where(finite, eig[:, 0], torch.nan)
    psd = finite & (eig[:, 0] >= -rtol * eig.abs().amax(-1))
    return MetricCheck(
        finite=finite,
        symmetric=finite & (asymmetry <= rtol),
        psd=psd,
        min_eigenvalue=min_eig,
        asymmetry=asymmetry,
        rtol=float(rtol),
    )
