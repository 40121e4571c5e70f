"""Tracing modules with ``torch.fx`` once, for the traced forward-mode paths.

:func:`traced_graph` returns the computation graph of a module (``None`` if
``torch.fx`` cannot trace it), cached per module object, so that building a
metric, checking whether a decoder is traceable and solving geodesics do not
trace the same network again and again (a trace costs about 10 ms).

Decoders that return a ``torch.distributions`` object can be traced through
:class:`~latentgeo.metrics.embeddings.DecoderEmbedding`: the distribution's
constructor runs on ``torch.fx`` proxies, which works as long as argument
validation (``torch._is_all_true`` on a proxy) is off, so tracing runs with
``Distribution``'s default validation switched off. The traced graph then
contains only the tensor operations (``μ``, ``σ``, their broadcast and
concatenation), not the distribution.

The cache holds the graph and the constants that tracing created, never the
module itself (so a module can still be freed). A trace is redone when the
module's class, its ``forward`` or its training mode changes; a module whose
``forward`` branches on other Python attributes must be traced anew by
:func:`forget`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from torch import Tensor, fx, nn
from torch.distributions import Distribution

__all__ = ["Trace", "forget", "traced_graph"]


@dataclass(frozen=True)
class Trace:
    """A traced graph and the tensors that tracing stored on the graph module."""

    graph: fx.Graph
    constants: dict[str, Tensor]


# module -> (version, trace); wrappers of a decoder are keyed by the decoder
_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[Any, Trace | None]] = weakref.WeakKeyDictionary()
_WRAPPED: weakref.WeakKeyDictionary[nn.Module, tuple[Any, Trace | None]] = (
    weakref.WeakKeyDictionary()
)


def _version(module: nn.Module) -> tuple[Any, ...]:
    """What a cached trace depends on besides the module's identity."""
    return (type(module), module.__dict__.get("forward"), module.training)


def _slot(
    module: nn.Module,
) -> tuple[weakref.WeakKeyDictionary[nn.Module, tuple[Any, Trace | None]], nn.Module, Any]:
    """``(cache, key, version)``: a ``DecoderEmbedding`` is cached under its decoder,
    so that the wrappers ``as_metric`` builds for the same decoder share one trace."""
    from latentgeo.metrics.embeddings import DecoderEmbedding

    if type(module) is DecoderEmbedding and isinstance(module.decoder, nn.Module):
        return _WRAPPED, module.decoder, _version(module.decoder)
    return _CACHE, module, _version(module)


def _trace(module: nn.Module) -> Trace:
    validate = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        graph_module = fx.symbolic_trace(module)
    finally:
        Distribution.set_default_validate_args(validate)
    graph = fx.Graph()
    output = graph.graph_copy(graph_module.graph, {})
    graph.output(output)
    constants: dict[str, Tensor] = {}
    for node in graph.nodes:
        if node.op == "get_attr":
            target = str(node.target)
            value = _lookup(graph_module, target)
            if _lookup(module, target) is None and isinstance(value, Tensor):
                constants[target] = value
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError("only modules with exactly one input are traced")
    return Trace(graph, constants)


def _lookup(root: object, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        if not hasattr(value, part):
            return None
        value = getattr(value, part)
    return value


def traced_graph(module: object) -> Trace | None:
    """The (cached) ``torch.fx`` trace of ``module``, or ``None`` if it cannot be traced.

    Args:
        module: anything; only ``nn.Module`` objects with one input are traced.

    Returns:
        The :class:`Trace`, or ``None`` for functions and untraceable modules
        (data-dependent control flow, several inputs...).

    Example:
        >>> import torch
        >>> trace = traced_graph(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()))
        >>> " ".join(n.op for n in trace.graph.nodes)
        'placeholder call_module call_module output'
        >>> traced_graph(lambda z: z) is None
        True
    """
    if not isinstance(module, nn.Module):
        return None
    cache, key, version = _slot(module)
    cached = cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        trace: Trace | None = _trace(module)
    except Exception:
        trace = None
    cache[key] = (version, trace)
    return trace


def forget(module: nn.Module) -> None:
    """Drop the cached trace of ``module`` (it is traced again on next use)."""
    cache, key, _ = _slot(module)
    cache.pop(key, None)
