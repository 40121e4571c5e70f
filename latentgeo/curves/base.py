"""The curve protocol: B curves with fixed end points, evaluated at shared or per-curve times.

Every curve kind is an ``nn.Module`` holding ``B`` curves ``γ_b : [0, 1] → R^d``
with ``γ_b(0) = z0[b]`` and ``γ_b(1) = z1[b]``. Its trainable parameters and its
buffers all have the batch size ``B`` as leading dimension, so a solver can
slice out a subset of pairs (``torch.func.functional_call`` with sliced
tensors) and every pair's parameters form an independent block.
"""

from __future__ import annotations

import abc
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from latentgeo._validation import check_points, check_same_shape

__all__ = ["Curve", "check_times"]


def check_times(t: object, batch: int, *, name: str = "t") -> Tensor:
    """Validate curve times: a finite floating tensor ``(T,)`` or ``(B, T)`` in ``[0, 1]``.

    Returns:
        ``t`` unchanged.

    Raises:
        TypeError: ``t`` is not a floating tensor.
        ValueError: wrong shape, NaN/Inf, or values outside ``[0, 1]``.
    """
    if not isinstance(t, Tensor) or not torch.is_floating_point(t):
        raise TypeError(f"{name} must be a floating torch.Tensor of shape (T,) or (B, T)")
    if t.ndim not in (1, 2) or (t.ndim == 2 and t.shape[0] != batch):
        raise ValueError(
            f"{name} must have shape (T,) or (B, T) with B={batch}, got {tuple(t.shape)}"
        )
    if t.numel() and not bool(((t >= 0.0) & (t <= 1.0)).all()):
        raise ValueError(f"{name} must lie in [0, 1] (and hold no NaN)")
    return t


class Curve(nn.Module, abc.ABC):
    """Abstract batch of B curves ``[0, 1] → R^d`` with fixed end points.

    Subclasses implement :meth:`_evaluate` (value and, on request, velocity at
    times of shape ``(B, T)``) and :meth:`breakpoints`.

    Args:
        z0: start points, shape ``(B, d)``.
        z1: end points, shape ``(B, d)``.
    """

    z0: Tensor
    z1: Tensor

    def __init__(self, z0: Tensor, z1: Tensor) -> None:
        super().__init__()
        z0 = check_points(z0, "z0")
        z1 = check_points(z1, "z1")
        if z0.ndim != 2:
            raise ValueError(f"z0 must have shape (B, d), got {tuple(z0.shape)}")
        check_same_shape(z0, z1, "z0", "z1")
        self.register_buffer("z0", z0.detach().clone())
        self.register_buffer("z1", z1.detach().clone())

    # ----------------------------------------------------------------- sizes
    @property
    def num_curves(self) -> int:
        """B, the number of curves."""
        return int(self.z0.shape[0])

    @property
    def dim(self) -> int:
        """d, the latent dimension."""
        return int(self.z0.shape[1])

    # ----------------------------------------------------------------- public API
    def forward(self, t: Tensor) -> Tensor:
        """Points on the curves.

        Args:
            t: times in ``[0, 1]``, shape ``(T,)`` (shared) or ``(B, T)`` (per curve).

        Returns:
            ``γ(t)`` of shape ``(B, T, d)``.
        """
        t = check_times(t, self.z0.shape[0])
        return self._evaluate(self._batch_times(t), derivative=False)[0]

    def velocity(self, t: Tensor) -> Tensor:
        """Velocities ``γ̇(t)``; shapes as :meth:`forward`."""
        t = check_times(t, self.z0.shape[0])
        vel = self._evaluate(self._batch_times(t), derivative=True)[1]
        assert vel is not None
        return vel

    def points_and_velocities(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(γ(t), γ̇(t))`` in one pass; shapes as :meth:`forward`."""
        t = check_times(t, self.z0.shape[0])
        pos, vel = self._evaluate(self._batch_times(t), derivative=True)
        assert vel is not None
        return pos, vel

    @abc.abstractmethod
    def breakpoints(self) -> Tensor:
        """Times where the curve may be non-smooth, including 0 and 1, shape ``(B, S + 1)``.

        Between consecutive breakpoints the curve is smooth, so quadrature
        rules are applied span by span.
        """

    # ------------------------------------------------------------ internals
    def _batch_times(self, t: Tensor) -> Tensor:
        t = t.to(dtype=self.z0.dtype, device=self.z0.device)
        return t.expand(self.z0.shape[0], -1) if t.ndim == 1 else t

    @abc.abstractmethod
    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        """Value ``(B, T, d)`` and, if ``derivative``, velocity ``(B, T, d)`` at ``t`` ``(B, T)``.

        Must read the batch size from its tensors (not from stored ints): solvers
        call it through ``functional_call`` on a subset of the pairs.
        """

    def extra_repr(self) -> str:
        return f"num_curves={self.num_curves}, dim={self.dim}"


@runtime_checkable
class LinearInControlPoints(Protocol):
    """A curve that is a fixed linear map of its control points (splines, polylines).

    Solvers use this to compute the basis at the evaluation times once per solve.
    """

    def linear_basis(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(idx, N, dN)``, each ``(B, T, r)``, with ``γ(t) = Σ_r N_r P_{idx_r}`` and
        ``γ̇(t) = Σ_r dN_r P_{idx_r}`` over the control points ``P = [z0, inner, z1]``."""
        ...
