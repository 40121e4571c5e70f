"""Jets (the first- and second-order tangents of one value) and how rules are written.

A value ``x`` of the traced graph carries a :class:`Jet`:

* ``first``: ``K`` first-order tangents ``ẋ``, shape ``(K, *x.shape)``;
* ``second``: in second-order (Taylor) mode, the second directional derivative
  ``ẍ = ∂²x[v, v]`` along the direction ``v`` whose tangent is ``first[-1]``,
  shape ``x.shape`` (``None``: zero, and always ``None`` in first-order mode).

A :class:`Rule` maps a :class:`Call` (one traced call: its primal arguments,
their jets, its primal output) to the jet of the output, for both orders at
once, so that every derivative is written once:

* :func:`linear` for maps that are linear in their traced inputs (``ẏ = A ẋ``,
  ``ÿ = A ẍ``): only ``A`` applied to a tensor with one leading batch dimension;
* :func:`elementwise` for ``y = σ(x)``: ``σ′`` and ``σ″``
  (``ẏ = σ′ ẋ``, ``ÿ = σ″ ẋ_v² + σ′ ẍ``);
* anything else composes :func:`product` and :func:`jet_map`, or writes both
  orders out (normalisation layers, ``div``).

A rule returns ``None`` when a call is outside what it handles; the engine then
uses the exact per-node ``torch.func`` path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "Call",
    "Jet",
    "Rule",
    "Site",
    "elementwise",
    "full",
    "jet_map",
    "lift",
    "linear",
    "options",
    "product",
]

Tangents = Any  # a Jet, None, or a list/tuple of them (list arguments, tuple outputs)


@dataclass(frozen=True, slots=True)
class Jet:
    """The tangents of one tensor: ``first (K, *shape)``, ``second (*shape)`` or ``None``."""

    first: Tensor
    second: Tensor | None = None


@dataclass(slots=True)
class Call:
    """One traced call, as a rule sees it.

    Attributes:
        args: primal positional arguments.
        kwargs: primal keyword arguments (without ``inplace``).
        out: the primal output.
        jets: aligned with ``args``: a :class:`Jet`, ``None`` (constant) or a list of them.
        k: the number ``K`` of first-order tangents.
        second_order: whether second-order terms are wanted.
        module: the called module (``call_module`` nodes), else ``None``.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: Any
    jets: tuple[Tangents, ...]
    k: int
    second_order: bool
    module: nn.Module | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """What a rule's static check sees when the graph is prepared: the node's arguments
    (graph nodes where values are only known at run time), the module of a
    ``call_module`` node, and ``live(a)``: whether argument ``a`` depends on the input."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    module: nn.Module | None
    live: Callable[[Any], bool]


@dataclass(frozen=True)
class Rule:
    """One entry of the table: the derivatives of an operation, written once.

    Attributes:
        name: a short name (``"tanh"``, ``"conv"``...).
        apply: ``Call -> Jet`` (a tuple of jets for tuple outputs), ``None`` to decline.
        first: the first-order rule in words (documentation).
        second: the second-order rule in words (documentation).
        functions: the functions it applies to (``torch.tanh``, ``operator.add``...).
        methods: the ``Tensor`` methods it applies to (in-place ``name_`` variants included
            automatically).
        modules: the module classes it applies to (exact types).
        check: a static check of a call site; returns why the rule does not apply, or ``None``.
        kind: ``"element-wise"``, ``"linear"``, ``"product"``, ``"normalisation"``.
    """

    name: str
    apply: Callable[[Call], Any]
    first: str
    second: str
    functions: tuple[Any, ...] = ()
    methods: tuple[str, ...] = ()
    modules: tuple[type[nn.Module], ...] = ()
    check: Callable[[Site], str | None] | None = None
    kind: str = "linear"
    notes: str = field(default="")


# ------------------------------------------------------------------ broadcasting
def lift(t: Tensor, ndim: int) -> Tensor:
    """View a tangent ``(K, *s)`` as ``(K, 1, ..., 1, *s)`` with ``ndim`` dims after K, so
    that it broadcasts against tensors of ``ndim`` dims as its primal does."""
    missing = ndim - (t.ndim - 1)
    if missing <= 0:
        return t
    return t.reshape(t.shape[0], *([1] * missing), *t.shape[1:])


def full(t: Tensor, out: Tensor) -> Tensor:
    """A tangent broadcast to the output's shape ``(K, *out.shape)``."""
    t = lift(t, out.ndim)
    return t if t.shape[1:] == out.shape else t.expand(t.shape[0], *out.shape)


def _full2(s: Tensor, out: Tensor) -> Tensor:
    return s if s.shape == out.shape else s.expand(out.shape)


# ------------------------------------------------------------------ rule builders
# Module-level recursions: a recursive closure refers to itself through its cell, a
# reference cycle left to the garbage collector on every call.
def _first(j: Tangents) -> Any:
    if isinstance(j, Jet):
        return j.first
    if isinstance(j, (list, tuple)):
        return [_first(x) for x in j]
    return None


def _firsts(jets: Sequence[Tangents]) -> tuple[Any, ...]:
    return tuple(_first(j) for j in jets)


def _second(j: Tangents) -> Any:
    if isinstance(j, Jet):
        return None if j.second is None else j.second.unsqueeze(0)
    if isinstance(j, (list, tuple)):
        return [_second(x) for x in j]
    return None


