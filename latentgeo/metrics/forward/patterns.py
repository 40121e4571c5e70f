"""Shapes of decoders whose widest product can be skipped: found once, in the prepared graph.

* **A final widening linear layer** ``f(z) = W h(z) + b``: then ``J = W J_h`` and
  ``∂²f = W ∂²h``, so ``Tᵀ Jᵀ J T = (J_h T)ᵀ (WᵀW) (J_h T)`` and chords are
  ``Δhᵀ (WᵀW) Δh``: the ``hidden → data`` product is never formed.
* **An output concatenated from parts** ``cat([part_1, ...], dim≠0)``, some of
  them widening linear layers (a Gaussian decoder's ``(μ, σ)`` with a linear
  mean head): the same, part by part.

The patterns are read from the functional graph (after in-place operations
were redirected), so ``h = self.out(x); h.sigmoid_(); return h`` does not end
with a linear layer.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
from torch import fx, nn

from latentgeo.metrics.forward.graph import Program

__all__ = ["Part", "find_final_linear", "find_parts"]


@dataclass(frozen=True)
class Part:
    """One piece of a concatenated output.

    Attributes:
        source: the node holding the piece (before views that only reshape it).
        linear: the ``nn.Linear`` call node computing ``source`` from its input, if the piece
            is a widening linear layer (then its input is read instead), else ``None``.
    """

    source: fx.Node
    linear: fx.Node | None

    @property
    def target(self) -> fx.Node:
        """The node the shortcut reads: the linear layer's input, or the piece itself."""
        if self.linear is None:
            return self.source
        arg = self.linear.args[0]
        assert isinstance(arg, fx.Node)
        return arg


def _widening_linear(root: nn.Module, node: fx.Node) -> bool:
    if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
        return False
    module = root.get_submodule(str(node.target))
    return (
        isinstance(module, nn.Linear)
        and module.out_features > module.in_features
        and isinstance(node.args[0], fx.Node)
    )


def find_final_linear(root: nn.Module, program: Program) -> fx.Node | None:
    """The ``nn.Linear`` call node whose output the module returns directly (only used there)."""
    last = program.output
    if last is None or last.op != "call_module" or len(last.users) != 1:
        return None
    module = root.get_submodule(str(last.target))
    if not isinstance(module, nn.Linear) or len(last.args) != 1 or last.kwargs:
        return None
    return last if isinstance(last.args[0], fx.Node) else None


def find_parts(root: nn.Module, program: Program) -> list[Part] | None:
    """The parts of an output ``cat([...], dim≠0)``, or ``None`` unless some part is a
    widening linear layer."""
    last = program.output
    if last is None or last.op != "call_function":
        return None
    if last.target not in (torch.cat, torch.concat) or not last.args:
        return None
    items = last.args[0]
    dim = last.kwargs.get("dim", last.args[1] if len(last.args) > 1 else 0)
    if not isinstance(items, (list, tuple)) or not isinstance(dim, int) or dim == 0:
        return None
    parts: list[Part] = []
    for item in items:
        if not isinstance(item, fx.Node):
            return None
        source = _through_views(item)
        parts.append(Part(source, source if _widening_linear(root, source) else None))
    return parts if any(p.linear is not None for p in parts) else None


def _through_views(node: fx.Node) -> fx.Node:
    """The node whose values ``node`` only reshapes (through ``reshape``/``view``/
    ``flatten``/``contiguous`` and elements of ``broadcast_tensors``)."""
    while True:
        first = node.args[0] if node.args else None
        if (
            node.op == "call_method"
            and node.target in ("reshape", "view", "flatten", "contiguous")
            and isinstance(first, fx.Node)
        ):
            node = first
            continue
        if (
            node.op == "call_function"
            and node.target is operator.getitem
            and isinstance(first, fx.Node)
            and first.op == "call_function"
            and first.target is torch.broadcast_tensors
            and isinstance(node.args[1], int)
            and isinstance(first.args[node.args[1]], fx.Node)
        ):
            node = first.args[node.args[1]]  # type: ignore[assignment]
            continue
        return node
