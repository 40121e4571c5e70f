"""Forward-mode rules for the functions and tensor methods of traced decoders.

A rule maps one traced call to the tangent of its output. Tangents carry a
leading dimension K (one per pushed direction): the tangent of a tensor ``x``
has shape ``(K, *x.shape)``. Each rule gets the call's primal arguments, the
tangents aligned with them (``None`` where an argument carries none; a list
for list arguments such as ``torch.cat``'s), the primal output and K, and
returns the output's tangent, or ``None`` when the call is outside what the
rule handles (unusual keyword arguments, advanced indexing...): the caller
then uses the exact ``torch.func.jvp`` fallback.

Rules exist for what decoders and embeddings are made of: element-wise
functions (``tanh``, ``softplus``, ``exp``, ``sqrt``...), arithmetic with
broadcasting, ``F.linear``/``matmul``, reductions (``sum``, ``mean``),
shape operations (``reshape``/``view``/``flatten``/``unsqueeze``...,
``transpose``/``permute``, basic indexing, ``expand``), ``cat``/``stack``
and ``broadcast_tensors`` (the last returns a tuple of tangents).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from numbers import Number
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["CONSTANT", "RULES", "canonical_name", "lift"]

#: calls whose output does not change with the values of their inputs (zero tangent)
CONSTANT = frozenset(
    {
        "ones_like", "zeros_like", "full_like", "empty_like",
        "new_ones", "new_zeros", "new_full", "new_empty",
        "sign", "floor", "ceil", "round", "trunc", "detach",
    }
)  # fmt: skip

Tangent = Any  # Tensor, None, or a list/tuple of them (for list arguments)
Rule = Callable[[tuple[Any, ...], dict[str, Any], tuple[Tangent, ...], Any, int], Any]

#: function objects -> the name of their rule (methods are named by themselves)
_FUNCTION_NAMES: dict[Any, str] = {
    operator.add: "add",
    torch.add: "add",
    operator.sub: "sub",
    torch.sub: "sub",
    operator.mul: "mul",
    torch.mul: "mul",
    operator.truediv: "div",
    torch.div: "div",
    torch.true_divide: "div",
    operator.neg: "neg",
    torch.neg: "neg",
    operator.pow: "pow",
    torch.pow: "pow",
    operator.matmul: "matmul",
    torch.matmul: "matmul",
    F.linear: "linear",
    operator.getitem: "getitem",
    torch.ones_like: "ones_like",
    torch.zeros_like: "zeros_like",
    torch.full_like: "full_like",
    torch.empty_like: "empty_like",
    torch.sign: "sign",
    torch.floor: "floor",
    torch.ceil: "ceil",
    torch.round: "round",
    torch.trunc: "trunc",
    torch.detach: "detach",
    torch.sum: "sum",
    torch.mean: "mean",
    torch.reshape: "reshape",
    torch.flatten: "reshape",
    torch.unflatten: "reshape",
    torch.squeeze: "reshape",
    torch.unsqueeze: "reshape",
    torch.transpose: "transpose",
    torch.swapaxes: "transpose",
    torch.permute: "permute",
    torch.cat: "cat",
    torch.concat: "cat",
    torch.stack: "stack",
    torch.broadcast_to: "expand",
    torch.broadcast_tensors: "broadcast_tensors",
    torch.functional.broadcast_tensors: "broadcast_tensors",
    torch.clamp: "clamp",
    torch.clip: "clamp",
    torch.tanh: "tanh",
    torch.sigmoid: "sigmoid",
    torch.exp: "exp",
    torch.log: "log",
    torch.sqrt: "sqrt",
    torch.rsqrt: "rsqrt",
    torch.sin: "sin",
    torch.cos: "cos",
    torch.atan: "atan",
    torch.abs: "abs",
    torch.square: "square",
    torch.log1p: "log1p",
    torch.expm1: "expm1",
    torch.relu: "relu",
    F.relu: "relu",
    F.softplus: "softplus",
    F.silu: "silu",
    F.elu: "elu",
    F.leaky_relu: "leaky_relu",
}
#: method names that mean the same as another rule's
_METHOD_ALIASES = {
    "view": "reshape",
    "flatten": "reshape",
    "unflatten": "reshape",
    "squeeze": "reshape",
    "unsqueeze": "reshape",
    "view_as": "reshape",
    "reshape_as": "reshape",
    "contiguous": "reshape",
    "swapaxes": "transpose",
    "swapdims": "transpose",
    "expand_as": "expand",
    "clip": "clamp",
    "clamp_min": "clamp",
    "true_divide": "div",
}


def canonical_name(op: str, target: Any) -> str | None:
    """The rule name of a traced call (``op`` is the fx node's op), or ``None``."""
    if op == "call_method":
        name = str(target)
        return _METHOD_ALIASES.get(name, name)
    try:
        return _FUNCTION_NAMES.get(target)
    except TypeError:  # unhashable target
        return None


def lift(t: Tensor, ndim: int) -> Tensor:
    """View a tangent ``(K, *s)`` as ``(K, 1, ..., 1, *s)`` with ``ndim`` dims after K, so
    that it broadcasts against tensors of ``ndim`` dims as its primal does."""
    missing = ndim - (t.ndim - 1)
    if missing <= 0:
        return t
    return t.reshape(t.shape[0], *([1] * missing), *t.shape[1:])


def _full(t: Tensor, out: Tensor) -> Tensor:
    """A tangent broadcast to the output's shape ``(K, *out.shape)``."""
    t = lift(t, out.ndim)
    return t if t.shape[1:] == out.shape else t.expand(t.shape[0], *out.shape)


def _dim(d: int) -> int:
    """A primal dimension as a dimension of its tangent (K is the new leading one)."""
    return d + 1 if d >= 0 else d


def _is_scalar(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


# ---------------------------------------------------------------- arithmetic
def _add(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if len(args) != 2 or kwargs:
        return None
    present = [t for t in tans if isinstance(t, Tensor)]
    total = lift(present[0], out.ndim)
    for t in present[1:]:
        total = total + lift(t, out.ndim)
    return _full(total, out)


def _sub(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if len(args) != 2 or kwargs:
        return None
    ta, tb = tans
    if tb is None:
        return _full(ta, out)
    if ta is None:
        return _full(-tb, out)
    return _full(lift(ta, out.ndim) - lift(tb, out.ndim), out)


def _mul(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if len(args) != 2 or kwargs:
        return None
    (a, b), (ta, tb) = args, tans
    parts = []
    if ta is not None:
        parts.append(lift(ta, out.ndim) * b)
    if tb is not None:
        parts.append(a * lift(tb, out.ndim))
    return _full(parts[0] if len(parts) == 1 else parts[0] + parts[1], out)


def _div(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if len(args) != 2 or kwargs:  # rounding modes are not differentiable anyway
        return None
    (_, b), (ta, tb) = args, tans
    if tb is None:
        return _full(lift(ta, out.ndim) / b, out)
    num = -out * lift(tb, out.ndim)
    if ta is not None:
        num = lift(ta, out.ndim) + num
    return _full(num / b, out)


def _neg(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    return -tans[0] if len(args) == 1 and not kwargs else None


def _pow(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if len(args) != 2 or kwargs or tans[1] is not None or not _is_scalar(args[1]):
        return None
    x, c = args
    if c == 2:
        return tans[0] * (2.0 * x)
    return tans[0] * (c * x.pow(c - 1))


def _matmul(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if kwargs or tans[0] is None or any(t is not None for t in tans[1:]):
        return None
    if len(args) == 2 and args[0].ndim >= 2:
        return torch.matmul(tans[0], args[1])
    return None


def _linear(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if kwargs or tans[0] is None or any(t is not None for t in tans[1:]):
        return None
    return F.linear(tans[0], args[1])


# ------------------------------------------------------------- element-wise
def _without_inplace(kwargs: dict) -> dict | None:
    """``kwargs`` without ``inplace=False`` (functional activations record it); ``None``
    for ``inplace=True``."""
    if kwargs.get("inplace", False):
        return None
    return {key: value for key, value in kwargs.items() if key != "inplace"}


def _unary(derivative: Callable[[Tensor, Tensor], Tensor]) -> Rule:
    def rule(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
        if len(args) != 1 or _without_inplace(kwargs) != {} or tans[0] is None:
            return None
        return tans[0] * derivative(args[0], out)

    return rule


def _softplus(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    names = ("beta", "threshold")
    if any(key not in names for key in kwargs) or len(args) > 3 or tans[0] is None:
        return None
    options = dict(zip(names, args[1:], strict=False)) | kwargs
    beta, threshold = options.get("beta", 1.0), options.get("threshold", 20.0)
    x = args[0]
    slope = torch.where(x * beta > threshold, torch.ones_like(x), torch.sigmoid(beta * x))
    return tans[0] * slope


def _elu(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    options = _without_inplace(kwargs)
    if options is None:
        return None
    kwargs = options
    if any(key != "alpha" for key in kwargs) or len(args) > 2 or tans[0] is None:
        return None
    alpha = kwargs.get("alpha", args[1] if len(args) > 1 else 1.0)
    x = args[0]
    return tans[0] * torch.where(x > 0, torch.ones_like(out), out + alpha)


def _leaky_relu(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    options = _without_inplace(kwargs)
    if options is None:
        return None
    kwargs = options
    if any(key != "negative_slope" for key in kwargs) or len(args) > 2 or tans[0] is None:
        return None
    slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
    x = args[0]
    return tans[0] * torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))


def _silu(x: Tensor, y: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _clamp(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    names = ("min", "max")
    if any(key not in names for key in kwargs) or len(args) > 3 or tans[0] is None:
        return None
    bounds = dict(zip(names, args[1:], strict=False)) | kwargs
    if any(isinstance(b, Tensor) for b in bounds.values()):
        return None
    x, inside = args[0], torch.ones_like(args[0], dtype=torch.bool)
    if bounds.get("min") is not None:
        inside = inside & (x >= bounds["min"])
    if bounds.get("max") is not None:
        inside = inside & (x <= bounds["max"])
    return tans[0] * inside.to(x.dtype)


# ------------------------------------------------------------------- shapes
def _sum_or_mean(reduce: Callable[..., Tensor]) -> Rule:
    def rule(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
        if any(key not in ("dim", "keepdim") for key in kwargs) or len(args) > 3:
            return None
        if tans[0] is None:
            return None
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
        t = tans[0]
        if dim is None:  # over all elements
            if keepdim:
                return None
            return reduce(t.reshape(t.shape[0], -1), dim=1)
        dims = [dim] if isinstance(dim, int) else list(dim)
        return reduce(t, dim=[_dim(d) for d in dims], keepdim=bool(keepdim))

    return rule


def _reshape(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    """Operations that keep the elements' row-major order: the tangent is reshaped alike."""
    if tans[0] is None or not isinstance(out, Tensor):
        return None
    return tans[0].reshape(k, *out.shape)


def _transpose(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if kwargs or len(args) != 3 or tans[0] is None:
        return None
    return tans[0].transpose(_dim(args[1]), _dim(args[2]))


def _permute(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if kwargs or tans[0] is None:
        return None
    dims = args[1] if len(args) == 2 and isinstance(args[1], Sequence) else args[1:]
    ndim = args[0].ndim
    return tans[0].permute(0, *[(d % ndim) + 1 for d in dims])


def _expand(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if kwargs or tans[0] is None:
        return None
    return _full(tans[0], out)


def _getitem(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    if kwargs or tans[0] is None or not isinstance(args[0], Tensor):
        return None
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    basic = (int, slice, type(None), type(Ellipsis))
    if not all(isinstance(i, basic) and not isinstance(i, bool) for i in index):
        return None  # advanced indexing could move the K dimension
    key = (slice(None), *index)  # K stays in front
    return tans[0][key]


def _tensors_and_dim(args: tuple, kwargs: dict) -> tuple[Sequence[Tensor], int] | None:
    if any(key != "dim" for key in kwargs) or not 1 <= len(args) <= 2:
        return None
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    return args[0], dim


def _cat(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    parsed = _tensors_and_dim(args, kwargs)
    if parsed is None or not isinstance(tans[0], (list, tuple)):
        return None
    tensors, dim = parsed
    parts = [_zeros_if_none(t, x, k) for t, x in zip(tans[0], tensors, strict=True)]
    return torch.cat(parts, dim=_dim(dim))


def _stack(args: tuple, kwargs: dict, tans: tuple, out: Any, k: int) -> Tensor | None:
    parsed = _tensors_and_dim(args, kwargs)
    if parsed is None or not isinstance(tans[0], (list, tuple)):
        return None
    tensors, dim = parsed
    parts = [_zeros_if_none(t, x, k) for t, x in zip(tans[0], tensors, strict=True)]
    return torch.stack(parts, dim=_dim(dim))


def _zeros_if_none(t: Tangent, x: Tensor, k: int) -> Tensor:
    if isinstance(t, Tensor):
        return t
    return torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)


def _broadcast_tensors(
    args: tuple, kwargs: dict, tans: tuple, out: Any, k: int
) -> tuple[Tensor | None, ...] | None:
    if kwargs:
        return None
    return tuple(None if t is None else _full(t, o) for t, o in zip(tans, out, strict=True))


RULES: dict[str, Rule] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "neg": _neg,
    "pow": _pow,
    "matmul": _matmul,
    "linear": _linear,
    "tanh": _unary(lambda x, y: 1.0 - y * y),
    "sigmoid": _unary(lambda x, y: y * (1.0 - y)),
    "exp": _unary(lambda x, y: y),
    "log": _unary(lambda x, y: 1.0 / x),
    "sqrt": _unary(lambda x, y: 0.5 / y),
    "rsqrt": _unary(lambda x, y: -0.5 * y * y * y),
    "sin": _unary(lambda x, y: torch.cos(x)),
    "cos": _unary(lambda x, y: -torch.sin(x)),
    "atan": _unary(lambda x, y: 1.0 / (1.0 + x * x)),
    "abs": _unary(lambda x, y: torch.sgn(x)),
    "square": _unary(lambda x, y: 2.0 * x),
    "log1p": _unary(lambda x, y: 1.0 / (1.0 + x)),
    "expm1": _unary(lambda x, y: y + 1.0),
    "relu": _unary(lambda x, y: (x > 0).to(x.dtype)),
    "silu": _unary(_silu),
    "softplus": _softplus,
    "elu": _elu,
    "leaky_relu": _leaky_relu,
    "clamp": _clamp,
    "sum": _sum_or_mean(torch.sum),
    "mean": _sum_or_mean(torch.mean),
    "reshape": _reshape,
    "transpose": _transpose,
    "permute": _permute,
    "expand": _expand,
    "getitem": _getitem,
    "cat": _cat,
    "stack": _stack,
    "broadcast_tensors": _broadcast_tensors,
}