def _any_second(j: Tangents) -> bool:
    if isinstance(j, Jet):
        return j.second is not None
    return isinstance(j, (list, tuple)) and any(_any_second(x) for x in j)


def _seconds(jets: Sequence[Tangents]) -> tuple[tuple[Any, ...], bool]:
    """The second-order terms with a batch dimension of one, and whether any is non-zero."""
    return tuple(_second(j) for j in jets), any(_any_second(j) for j in jets)


def _pack(first: Any, second: Any) -> Any:
    """Jets from a linear map's outputs (tensors, or tuples of them for tuple outputs)."""
    if isinstance(first, (list, tuple)):
        seconds = second if second is not None else [None] * len(first)
        return tuple(_pack(f, s) for f, s in zip(first, seconds, strict=True))
    if first is None:
        return None
    return Jet(first, None if second is None else second.squeeze(0))


LinearMap = Callable[[Call, tuple[Any, ...], int], Any]


def linear(apply: LinearMap) -> Callable[[Call], Any]:
    """A rule for a map linear in its traced inputs.

    Args:
        apply: ``(call, tangents, k) -> tangent``: the map applied to tangents with one
            leading batch dimension of size ``k`` (``tangents`` aligned with
            ``call.args``; ``None`` for constants), or ``None`` to decline. It is called
            once for the ``K`` first-order tangents and, in second-order mode, once for the
            second-order terms (``k = 1``).
    """

    def rule(call: Call) -> Any:
        first = apply(call, _firsts(call.jets), call.k)
        if first is None or not call.second_order:
            return _pack(first, None)
        seconds, any_second = _seconds(call.jets)
        second = apply(call, seconds, 1) if any_second else None
        return _pack(first, second)

    return rule


Derivative = Callable[..., Any]


def elementwise(
    d1: Derivative,
    d2: Derivative | None,
    params: Callable[[Call], dict[str, Any] | None] | None = None,
) -> Callable[[Call], Jet | None]:
    """A rule for ``y = σ(x)`` applied element by element.

    Args:
        d1: ``(x, y, **params) -> σ′(x)``.
        d2: ``(x, y, d1, **params) -> σ″(x)`` (given ``d1`` to reuse it); ``None``: zero.
        params: ``call -> keyword parameters`` of the derivatives (``None``: decline).
    """

    def rule(call: Call) -> Jet | None:
        p = {} if params is None else params(call)
        jet = call.jets[0]
        if p is None or not isinstance(jet, Jet):
            return None
        x, y = call.args[0], call.out
        g1 = d1(x, y, **p)
        first = jet.first * g1
        if not call.second_order:
            return Jet(first)
        second = None if jet.second is None else g1 * jet.second
        if d2 is not None:
            tv = jet.first[-1]
            curv = d2(x, y, g1, **p) * tv * tv
            second = curv if second is None else second + curv
        return Jet(first, second)

    return rule


def options(call: Call, spec: Sequence[tuple[str, Any]]) -> dict[str, Any] | None:
    """The parameters ``spec = ((name, default), ...)`` of a call: a module's attributes,
    or a function's arguments after the first (positional, then keywords). ``None`` if
    the call has other keyword arguments."""
    if call.module is not None:
        return {name: getattr(call.module, name, default) for name, default in spec}
    names = [name for name, _ in spec]
    if any(key not in names for key in call.kwargs) or len(call.args) > len(spec) + 1:
        return None
    values = dict(spec)
    values.update(zip(names, call.args[1:], strict=False))
    values.update(call.kwargs)
    return values


def jet_map(jet: Jet | None, fn: Callable[[Tensor], Tensor]) -> Jet | None:
    """The jet of ``A x`` for a linear ``A``: ``fn`` takes a tensor with one leading
    batch dimension (the K tangents, or the second-order term with a batch of one)."""
    if jet is None:
        return None
    second = None if jet.second is None else fn(jet.second.unsqueeze(0)).squeeze(0)
    return Jet(fn(jet.first), second)


def product(
    a: Any, ja: Jet | None, b: Any, jb: Jet | None, out: Tensor, second_order: bool
) -> Jet | None:
    """The jet of ``a * b`` (broadcasting): ``ẏ = ȧ b + a ḃ``, ``ÿ = ä b + a b̈ + 2 ȧ_v ḃ_v``."""
    n = out.ndim
    first = None
    if ja is not None:
        first = lift(ja.first, n) * b
    if jb is not None:
        term = a * lift(jb.first, n)
        first = term if first is None else first + term
    if first is None:
        return None
    first = full(first, out)
    if not second_order:
        return Jet(first)
    parts = []
    if ja is not None and ja.second is not None:
        parts.append(ja.second * b)
    if jb is not None and jb.second is not None:
        parts.append(a * jb.second)
    if ja is not None and jb is not None:
        parts.append(2.0 * ja.first[-1] * jb.first[-1])
    if not parts:
        return Jet(first)
    second = parts[0]
    for part in parts[1:]:
        second = second + part
    return Jet(first, _full2(second, out))


def zeros_like_tangent(x: Tensor, k: int) -> Tensor:
    """Zero tangents ``(k, *x.shape)`` for a constant member of a list argument."""
    return torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)
