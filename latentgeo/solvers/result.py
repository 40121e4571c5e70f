"""The one result type shared by every geodesic solver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

__all__ = ["GeodesicResult"]


@dataclass
class GeodesicResult:
    """What a geodesic solver found for B pairs of end points.

    Attributes:
        curve: the fitted curves, a module holding all B curves; ``curve(t)``
            for ``t`` of shape ``(T,)`` gives ``(B, T, d)``.
        length: Riemannian length of each curve, shape ``(B,)``.
        energy: energy ``∫ γ̇ᵀ G γ̇ dt`` of each curve over ``t ∈ [0, 1]``, shape ``(B,)``.
        converged: whether each pair met the solver's tolerance, shape ``(B,)`` bool.
        iterations: iterations the solver ran (per pair ``(B,)`` tensor, or an int).
        status: a human-readable message per pair (``"converged"``, ``"max_iter"``,
            ``"nan_energy"``, ``"unreachable"``...).
        method: the method that produced it.
        info: solver-specific extras (energy history, ...).
    """

    curve: nn.Module
    length: Tensor
    energy: Tensor
    converged: Tensor
    iterations: Tensor | int
    status: list[str]
    method: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_pairs(self) -> int:
        """B, the number of pairs."""
        return int(self.length.shape[0])

    @property
    def all_converged(self) -> bool:
        """Whether every pair converged."""
        return bool(self.converged.all())
