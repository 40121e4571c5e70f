"""Where channels-last tensors may flow in a traced graph, and where they must not.

Two-dimensional transposed convolutions run channels-last on the CPU (see
:mod:`~latentgeo.metrics.forward.transposed`): their values and tangents come out
laid out ``(N, H, W, C)`` in memory. Layers that work elementwise, and the
transposed convolutions themselves, take such tensors as they are (the layout is
invisible to them, and the next transposed convolution wants it). Any other call
of the user's graph might ``view`` its input, which a channels-last tensor does
not allow: it gets its inputs made contiguous first (:func:`plain`), so the
user's code sees what it would see without latentgeo.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from torch import Tensor, fx, nn

from latentgeo.metrics.forward.transposed import channels_last

__all__ = ["LAYOUT_FREE", "plain", "plain_readers"]

#: modules indifferent to their input's memory layout (elementwise, or transposed
#: convolutions with a forward of latentgeo's own)
LAYOUT_FREE: tuple[type[nn.Module], ...] = (
    nn.ELU, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.GELU,
    nn.Softplus, nn.Mish, nn.Hardtanh, nn.Identity,
)  # fmt: skip


def plain_readers(graph: fx.Graph, root: nn.Module, sources: Collection[fx.Node]) -> set[fx.Node]:
    """The nodes that may receive a channels-last tensor from ``sources`` (directly or
    through :data:`LAYOUT_FREE` modules) and are not layout-free themselves: they get
    contiguous inputs. ``sources`` are layout-free readers too."""
    carriers = set(sources)
    readers: set[fx.Node] = set()
    for node in graph.nodes:  # in topological order
        if not any(a in carriers for a in node.all_input_nodes):
            continue
        free = node in sources or (
            node.op == "call_module" and type(root.get_submodule(str(node.target))) in LAYOUT_FREE
        )
        (carriers if free else readers).add(node)
    return readers


def plain(value: Any) -> Any:
    """``value`` with every channels-last tensor in it (also in lists, tuples and dicts)
    made contiguous; anything else as it is."""
    if isinstance(value, Tensor):
        return value if value.is_contiguous() else _contiguous_if_channels_last(value)
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _contiguous_if_channels_last(t: Tensor) -> Tensor:
    return t.contiguous() if channels_last(t) else t
