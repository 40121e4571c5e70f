"""Checks of a decoder made once, when ``as_metric`` builds its metric: the latent size.

:func:`infer_latent_dim` reads the latent dimension ``d`` off the first layer
that the decoder applies to its input (in the ``torch.fx`` trace: an
``nn.Linear`` applied to the input, possibly after casts; ``in_features``).
:func:`probe` then calls the decoder's embedding once on a zero latent point
``(1, d)``, so that a wrong latent size or an output latentgeo cannot use
fails in ``as_metric``, with a message saying what to change, instead of
at the first metric evaluation, deep in a solver.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.nn import functional as F

from latentgeo.metrics.embeddings import captured_modules
from latentgeo.metrics.forward import traced_graph
from latentgeo.metrics.forward.tracing import TRACE_ERRORS, distributions_on_proxies
from latentgeo.metrics.outputs import UnsupportedOutput

__all__ = [
    "LatentSize",
    "check_latent_dim",
    "check_output_symbolically",
    "infer_latent_dim",
    "probe",
]

#: calls that keep the input's last dimension (followed from the input to its first layer)
_PASS_METHODS = frozenset({"float", "double", "to", "contiguous", "type_as", "clone"})
#: what a decoder may raise on an input of the wrong size
PROBE_ERRORS = (RuntimeError, ValueError, IndexError)


@dataclass(frozen=True)
class LatentSize:
    """The latent dimension ``d`` and where it came from (for messages)."""

    dim: int
    source: str


def check_latent_dim(latent_dim: object) -> int | None:
    """Check the ``latent_dim=`` option: a positive int or ``None``."""
    if latent_dim is None:
        return None
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int or None, got {latent_dim!r}")
    return latent_dim


class _Raw(nn.Module):
    """``z ↦ decoder(z)`` as returned (a container too), to trace a decoder's first layer."""

    def __init__(self, decoder: Callable[[Tensor], Any]) -> None:
        super().__init__()
        self.decoder = decoder
        if not isinstance(decoder, nn.Module):
            self.captured = nn.ModuleList(captured_modules(decoder))

    def forward(self, z: Tensor) -> Any:
        return self.decoder(z)


def infer_latent_dim(embed: object, decoder: object = None) -> LatentSize | None:
    """The latent dimension a traceable module expects, from its first layer.

    Args:
        embed: the module (or the ``DecoderEmbedding`` of a decoder) to inspect.
        decoder: the decoder itself, traced alone if ``embed`` cannot be (its output
            may be a container latentgeo cannot pick from yet).

    Returns:
        ``LatentSize`` if the input goes (through casts only) into an
        ``nn.Linear``; ``None`` otherwise (untraceable, or a first operation
        that does not fix ``d``).

    Example:
        >>> net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 5))
        >>> infer_latent_dim(net)
        LatentSize(dim=16, source="its first layer '0' is Linear(in_features=16)")
    """
    trace = traced_graph(embed) if isinstance(embed, nn.Module) else None
    if trace is None and callable(decoder):
        embed = _Raw(decoder)
        trace = traced_graph(embed)
    if trace is None:
        return None
    assert isinstance(embed, nn.Module)
    start = next((n for n in trace.graph.nodes if n.op == "placeholder"), None)
    todo, seen = [start] if start is not None else [], set()
    while todo:  # the input, and what casts of it reach
        node = todo.pop()
        seen.add(node)
        for user in node.users:
            if user in seen or _reads_shape(user) or not user.args or user.args[0] is not node:
                continue
            if user.op == "call_method" and user.target in _PASS_METHODS:
                todo.append(user)
            found = _linear_in_features(embed, trace.constants, user)
            if found is not None:
                return found
    return None


def _linear_in_features(
    embed: nn.Module, constants: dict[str, Tensor], user: fx.Node
) -> LatentSize | None:
    """``in_features`` of a linear layer applied to a node (an ``nn.Linear`` or ``F.linear``)."""
    if user.op == "call_module":
        layer = embed.get_submodule(str(user.target))
        if isinstance(layer, nn.Linear):
            name = re.sub(r"^(decoder\.|captured\.\d+\.)", "", str(user.target))
            source = f"its first layer '{name}' is Linear(in_features={layer.in_features})"
            return LatentSize(layer.in_features, source)
    if user.op == "call_function" and user.target is F.linear:
        weight = user.args[1] if len(user.args) > 1 else user.kwargs.get("weight")
        if isinstance(weight, fx.Node) and weight.op == "get_attr":
            w: object = constants.get(str(weight.target))
            if w is None:
                w = _attribute(embed, str(weight.target))
            if isinstance(w, Tensor) and w.ndim == 2:
                source = f"its first layer is linear with a weight of shape {tuple(w.shape)}"
                return LatentSize(w.shape[1], source)
    return None


def _attribute(root: object, target: str) -> object:
    for part in target.split("."):
        root = getattr(root, part, None)
    return root


def _reads_shape(node: fx.Node) -> bool:
    """``z.shape``, ``z.size()``, ``z.dtype``...: uses of the input that read no value."""
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in ("shape", "dtype", "device", "ndim")
    return node.op == "call_method" and node.target in ("size", "dim")


def check_output_symbolically(embed: object) -> None:
    """Without a latent size to probe with, find an unusable output by tracing ``embed``.

    Only when the (cached) trace of ``embed`` failed: the trace is redone to see
    whether it failed on the decoder's output (:class:`UnsupportedOutput`, raised
    here) or on something else (then the metric says so in its warning).
    """
    if not isinstance(embed, nn.Module) or traced_graph(embed) is not None:
        return
    try:
        with distributions_on_proxies():
            fx.symbolic_trace(embed)
    except UnsupportedOutput as err:
        raise UnsupportedOutput(str(err)) from None
    except TRACE_ERRORS:
        return


def _probe_point(decoder: object, embed: object, d: int) -> Tensor:
    """A zero latent point ``(1, d)`` in the decoder's floating dtype and device."""
    for module in (decoder, embed):
        if isinstance(module, nn.Module):
            for t in (*module.parameters(), *module.buffers()):
                if torch.is_floating_point(t):
                    return torch.zeros(1, d, dtype=t.dtype, device=t.device)
    return torch.zeros(1, d)


def probe(embed: nn.Module | object, decoder: object, size: LatentSize) -> None:
    """Run ``embed`` once on a zero latent point ``(1, d)``; raise a clear error if it fails.

    Args:
        embed: the map whose pull-back is the metric (it runs the decoder and
            picks and embeds its output).
        decoder: the user's decoder (for its dtype and device, and in messages).
        size: the latent dimension to try and where it came from.

    Raises:
        ValueError: the decoder fails on a latent point of that size.
        TypeError: its output cannot make a metric (from the embedding: it lists
            what was returned and how to pick from it).
    """
    z = _probe_point(decoder, embed, size.dim)
    name = getattr(decoder, "__name__", type(decoder).__name__)
    try:
        with torch.no_grad():
            out = embed(z)  # type: ignore[operator]
    except PROBE_ERRORS as err:
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise ValueError(
            f"decoder {name} fails on a latent point of dimension {size.dim} ({size.source}): "
            f"{type(err).__name__}: {first}. Pass the latent dimension the decoder expects "
            "as as_metric(decoder, latent_dim=d)"
        ) from err
    if isinstance(out, Tensor) and out.shape[0] != 1:
        raise ValueError(
            f"decoder {name} returned {out.shape[0]} rows for 1 latent point; its output must "
            "have the batch of latent points as its leading dimension"
        )
