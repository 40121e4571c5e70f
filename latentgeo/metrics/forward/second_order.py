"""Second-order forward mode (Taylor mode) through a traced module, for the geodesic ODE.

The geodesic acceleration of a pull-back needs, at every point, the Jacobian
``J`` (``d`` first-order tangents) and the second directional derivative
``∂²f[v, v]``. Nested ``torch.func.jvp`` gives the latter exactly but, on
torch's forward-mode formulas, a nested product through an ``nn.Linear`` costs
many passes. :class:`TaylorPropagator` pushes the primal, ``K`` first-order
tangents and one second-order term along ``v`` through the prepared graph with
the same rule table as the first-order propagator (each rule writes both
orders once): linear maps ``ÿ = A ẍ``, element-wise ``ÿ = σ″ ẋ_v² + σ′ ẍ``,
products ``ÿ = ä b + a b̈ + 2 ȧ_v ḃ_v``; any node without a rule uses ``jvp``
of ``jvp`` of that node alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn

from latentgeo.metrics.forward.engine import Propagator, fast_path_report

__all__ = ["TaylorPropagator", "taylor_propagator"]


class TaylorPropagator(Propagator):
    """``(z, T, v) ↦ (f(z), J T, ∂²f[v, v])`` for a traced module, batched over points.

    Args:
        module: an ``nn.Module`` mapping ``(N, d)`` to a tensor ``(N, ...)`` that
            ``torch.fx`` can trace.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
        >>> z, v = torch.randn(4, 2), torch.randn(4, 2)
        >>> basis = torch.eye(2)[:, None].expand(2, 4, 2)  # J's columns
        >>> out, tangents, second = TaylorPropagator(net)(z, basis, v)
        >>> out.shape, tangents.shape, second.shape
        (torch.Size([4, 3]), torch.Size([2, 4, 3]), torch.Size([4, 3]))
    """

    def __call__(self, z: Tensor, tangents: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Push ``tangents (K, N, d)`` (first order; ``K = 0``: none) and ``v (N, d)`` (second
        order) through.

        Returns:
            ``f(z)`` ``(N, m)``, ``J T`` ``(K, N, m)`` and ``∂²f[v, v]`` ``(N, m)``, all
            with the output flattened per point.
        """
        return self._push(z, tangents, v, self.output_node)

    def push_to_final_linear(
        self, z: Tensor, tangents: Tensor, v: Tensor
    ) -> tuple[nn.Linear, Tensor, Tensor]:
        """``(W, J_h T, ∂²h[v, v])`` at the input ``h`` of a final linear layer ``W h + b``:
        then ``J = W J_h`` and ``∂²f = W ∂²h``.

        Raises:
            ValueError: the module does not end with a linear layer.
        """
        _, first, second = self._push(z, tangents, v, self.final_input_node())
        linear = self.final_linear
        assert linear is not None
        return linear, first, second

    def tangent_parts(
        self, z: Tensor, tangents: Tensor, v: Tensor
    ) -> list[tuple[Tensor, Tensor, nn.Linear | None]] | None:
        """Part by part (see :meth:`~.first_order.TangentPropagator.tangent_parts`):
        ``(J_p T (K, N, ·), ∂²p[v, v] (N, ·), linear)``, the linear parts before their layer;
        parts that do not depend on ``z`` are left out."""
        if self.parts is None:
            return None
        k, n = tangents.shape[0], z.shape[0]
        first = torch.cat([tangents, v.unsqueeze(0)], 0)  # the last tangent is v
        results = self.run(z, first, True, [p.target for p in self.parts])
        out = []
        for (value, jet), part in zip(results, self.parts, strict=True):
            if jet is None:
                continue
            second = torch.zeros_like(value) if jet.second is None else jet.second
            width = value.numel() // n  # explicit: there may be no tangents (k = 0)
            out.append(
                (jet.first[:k].reshape(k, n, width), second.reshape(n, width), self.linear_of(part))
            )
        return out

    def _push(
        self, z: Tensor, tangents: Tensor, v: Tensor, node: fx.Node
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(value, first-order tangents, second-order term)`` of ``node``, flattened per point."""
        k, n = tangents.shape[0], z.shape[0]
        first = torch.cat([tangents, v.unsqueeze(0)], 0)  # the last tangent is v
        ((value, jet),) = self.run(z, first, True, [node])
        value, jet = self.tensor_output(value, jet, k + 1)
        second = torch.zeros_like(value) if jet.second is None else jet.second
        width = value.numel() // n  # explicit: there may be no tangents (k = 0)
        return value.reshape(n, width), jet.first[:k].reshape(k, n, width), second.reshape(n, width)


def taylor_propagator(module: object) -> TaylorPropagator | None:
    """A :class:`TaylorPropagator` for ``module``, or ``None`` if it has no traced fast path."""
    if not fast_path_report(module).usable:
        return None
    assert isinstance(module, nn.Module)
    return TaylorPropagator(module)
