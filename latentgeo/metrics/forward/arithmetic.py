"""Arithmetic rules: sums, products, quotients, powers, matrix products, reductions, softmax.

Broadcasting follows the primal: a tangent ``(K, *s)`` is viewed with ones
inserted after ``K`` (:func:`~latentgeo.metrics.forward.jet.lift`) so that it
broadcasts as its primal does.
"""

from __future__ import annotations

import operator
from numbers import Number
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentgeo.metrics.forward.elementwise import only_first_live
from latentgeo.metrics.forward.jet import (
    Call,
    Jet,
    Rule,
    Site,
    elementwise,
    full,
    lift,
    linear,
    product,
)

__all__ = ["ARITHMETIC"]


def _no_kwargs(site: Site) -> str | None:
    return f"keyword arguments {sorted(site.kwargs)}" if site.kwargs else None


def _tdim(d: int) -> int:
    """A primal dimension as a dimension of its tangent (K is the new leading one)."""
    return d + 1 if d >= 0 else d


# ------------------------------------------------------------------ sums
def _add(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    present = [t for t in ts[:2] if isinstance(t, Tensor)]
    out = call.out
    total = lift(present[0], out.ndim)
    for t in present[1:]:
        total = total + lift(t, out.ndim)
    return full(total, out)


def _sub(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    ta, tb = ts[:2]
    out = call.out
    if tb is None:
        return full(ta, out)
    if ta is None:
        return full(-tb, out)
    return full(lift(ta, out.ndim) - lift(tb, out.ndim), out)


def _neg(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    return -ts[0]


# ------------------------------------------------------------------ products
def _mul(call: Call) -> Jet | None:
    (a, b), (ja, jb) = call.args[:2], call.jets[:2]
    return product(a, ja, b, jb, call.out, call.second_order)


def _div(call: Call) -> Jet | None:
    """``y = a / b``: ``ẏ = (ȧ − y ḃ)/b``, ``ÿ = (ä − y b̈ − 2 ẏ_v ḃ_v)/b``."""
    (_, b), (ja, jb) = call.args[:2], call.jets[:2]
    out = call.out
    if jb is None:
        first = full(lift(ja.first, out.ndim) / b, out)
        second = None if ja.second is None else ja.second / b
    else:
        num = -out * lift(jb.first, out.ndim)
        if ja is not None:
            num = lift(ja.first, out.ndim) + num
        first = full(num / b, out)
        if not call.second_order:
            return Jet(first)
        s = -2.0 * first[-1] * jb.first[-1]
        if ja is not None and ja.second is not None:
            s = s + ja.second
        if jb.second is not None:
            s = s - out * jb.second
        second = s / b
    if not call.second_order or second is None:
        return Jet(first)
    return Jet(first, second if second.shape == out.shape else second.expand(out.shape))


def _pow(call: Call) -> Jet | None:
    (x, c), (jx, jc) = call.args[:2], call.jets[:2]
    if jx is not None and jc is None:
        return _POWER(call)
    if jx is None and jc is not None:  # a constant base: y = b^c
        log_b = torch.log(torch.as_tensor(x, dtype=call.out.dtype, device=call.out.device))
        shifted = Call(
            (c,), {}, call.out, (jc,), call.k, call.second_order, None
        )  # σ(c) = b^c: σ′ = y ln b, σ″ = y ln² b
        return elementwise(lambda c_, y: y * log_b, lambda c_, y, g: g * log_b)(shifted)
    return None


def _power_d1(x: Tensor, y: Tensor, c: Any) -> Any:
    if isinstance(c, Number):
        if c == 0:
            return torch.zeros_like(x)
        if c == 1:
            return torch.ones_like(x)
        if c == 2:
            return 2.0 * x
    return c * x ** (c - 1)


def _power_d2(x: Tensor, y: Tensor, g: Any, c: Any) -> Any:
    if isinstance(c, Number):
        if c in (0, 1):
            return torch.zeros_like(x)
        if c == 2:
            return 2.0
    return c * (c - 1) * x ** (c - 2)


_POWER = elementwise(_power_d1, _power_d2, lambda call: {"c": call.args[1]})


def _pow_check(site: Site) -> str | None:
    if site.kwargs:
        return "keyword arguments"
    if len(site.args) != 2 or (site.live(site.args[0]) and site.live(site.args[1])):
        return "both base and exponent depend on the input"
    return None


def _matmul(call: Call) -> Jet | None:
    (a, b), (ja, jb) = call.args[:2], call.jets[:2]
    if (ja is not None and a.ndim < 2 and b.ndim > 2) or (jb is not None and b.ndim < 2):
        return None  # vectors against batches: the K dimension would not broadcast
    n = max(a.ndim, b.ndim)
    first = None
    if ja is not None:
        first = torch.matmul(lift(ja.first, n) if a.ndim >= 2 else ja.first, b)
    if jb is not None:
        term = torch.matmul(a, lift(jb.first, n))
        first = term if first is None else first + term
    if first is None:
        return None
    if not call.second_order:
        return Jet(first)
    parts = []
    if ja is not None and ja.second is not None:
        parts.append(torch.matmul(ja.second, b))
    if jb is not None and jb.second is not None:
        parts.append(torch.matmul(a, jb.second))
    if ja is not None and jb is not None:
        parts.append(2.0 * torch.matmul(ja.first[-1], jb.first[-1]))
    second = None
    for part in parts:
        second = part if second is None else second + part
    return Jet(first, second)


def _f_linear(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    return F.linear(ts[0], call.args[1])


def _weights_constant(site: Site) -> str | None:
    if any(site.live(a) for a in site.args[1:]) or any(site.live(v) for v in site.kwargs.values()):
        return "the weight depends on the input"
    return None


def _where(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    cond, ta, tb = call.args[0], ts[1], ts[2]
    n = call.out.ndim
    a = 0.0 if ta is None else lift(ta, n)
    b = 0.0 if tb is None else lift(tb, n)
    return full(torch.where(cond, a, b), call.out)


def _masked_fill(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    return ts[0].masked_fill(call.args[1], 0.0)


# ------------------------------------------------------------------ reductions
def _sum_or_mean(reduce: Any) -> Any:
    def apply(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
        if any(key not in ("dim", "keepdim") for key in call.kwargs) or len(call.args) > 3:
            return None
        dim = call.kwargs.get("dim", call.args[1] if len(call.args) > 1 else None)
        keepdim = call.kwargs.get("keepdim", call.args[2] if len(call.args) > 2 else False)
        t = ts[0]
        if dim is None:  # over all elements
            return None if keepdim else reduce(t.reshape(t.shape[0], -1), dim=1)
        dims = [dim] if isinstance(dim, int) else list(dim)
        return reduce(t, dim=[_tdim(d) for d in dims], keepdim=bool(keepdim))

    return apply


def _softmax_dim(call: Call) -> int | None:
    if call.module is not None:
        dim = getattr(call.module, "dim", None)
        return dim if isinstance(dim, int) else None
    if any(key not in ("dim", "_stacklevel", "dtype") for key in call.kwargs):
        return None
    if call.kwargs.get("dtype") is not None:
        return None
    dim = call.kwargs.get("dim", call.args[1] if len(call.args) > 1 else None)
    return dim if isinstance(dim, int) else None


def _log_softmax_jet(p: Tensor, jet: Jet, dim: int, second_order: bool) -> Jet:
    """The jet of ``log softmax(x)`` given ``p = softmax(x)``: the Hessian of
    ``logsumexp`` is ``diag(p) − p pᵀ``."""
    first = jet.first - (p * jet.first).sum(_tdim(dim), keepdim=True)
    if not second_order:
        return Jet(first)
    tv = jet.first[-1]
    ptv = (p * tv).sum(dim, keepdim=True)
    second = -((p * tv * tv).sum(dim, keepdim=True) - ptv * ptv)
    if jet.second is not None:
        second = second + jet.second - (p * jet.second).sum(dim, keepdim=True)
    return Jet(first, second)


def _softmax(call: Call) -> Jet | None:
    dim = _softmax_dim(call)
    if dim is None:
        return None
    y = call.out
    log = _log_softmax_jet(y, call.jets[0], dim, call.second_order)
    if log.second is None:
        return Jet(y * log.first)
    return Jet(y * log.first, y * (log.second + log.first[-1] ** 2))


def _log_softmax(call: Call) -> Jet | None:
    dim = _softmax_dim(call)
    if dim is None:
        return None
    return _log_softmax_jet(call.out.exp(), call.jets[0], dim, call.second_order)


def _logsumexp(call: Call) -> Jet | None:
    if any(key not in ("dim", "keepdim") for key in call.kwargs):
        return None
    dim = call.kwargs.get("dim", call.args[1] if len(call.args) > 1 else None)
    keepdim = call.kwargs.get("keepdim", call.args[2] if len(call.args) > 2 else False)
    if not isinstance(dim, int):
        return None
    x, jet = call.args[0], call.jets[0]
    p = torch.softmax(x, dim)
    first = (p * jet.first).sum(_tdim(dim), keepdim=True)
    second = None
    if call.second_order:
        tv = jet.first[-1]
        ptv = (p * tv).sum(dim, keepdim=True)
        second = (p * tv * tv).sum(dim, keepdim=True) - ptv * ptv
        if jet.second is not None:
            second = second + (p * jet.second).sum(dim, keepdim=True)
    if not keepdim:
        first = first.squeeze(_tdim(dim))
        second = None if second is None else second.squeeze(dim)
    return Jet(first, second)


ARITHMETIC: list[Rule] = [
    Rule("add", linear(_add), "ȧ + ḃ", "ä + b̈", functions=(operator.add, torch.add),
         methods=("add",), check=_no_kwargs),
    Rule("sub", linear(_sub), "ȧ − ḃ", "ä − b̈", functions=(operator.sub, torch.sub),
         methods=("sub", "subtract"), check=_no_kwargs),
    Rule("neg", linear(_neg), "−ẋ", "−ẍ", functions=(operator.neg, torch.neg),
         methods=("neg", "negative"), check=_no_kwargs),
    Rule("mul", _mul, "ȧ b + a ḃ", "ä b + a b̈ + 2 ȧ ḃ", functions=(operator.mul, torch.mul),
         methods=("mul", "multiply"), check=_no_kwargs, kind="product"),
    Rule("div", _div, "(ȧ − y ḃ)/b", "(ä − y b̈ − 2 ẏ ḃ)/b",
         functions=(operator.truediv, torch.div, torch.true_divide),
         methods=("div", "divide", "true_divide"), check=_no_kwargs, kind="product"),
    Rule("pow", _pow, "c x^(c−1) for x^c; y ln b for b^x", "c(c − 1) x^(c−2); y ln² b",
         functions=(operator.pow, torch.pow), methods=("pow",), check=_pow_check,
         kind="element-wise"),
    Rule("matmul", _matmul, "ȧ B + A ḃ", "ä B + A b̈ + 2 ȧ ḃ",
         functions=(operator.matmul, torch.matmul, torch.mm, torch.bmm),
         methods=("matmul", "mm", "bmm"), check=_no_kwargs, kind="product"),
    Rule("linear", linear(_f_linear), "W ẋ", "W ẍ", functions=(F.linear,),
         check=_weights_constant),
    Rule("where", linear(_where), "where(c, ȧ, ḃ)", "where(c, ä, b̈)", functions=(torch.where,),
         check=_no_kwargs),
    Rule("masked_fill", linear(_masked_fill), "ẋ, 0 where masked", "ẍ, 0 where masked",
         functions=(torch.masked_fill,), methods=("masked_fill",), check=only_first_live),
    Rule("sum", linear(_sum_or_mean(torch.sum)), "Σ ẋ", "Σ ẍ", functions=(torch.sum,),
         methods=("sum",)),
    Rule("mean", linear(_sum_or_mean(torch.mean)), "mean ẋ", "mean ẍ", functions=(torch.mean,),
         methods=("mean",)),
    Rule("softmax", _softmax, "y ⊙ (ẋ − Σ y ẋ)", "y ⊙ (ℓ̈ + ℓ̇²), ℓ = log softmax",
         functions=(F.softmax, torch.softmax), methods=("softmax",), modules=(nn.Softmax,),
         check=only_first_live, kind="normalisation"),
    Rule("log_softmax", _log_softmax, "ẋ − Σ p ẋ", "ẍ − Σ p ẍ − (Σ p ẋ² − (Σ p ẋ)²)",
         functions=(F.log_softmax, torch.log_softmax), methods=("log_softmax",),
         modules=(nn.LogSoftmax,), check=only_first_live, kind="normalisation"),
    Rule("logsumexp", _logsumexp, "Σ p ẋ", "Σ p ẍ + Σ p ẋ² − (Σ p ẋ)²",
         functions=(torch.logsumexp,), methods=("logsumexp",), check=only_first_live,
         kind="normalisation"),
]  # fmt: skip
