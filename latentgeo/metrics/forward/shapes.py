"""Shape rules: reshapes, transposes, indexing, concatenation, padding (all linear).

The tangent of a shape operation is the same operation on the tangent, with
the primal's dimensions shifted by one (``K`` leads), so ``ẏ = A ẋ`` and
``ÿ = A ẍ`` for the same ``A``.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentgeo.metrics.forward.elementwise import only_first_live
from latentgeo.metrics.forward.jet import Call, Rule, Site, full, lift, linear, zeros_like_tangent

__all__ = ["CONSTANT_ATTRIBUTES", "SHAPES", "VIEW_ATTRIBUTES"]

#: tensor attributes read with ``getattr`` that are views of the tensor (with a rule)
VIEW_ATTRIBUTES = frozenset({"T", "mT"})
#: attributes that carry no tangent (``.data`` is detached, like ``detach()``)
CONSTANT_ATTRIBUTES = frozenset(
    {"shape", "dtype", "device", "ndim", "layout", "is_cuda", "requires_grad", "data", "grad",
     "is_leaf", "names"}
)  # fmt: skip


def _tdim(d: int) -> int:
    return d + 1 if d >= 0 else d


def _reshape(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    """Operations that keep the elements' row-major order: the tangent is reshaped alike."""
    if ts[0] is None:  # ``constant.view_as(x)``: only x's shape is read
        return zeros_like_tangent(call.out, k)
    return ts[0].reshape(k, *call.out.shape)


