"""First-order forward mode: push K tangents through a traced module at once.

``torch.func.jvp`` is general but, for matrix products with a parameter (every
``nn.Linear``), torch's forward-mode formula also multiplies the input by the
parameter's zero tangent, materialised: a JVP then costs about four forward
passes instead of two, and under ``vmap`` (for Jacobians) far more.
:class:`TangentPropagator` pushes a *batch* of K tangents through the prepared
graph with the rules of the table, so a layer costs one extra product per
tangent and the primal pass is shared; any node without a rule takes the exact
per-node ``torch.func`` path, so the result is always the exact derivative.

Tangents carry a leading dimension K: for an input ``z`` of shape ``(N, d)``
the tangent ``T`` has shape ``(K, N, d)`` and the result's tangent
``(K, *out.shape)``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from latentgeo.metrics.forward.engine import Propagator, fast_path_report

__all__ = ["TangentPropagator", "try_tangent_propagator"]


class TangentPropagator(Propagator):
    """Push K tangents through a traced module: ``(z, T) -> (f(z), J_f(z) T)``.

    Args:
        module: an ``nn.Module`` that ``torch.fx`` can trace.

    Raises:
        ValueError: the module has no traced fast path (use :func:`try_tangent_propagator`
            to get ``None`` instead).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
        >>> out, tangent = TangentPropagator(net)(torch.zeros(4, 2), torch.ones(1, 4, 2))
        >>> out.shape, tangent.shape
        (torch.Size([4, 3]), torch.Size([1, 4, 3]))
    """

    def __call__(self, z: Tensor, tangents: Tensor) -> tuple[Tensor, Tensor]:
        """Evaluate the module at ``z (N, ...)`` and push ``tangents (K, N, ...)`` through it."""
        ((value, jet),) = self.run(z, tangents, False, [self.output_node])
        out, jet = self.tensor_output(value, jet, tangents.shape[0])
        return out, jet.first

    def values(self, z: Tensor) -> Tensor:
        """The module's output at ``z``, computed from the trace (no tangents).

        Equal to ``module(z)`` for modules returning a tensor; for a
        :class:`~latentgeo.metrics.embeddings.DecoderEmbedding` it skips building
        the decoder's distribution object (and its argument checks).
        """
        ((value, _),) = self.run(z, None, False, [self.output_node])
        return self.tensor_output(value, None, 0)[0]

    def push_to_final_linear(self, z: Tensor, tangents: Tensor) -> tuple[nn.Linear, Tensor]:
        """Tangents at the *input* of the final linear layer ``f(z) = W h(z) + b``.

        Then ``J v = W (J_h v)``, so ``‖J v‖² = (J_h v)ᵀ (WᵀW) (J_h v)``: the
        widest product of a decoder (hidden → data) is never formed.

        Returns:
            The final ``nn.Linear`` and ``J_h T`` of shape ``(K, N, hidden)``.

        Raises:
            ValueError: the module does not end with a linear layer (see :attr:`final_linear`).
        """
        linear, value, jet = self._run_to_final_linear(z, tangents)
        return linear, self.tensor_output(value, jet, tangents.shape[0])[1].first

    def values_to_final_linear(self, z: Tensor) -> tuple[nn.Linear, Tensor]:
        """The input ``h(z)`` of the final linear layer ``f(z) = W h(z) + b`` (no tangents).

        Raises:
            ValueError: the module does not end with a linear layer (see :attr:`final_linear`).
        """
        linear, value, _ = self._run_to_final_linear(z, None)
        return linear, value

    def _run_to_final_linear(
        self, z: Tensor, tangents: Tensor | None
    ) -> tuple[nn.Linear, Any, Any]:
        """The final linear layer, and the value and jet (first order) of its input.

        Raises:
            ValueError: the module does not end with a linear layer (see :attr:`final_linear`).
        """
        ((value, jet),) = self.run(z, tangents, False, [self.final_input_node()])
        linear = self.final_linear
        assert linear is not None
        return linear, value, jet

    def chord_parts(self, z: Tensor) -> list[tuple[Tensor, nn.Linear | None]] | None:
        """The output's parts at ``z (N, d)``, the linear ones *before* their layer.

        Returns a list of ``(value, linear)``: ``value`` is ``h (N, hidden)``, the
        input of ``linear``, for a linear part and the part itself ``(N, ·)``
        otherwise, so that the squared norm of a difference of outputs is the
        sum over parts of ``Δhᵀ(WᵀW)Δh`` or ``‖Δpart‖²``. ``None`` if the output is
        not such a concatenation. The caller checks once that the parts add up
        to the output (broadcasting could make them not).
        """
        if self.parts is None:
            return None
        results = self.run(z, None, False, [p.target for p in self.parts])
        n = z.shape[0]
        if any(not isinstance(v, Tensor) or v.ndim == 0 or v.shape[0] != n for v, _ in results):
            return None  # a part broadcast over the points: not one row per point
        return [
            (value.reshape(n, -1), self.linear_of(part))
            for (value, _), part in zip(results, self.parts, strict=True)
        ]

    def tangent_parts(
        self, z: Tensor, tangents: Tensor
    ) -> list[tuple[Tensor, nn.Linear | None]] | None:
        """The output's tangents part by part, the linear ones *before* their layer.

        As :meth:`chord_parts`, for ``J T``: a list of ``(tangent, linear)``, the
        tangent ``(K, N, ·)`` of ``h`` for a linear part (``J_part T = W J_h T``)
        and of the part itself otherwise; parts that do not depend on ``z`` are
        left out. ``None`` if the output is not such a concatenation.
        """
        if self.parts is None:
            return None
        results = self.run(z, tangents, False, [p.target for p in self.parts])
        k, n = tangents.shape[0], z.shape[0]
        return [
            (jet.first.reshape(k, n, -1), self.linear_of(part))
            for (_, jet), part in zip(results, self.parts, strict=True)
            if jet is not None
        ]


def try_tangent_propagator(module: object) -> TangentPropagator | None:
    """A :class:`TangentPropagator` for ``module``, or ``None`` if it has no traced fast path.

    The trace and its preparation are cached per module, so calling this again is cheap.
    """
    if not fast_path_report(module).usable:
        return None
    assert isinstance(module, nn.Module)
    return TangentPropagator(module)
