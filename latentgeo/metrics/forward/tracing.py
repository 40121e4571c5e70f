"""Tracing modules with ``torch.fx`` once, for the traced forward-mode paths.

:func:`traced_graph` returns the computation graph of a module (``None`` if
``torch.fx`` cannot trace it), cached per module object, so that building a
metric, checking whether a decoder is traceable and solving geodesics do not
trace the same network again and again (a trace costs about 10 ms);
:func:`trace_failure` says why a module could not be traced.

Decoders that return a ``torch.distributions`` object can be traced through
:class:`~latentgeo.metrics.embeddings.DecoderEmbedding`: the distribution's
constructor runs on ``torch.fx`` proxies, which works as long as argument
validation (``torch._is_all_true`` on a proxy) is off, so tracing runs with
``Distribution``'s default validation switched off. ``Independent`` computes
its shapes with ``len()`` of the base's shape, which a proxy cannot answer;
while a module is traced (and only then), ``Independent.__init__`` keeps its
base distribution and the number of reinterpreted dimensions without
computing shapes, which is all its embedding reads; ``Categorical(logits=...)``
keeps its normalised logits likewise, and ``Bernoulli(probs=...)`` and
``ContinuousBernoulli(probs=...)`` their log-odds, computed as torch does
(probabilities clamped to ``[eps, 1 − eps]``). (Both switches are
process-wide for the few milliseconds of a trace: do not build distributions
in another thread meanwhile.) The traced graph then contains only the tensor
operations (``μ``, ``σ``, their broadcast and concatenation), not the
distribution.

The cache holds the graph and the constants that tracing created, never the
module itself (so a module can still be freed). A trace is redone when the
module's class, its ``forward`` or its training mode changes; a module whose
``forward`` branches on other Python attributes must be traced anew by
:func:`forget`. Wrappers registered with :func:`register_wrapper` (the
``DecoderEmbedding`` of a decoder) are cached under the module they wrap, with
what their own ``forward`` depends on (the embedding's ``output`` choice) in the
version, so that the wrappers ``as_metric`` builds for one decoder and one
output share one trace, and other outputs get traces of their own. A module
keeps its last :data:`TRACES_PER_MODULE` traces.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    Distribution,
    Independent,
)
from torch.fx.proxy import TraceError

from latentgeo.metrics.forward.errors import is_out_of_memory

__all__ = [
    "Trace",
    "distributions_on_proxies",
    "forget",
    "register_wrapper",
    "trace_failure",
    "traced_graph",
]

#: ``node.meta`` key of the operations tracing itself adds (a distribution's guards)
GUARD = "latentgeo_guard"

#: what ``torch.fx`` raises on modules it cannot trace (control flow on values, ``len`` of
#: a proxy, several inputs...): anything else, out-of-memory included, propagates
TRACE_ERRORS = (
    TraceError,
    TypeError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    AttributeError,
    IndexError,
    KeyError,
    AssertionError,
    NameError,
)


@dataclass(frozen=True, eq=False)
class Trace:
    """A traced graph and the tensors that tracing stored on the graph module."""

    graph: fx.Graph
    constants: dict[str, Tensor]


#: how many traces (versions) of one module the cache keeps, the latest used
TRACES_PER_MODULE = 8

_Entry = tuple[Any, "Trace | None", "str | None"]  # (version, trace, why it failed)
# module -> its latest entries; wrappers of a decoder are keyed by the decoder
_CACHE: weakref.WeakKeyDictionary[nn.Module, list[_Entry]] = weakref.WeakKeyDictionary()
_WRAPPED: weakref.WeakKeyDictionary[nn.Module, list[_Entry]] = weakref.WeakKeyDictionary()
_Unwrap = Callable[[nn.Module], object]
_WRAPPERS: dict[type, tuple[_Unwrap, _Unwrap]] = {}


def register_wrapper(
    cls: type[nn.Module], unwrap: _Unwrap, depends: _Unwrap = lambda wrapper: None
) -> None:
    """Cache the traces of ``cls`` instances under the module ``unwrap(instance)`` they wrap.

    Args:
        cls: a module class whose ``forward`` calls the wrapped module and tensor
            operations; subclasses are not included.
        unwrap: the wrapped object of an instance (used as the key if it is a module).
        depends: what else an instance's ``forward`` depends on (compared with
            ``==``; a trace is shared only between instances where it is equal).
    """
    _WRAPPERS[cls] = (unwrap, depends)


def _version(module: nn.Module) -> tuple[Any, ...]:
    """What a cached trace depends on besides the module's identity."""
    return (type(module), module.__dict__.get("forward"), module.training)


def _slot(
    module: nn.Module,
) -> tuple[weakref.WeakKeyDictionary[nn.Module, list[_Entry]], nn.Module, Any]:
    """``(cache, key, version)`` of a module (a registered wrapper: of what it wraps, with
    what the wrapper depends on in the version)."""
    wrapper = _WRAPPERS.get(type(module))
    inner = wrapper[0](module) if wrapper is not None else None
    if wrapper is not None and isinstance(inner, nn.Module):
        return _WRAPPED, inner, (_version(inner), type(module), _weakly(wrapper[1](module)))
    return _CACHE, module, _version(module)