def _cast(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    if ts[0] is None:  # ``constant.type_as(x)``
        return zeros_like_tangent(call.out, k)
    return ts[0].to(dtype=call.out.dtype, device=call.out.device)


def _transpose(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    if call.kwargs:
        return None
    if len(call.args) == 1:  # Tensor.t() / torch.t: a 2-d transpose (1-d: nothing)
        return ts[0] if call.args[0].ndim < 2 else ts[0].transpose(1, 2)
    if len(call.args) != 3:
        return None
    return ts[0].transpose(_tdim(call.args[1]), _tdim(call.args[2]))


def _attribute(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    name, t = call.args[1], ts[0]
    if isinstance(call.args[0], tuple):  # a field of ``torch.topk(...)`` & co.
        index = _field_index(call.args[0], name)
        return None if index is None or not isinstance(t, (tuple, list)) else t[index]
    if name == "mT":
        return t.transpose(-1, -2)
    if name == "T":
        return t.permute(0, *reversed(range(1, t.ndim)))
    return None


def _attribute_check(site: Site) -> str | None:
    return None  # a view attribute, or a field of a named tuple (else: the generic path)


def _field_index(value: tuple[Any, ...], name: str) -> int | None:
    """The position of field ``name`` of a named tuple (``torch.return_types``), if any."""
    field = getattr(value, name, None)
    return next((i for i, item in enumerate(value) if item is field), None)


def _permute(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    args = call.args
    dims = args[1] if len(args) == 2 and isinstance(args[1], Sequence) else args[1:]
    dims = call.kwargs.get("dims", dims)
    ndim = args[0].ndim
    return ts[0].permute(0, *[(d % ndim) + 1 for d in dims])


def _expand(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    if ts[0] is None:  # ``constant.expand_as(x)``: only x's shape is read
        return zeros_like_tangent(call.out, k)
    return full(ts[0], call.out)


def _index_ok(index: tuple[Any, ...]) -> bool:
    """Whether ``t[(:, *index)]`` keeps K in front: basic indexing, or one contiguous group
    of advanced indices (tensors, lists, and the integers among them)."""
    basic = (slice, type(None), type(Ellipsis))
    advanced = [not isinstance(i, basic) for i in index]
    if not any(not isinstance(i, (int, *basic)) or isinstance(i, bool) for i in index):
        return True  # integers, slices, None and Ellipsis only
    positions = [n for n, a in enumerate(advanced) if a]
    return positions == list(range(positions[0], positions[-1] + 1))


def _getitem(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    if call.kwargs or not isinstance(call.args[0], Tensor):
        return None
    index = call.args[1] if isinstance(call.args[1], tuple) else (call.args[1],)
    if not _index_ok(index):
        return None  # advanced indexing would move the K dimension
    key = (slice(None), *index)  # K stays in front
    return ts[0][key]


def _getitem_check(site: Site) -> str | None:
    index = site.args[1] if isinstance(site.args[1], tuple) else (site.args[1],)
    return "an index depends on the input" if any(site.live(i) for i in index) else None


def _tensors_and_dim(call: Call) -> tuple[Sequence[Tensor], int] | None:
    if any(key != "dim" for key in call.kwargs) or not 1 <= len(call.args) <= 2:
        return None
    return call.args[0], call.kwargs.get("dim", call.args[1] if len(call.args) > 1 else 0)


def _join(fn: Any) -> Any:
    def apply(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
        parsed = _tensors_and_dim(call)
        if parsed is None or not isinstance(ts[0], (list, tuple)):
            return None
        tensors, dim = parsed
        parts = [
            t if t is not None else zeros_like_tangent(x, k)
            for t, x in zip(ts[0], tensors, strict=True)
        ]
        return fn(parts, dim=_tdim(dim))

    return apply


def _broadcast_tensors(call: Call, ts: tuple[Any, ...], k: int) -> Any:
    if call.kwargs:
        return None
    return tuple(None if t is None else full(t, o) for t, o in zip(ts, call.out, strict=True))


def _pieces(name: str) -> Any:
    """``chunk``/``split``/``unbind``/``tensor_split``: a tuple of tangents."""

    def apply(call: Call, ts: tuple[Any, ...], k: int) -> Any:
        args = list(call.args[1:])
        kwargs = dict(call.kwargs)
        default = 0
        if name == "unbind" and not args and "dim" not in kwargs:
            args = [default]
        dim_at = 0 if name == "unbind" else 1
        if "dim" in kwargs:
            kwargs["dim"] = _tdim(kwargs["dim"])
        elif len(args) > dim_at:
            args[dim_at] = _tdim(args[dim_at])
        else:
            kwargs["dim"] = _tdim(default)
        return getattr(torch, name)(ts[0], *args, **kwargs)

    return apply


def _repeat(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    args = call.args
    sizes = args[1] if len(args) == 2 and isinstance(args[1], Sequence) else args[1:]
    t = lift(ts[0], len(sizes))
    return t.repeat(1, *sizes)


def _flip(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    args = call.args
    dims = args[1] if len(args) == 2 and isinstance(args[1], Sequence) else args[1:]
    dims = call.kwargs.get("dims", dims)
    return ts[0].flip([_tdim(d) for d in dims])


def _roll(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    names = ("shifts", "dims")
    opts = dict(zip(names, call.args[1:], strict=False)) | dict(call.kwargs)
    dims = opts.get("dims")
    if dims is None or (isinstance(dims, Sequence) and len(dims) == 0):
        return None  # a roll of the flattened tensor
    dims = [_tdim(d) for d in dims] if isinstance(dims, Sequence) else _tdim(dims)
    return torch.roll(ts[0], opts["shifts"], dims)


def _narrow_or_select(name: str) -> Any:
    def apply(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
        if call.kwargs or len(call.args) < 3:
            return None
        return getattr(torch, name)(ts[0], _tdim(call.args[1]), *call.args[2:])

    return apply


def _pad(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    names = ("pad", "mode", "value")
    opts = dict(zip(names, call.args[1:], strict=False)) | dict(call.kwargs)
    pad, mode = opts["pad"], opts.get("mode", "constant")
    t, x = ts[0], call.args[0]
    if mode == "constant":
        return F.pad(t, pad)  # the fill value is a constant: zero in the tangent
    if x.ndim == len(pad) // 2 + 2:  # batched: fold K into the batch
        return F.pad(t.flatten(0, 1), pad, mode=mode).unflatten(0, t.shape[:2])
    return F.pad(t, pad, mode=mode)


def _module_pad(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    assert call.module is not None
    return F.pad(ts[0], call.module.padding)  # type: ignore[arg-type]


#: functions returning ``(values, indices)``: where their ``dim`` argument is, and its default
_SELECTIONS: dict[str, tuple[int, int | None]] = {
    "max": (1, None), "min": (1, None), "topk": (2, -1), "sort": (1, -1),
}  # fmt: skip


def _selection(name: str) -> Any:
    """``max``/``min`` along a dimension, ``topk``, ``sort``: the values are entries of the
    input, so their tangents are the same entries of its tangents (``indices``: none)."""
    position, default = _SELECTIONS[name]

    def apply(call: Call, ts: tuple[Any, ...], k: int) -> Any:
        out, x = call.out, call.args[0]
        dim = call.kwargs.get("dim", call.args[position] if len(call.args) > position else default)
        if not isinstance(out, tuple) or len(out) != 2 or not isinstance(dim, int):
            return None  # e.g. torch.max(x): one value, the generic path
        values, indices = out
        dim = dim % x.ndim
        index = indices if values.ndim == x.ndim else indices.unsqueeze(dim)
        t = ts[0].gather(dim + 1, index.expand(ts[0].shape[0], *index.shape))
        return (t if values.ndim == x.ndim else t.squeeze(dim + 1)), None

    return apply


def _identity(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    return ts[0]


_RESHAPES = ("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as",
             "reshape_as", "contiguous", "clone", "ravel")  # fmt: skip

SHAPES: list[Rule] = [
    Rule("reshape", linear(_reshape), "reshape(ẋ)", "reshape(ẍ)",
         functions=(torch.reshape, torch.flatten, torch.unflatten, torch.squeeze,
                    torch.unsqueeze, torch.clone, torch.ravel),
         methods=_RESHAPES, modules=(nn.Flatten, nn.Unflatten)),
    Rule("cast", linear(_cast), "ẋ in the output's dtype", "ẍ in the output's dtype",
         methods=("to", "type_as", "float", "double", "type")),
    Rule("transpose", linear(_transpose), "transpose(ẋ)", "transpose(ẍ)",
         functions=(torch.transpose, torch.swapaxes, torch.swapdims, torch.t),
         methods=("transpose", "swapaxes", "swapdims", "t")),
    Rule("attribute", linear(_attribute), ".T / .mT of ẋ", ".T / .mT of ẍ",
         functions=(builtins.getattr,), check=_attribute_check),
    Rule("permute", linear(_permute), "permute(ẋ)", "permute(ẍ)", functions=(torch.permute,),
         methods=("permute",)),
    Rule("expand", linear(_expand), "expand(ẋ)", "expand(ẍ)", functions=(torch.broadcast_to,),
         methods=("expand", "expand_as")),
    Rule("getitem", linear(_getitem), "ẋ[index]", "ẍ[index]", functions=(operator.getitem,),
         check=_getitem_check),
    Rule("cat", linear(_join(torch.cat)), "cat(ẋᵢ)", "cat(ẍᵢ)",
         functions=(torch.cat, torch.concat, torch.concatenate)),
    Rule("stack", linear(_join(torch.stack)), "stack(ẋᵢ)", "stack(ẍᵢ)", functions=(torch.stack,)),
    Rule("broadcast_tensors", linear(_broadcast_tensors), "broadcast ẋᵢ", "broadcast ẍᵢ",
         functions=(torch.broadcast_tensors,)),
    Rule("chunk", linear(_pieces("chunk")), "chunks of ẋ", "chunks of ẍ",
         functions=(torch.chunk,), methods=("chunk",), check=only_first_live),
    Rule("split", linear(_pieces("split")), "pieces of ẋ", "pieces of ẍ",
         functions=(torch.split,), methods=("split",), check=only_first_live),
    Rule("tensor_split", linear(_pieces("tensor_split")), "pieces of ẋ", "pieces of ẍ",
         functions=(torch.tensor_split,), methods=("tensor_split",), check=only_first_live),
    Rule("unbind", linear(_pieces("unbind")), "slices of ẋ", "slices of ẍ",
         functions=(torch.unbind,), methods=("unbind",), check=only_first_live),
    Rule("repeat", linear(_repeat), "repeat(ẋ)", "repeat(ẍ)", methods=("repeat",),
         check=only_first_live),
    Rule("flip", linear(_flip), "flip(ẋ)", "flip(ẍ)", functions=(torch.flip,), methods=("flip",)),
    Rule("roll", linear(_roll), "roll(ẋ)", "roll(ẍ)", functions=(torch.roll,), methods=("roll",)),
    Rule("narrow", linear(_narrow_or_select("narrow")), "narrow(ẋ)", "narrow(ẍ)",
         functions=(torch.narrow,), methods=("narrow",), check=only_first_live),
    Rule("select", linear(_narrow_or_select("select")), "select(ẋ)", "select(ẍ)",
         functions=(torch.select,), methods=("select",), check=only_first_live),
    Rule("pad", linear(_pad), "pad(ẋ) with zeros (constant mode), same mode otherwise",
         "pad(ẍ) likewise", functions=(F.pad,), check=only_first_live),
    Rule("constant pad", linear(_module_pad), "pad(ẋ) with zeros", "pad(ẍ) with zeros",
         modules=(nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
                  nn.ConstantPad3d)),
    *[Rule(name, linear(_selection(name)), f"ẋ at the {name} indices",
           f"ẍ at the {name} indices", functions=(getattr(torch, name),), methods=(name,),
           check=only_first_live, notes="along a dimension (a global max/min: generic path)")
      for name in _SELECTIONS],
    Rule("identity", linear(_identity), "ẋ", "ẍ", functions=(operator.pos,),
         methods=("positive",), modules=(nn.Identity,)),
]  # fmt: skip
