"""Several batches of curves of different kinds or sizes, seen as one batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from latentgeo.curves.base import Curve

__all__ = ["CurveStack"]


class CurveStack(Curve):
    """B curves made of groups: curve ``index[g][i]`` of the stack is curve ``i`` of ``parts[g]``.

    Solvers return one when pairs finished with different curve sizes (e.g.
    splines refined to different numbers of knots).

    Args:
        parts: the groups of curves.
        index: for each group, the positions ``(B_g,)`` of its curves in the stack;
            together a permutation of ``0 … B − 1``.

    Example:
        >>> import torch
        >>> from latentgeo.curves import CubicSpline
        >>> a = CubicSpline(torch.zeros(1, 2), torch.ones(1, 2), num_knots=1)
        >>> b = CubicSpline(torch.ones(2, 2), torch.zeros(2, 2), num_knots=5)
        >>> stack = CurveStack([a, b], [torch.tensor([1]), torch.tensor([0, 2])])
        >>> stack(torch.tensor([0.0])).squeeze(1).tolist()
        [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
    """

    order: Tensor
    inverse: Tensor

    def __init__(self, parts: Sequence[Curve], index: Sequence[Tensor]) -> None:
        if len(parts) == 0 or len(parts) != len(index):
            raise ValueError("parts and index must be non-empty and of the same length")
        order = torch.cat([torch.as_tensor(i).reshape(-1) for i in index]).long()
        if not torch.equal(order.sort().values, torch.arange(order.numel())):
            raise ValueError("index must together be a permutation of 0 … B − 1")
        inverse = order.argsort()
        z0 = torch.cat([p.z0 for p in parts])[inverse.to(parts[0].z0.device)]
        z1 = torch.cat([p.z1 for p in parts])[inverse.to(parts[0].z0.device)]
        super().__init__(z0, z1)
        self.parts = nn.ModuleList(parts)
        self.register_buffer("order", order.to(z0.device))
        self.register_buffer("inverse", inverse.to(z0.device))
        self._sizes = [int(p.num_curves) for p in parts]

    def curves(self) -> list[Curve]:
        """The groups."""
        return [p for p in self.parts if isinstance(p, Curve)]

    def breakpoints(self) -> Tensor:
        """Each curve's breakpoints, padded with 1 to a common count, ``(B, S_max + 1)``."""
        bps = [p.breakpoints() for p in self.curves()]
        width = max(bp.shape[1] for bp in bps)
        padded = [torch.cat([bp, bp[:, -1:].expand(-1, width - bp.shape[1])], 1) for bp in bps]
        return torch.cat(padded)[self.inverse]

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        rows = t[self.order].split(self._sizes)
        outs = [
            p._evaluate(r, derivative=derivative) for p, r in zip(self.curves(), rows, strict=True)
        ]
        pos = torch.cat([o[0] for o in outs])[self.inverse]
        if not derivative:
            return pos, None
        vel = torch.cat([o[1] for o in outs if o[1] is not None])[self.inverse]
        return pos, vel