def _weakly(value: object) -> object:
    """``value`` as a weak reference where it can be one (a user's ``output`` callable may
    hold the decoder, the cache's weak key); live references compare as their objects."""
    try:
        return weakref.ref(value)
    except TypeError:  # None, str, int...: nothing to keep alive
        return value


def _independent_while_tracing(
    self: Independent, base_distribution: Distribution, reinterpreted_batch_ndims: int, *_: Any
) -> None:
    self.base_dist = base_distribution
    self.reinterpreted_batch_ndims = reinterpreted_batch_ndims


def _categorical_while_tracing(
    self: Categorical, probs: Any = None, logits: Any = None, validate_args: Any = None
) -> None:
    if logits is None or probs is not None:  # probs: clamped by a dtype's eps; not traced
        raise TypeError("Categorical(probs=...) is traced only from logits")
    self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)  # as Categorical does


def _bernoulli_while_tracing(
    self: Bernoulli | ContinuousBernoulli,
    probs: Any = None,
    logits: Any = None,
    *_: Any,
    **__: Any,
) -> None:
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")
    if logits is not None:
        self.logits = logits
        return
    # torch's probs_to_logits: clamp to [eps, 1 − eps] (eps of the dtype, traced), log-odds
    one = probs.new_ones(())
    eps = torch.nextafter(one, one + one) - one
    clamped = probs.clamp(min=eps, max=1 - eps)
    if isinstance(clamped, fx.Proxy):  # torch's guard, not a kink of the decoder
        clamped.node.meta[GUARD] = True
    self.probs = probs
    self.logits = torch.log(clamped) - torch.log1p(-clamped)


@contextmanager
def distributions_on_proxies() -> Iterator[None]:
    """Let distributions be built from ``torch.fx`` proxies while a module is traced."""
    validate = Distribution._validate_args
    independent_init = Independent.__init__
    categorical_init = Categorical.__init__
    bernoulli_init = Bernoulli.__init__
    continuous_init = ContinuousBernoulli.__init__
    Distribution.set_default_validate_args(False)
    Bernoulli.__init__ = _bernoulli_while_tracing  # type: ignore[method-assign]
    ContinuousBernoulli.__init__ = _bernoulli_while_tracing  # type: ignore[method-assign]
    Independent.__init__ = _independent_while_tracing  # type: ignore[method-assign, assignment]
    Categorical.__init__ = _categorical_while_tracing  # type: ignore[method-assign]
    try:
        yield
    finally:
        Independent.__init__ = independent_init  # type: ignore[method-assign]
        Categorical.__init__ = categorical_init  # type: ignore[method-assign]
        Bernoulli.__init__ = bernoulli_init  # type: ignore[method-assign]
        ContinuousBernoulli.__init__ = continuous_init  # type: ignore[method-assign]
        Distribution.set_default_validate_args(validate)


def _trace(module: nn.Module) -> Trace:
    with distributions_on_proxies():
        graph_module = fx.symbolic_trace(module)
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
        raise ValueError(f"it takes {len(placeholders)} inputs; only one is traced")
    return Trace(graph, constants)


def _lookup(root: object, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        if not hasattr(value, part):
            return None
        value = getattr(value, part)
    return value


def _entry(module: nn.Module) -> _Entry:
    cache, key, version = _slot(module)
    entries = cache.setdefault(key, [])
    for i, cached in enumerate(entries):
        if cached[0] == version:
            entries.append(entries.pop(i))  # the latest used last
            return cached
    try:
        entry: _Entry = (version, _trace(module), None)
    except TRACE_ERRORS as err:
        if is_out_of_memory(err):
            raise
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        entry = (version, None, f"{type(err).__name__}: {first_line}"[:300])
    entries.append(entry)
    del entries[:-TRACES_PER_MODULE]
    return entry


def traced_graph(module: object) -> Trace | None:
    """The (cached) ``torch.fx`` trace of ``module``, or ``None`` if it cannot be traced.

    Args:
        module: anything; only ``nn.Module`` objects with one input are traced.

    Returns:
        The :class:`Trace`, or ``None`` for functions and untraceable modules
        (data-dependent control flow, several inputs...; see :func:`trace_failure`).

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
    return _entry(module)[1]


def trace_failure(module: object) -> str | None:
    """Why ``torch.fx`` could not trace ``module`` (``None`` if it can, or is no module).

    Example:
        >>> import torch
        >>> class Branchy(torch.nn.Module):
        ...     def forward(self, z):
        ...         return z if z.sum() > 0 else -z
        >>> trace_failure(Branchy()).split(":")[0]
        'TraceError'
    """
    if not isinstance(module, nn.Module):
        return None
    return _entry(module)[2]


def forget(module: nn.Module) -> None:
    """Drop the cached traces of ``module`` (it is traced again on next use), those of the
    wrappers of it (``as_metric(module, output=...)``'s) included; a wrapper's: those of
    the module it wraps."""
    cache, key, _ = _slot(module)
    cache.pop(key, None)
    _WRAPPED.pop(module, None)
