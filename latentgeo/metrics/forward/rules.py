"""The one table of forward-mode rules, and how a traced call finds its rule.

Every rule (:class:`~latentgeo.metrics.forward.jet.Rule`) gives the first and
second derivatives of one operation once; the first-order propagator (``K``
tangents, for metric tensors and squared norms) and the second-order one
(Taylor mode, for the geodesic ODE) both use it. :data:`RULES` is the table,
indexed by function object (:data:`FUNCTIONS`), ``Tensor`` method name
(:data:`METHODS`; in-place ``name_`` variants map to ``name``) and module class
(:data:`MODULES`); :func:`rules_table` renders it for the documentation.

Adding a rule is one entry in one of ``elementwise.py``, ``arithmetic.py``,
``shapes.py`` or ``layers.py``, plus an example in the test generated from the
table (``tests/metrics/forward/test_rules.py``), which checks value, first and
second order against ``torch.func`` for every entry.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentgeo.metrics.forward.arithmetic import ARITHMETIC
from latentgeo.metrics.forward.elementwise import ELEMENTWISE
from latentgeo.metrics.forward.jet import Rule
from latentgeo.metrics.forward.layers import LAYERS
from latentgeo.metrics.forward.shapes import SHAPES

__all__ = [
    "CONSTANT_FUNCTIONS",
    "CONSTANT_METHODS",
    "FUNCTIONS",
    "INPLACE_FUNCTIONS",
    "METHODS",
    "MODULES",
    "RULES",
    "function_name",
    "module_name",
    "rules_table",
]

RULES: tuple[Rule, ...] = (*ELEMENTWISE, *ARITHMETIC, *SHAPES, *LAYERS)

FUNCTIONS: dict[Any, Rule] = {}
METHODS: dict[str, Rule] = {}
MODULES: dict[type[nn.Module], Rule] = {}
for _rule in RULES:
    _entries: list[tuple[dict[Any, Rule], tuple[Any, ...]]] = [
        (FUNCTIONS, _rule.functions),
        (METHODS, _rule.methods),
        (MODULES, _rule.modules),
    ]
    for _table, _keys in _entries:
        for _key in _keys:
            if _key in _table and _table[_key] is not _rule:  # one rule per operation
                raise RuntimeError(f"two rules for {_key!r}: {_table[_key].name}, {_rule.name}")
            _table[_key] = _rule

#: in-place functions (``torch.relu_``, ``F.elu_``...) -> their out-of-place function
INPLACE_FUNCTIONS: dict[Any, Any] = {}
for _fn in list(FUNCTIONS):
    _fn_name = getattr(_fn, "__name__", "")
    if "dropout" in _fn_name:  # torch.dropout_ & co. take other arguments: the generic path
        continue
    for _namespace in (torch, F):
        _inplace = getattr(_namespace, _fn_name + "_", None)
        if _fn_name and callable(_inplace) and _inplace not in FUNCTIONS:
            INPLACE_FUNCTIONS[_inplace] = _fn

#: calls whose output does not change with the values of their inputs (no tangent)
CONSTANT_FUNCTIONS = frozenset(
    {
        torch.ones_like, torch.zeros_like, torch.full_like, torch.empty_like, torch.rand_like,
        torch.randn_like, torch.sign, torch.floor, torch.ceil, torch.round, torch.trunc,
        torch.detach, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
        torch.linspace, torch.eye, torch.tensor, torch.argmax, torch.argmin, torch.argsort,
        torch.isnan, torch.isfinite, torch.isinf, torch.logical_and, torch.logical_or,
        torch.logical_not, torch.numel, torch.lt, torch.le, torch.gt, torch.ge, torch.eq,
        torch.ne, operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne,
        operator.not_, builtins.len,
    }
)  # fmt: skip
CONSTANT_METHODS = frozenset(
    {
        "size", "dim", "ndimension", "numel", "new_ones", "new_zeros", "new_full", "new_empty",
        "new_tensor", "sign", "floor", "ceil", "round", "trunc", "detach", "argmax", "argmin",
        "argsort", "lt", "le", "gt", "ge", "eq", "ne", "isnan", "isfinite", "isinf", "bool",
        "long", "int", "nonzero", "logical_and", "logical_or", "logical_not", "requires_grad_",
        "zero_", "fill_",
    }
)  # fmt: skip

_PREFIXES = (
    ("torch.nn.functional.", "F."),
    ("torch.nn.modules.", "nn."),
    ("_operator.", "operator."),
)


def function_name(fn: Any) -> str:
    """A readable name for a traced function (``F.relu``, ``torch.tanh``, ``operator.add``)."""
    module = getattr(fn, "__module__", None) or "torch"
    name = getattr(fn, "__name__", repr(fn))
    if module in ("torch._C._VariableFunctions", "torch._C", "torch.functional"):
        module = "torch"
    if module == "torch._C._nn":
        module = "torch.nn.functional"
    full = f"{module}.{name}"
    for prefix, short in _PREFIXES:
        if full.startswith(prefix):
            return short + full[len(prefix) :]
    return full


def module_name(cls: type) -> str:
    """``nn.Conv2d`` for torch's modules, the qualified name otherwise."""
    if cls.__module__.startswith("torch.nn"):
        return f"nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _targets(rule: Rule) -> str:
    names = [f"`nn.{cls.__name__}`" for cls in rule.modules]
    names += [f"`{function_name(fn)}`" for fn in rule.functions]
    names += [f"`Tensor.{m}`" for m in rule.methods]
    return ", ".join(names)


def rules_table() -> str:
    """The rule table as Markdown (one row per rule), for the documentation.

    Element-wise rows give ``σ′`` and ``σ″`` (then ``ẏ = σ′ ẋ``, ``ÿ = σ″ ẋ² + σ′ ẍ``);
    the other rows give ``ẏ`` and ``ÿ`` in terms of the inputs' ``ẋ`` and ``ẍ``.

    Example:
        >>> print(rules_table().splitlines()[0])
        | operation | traced calls | kind | first order | second order | notes |
    """
    lines = [
        "| operation | traced calls | kind | first order | second order | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in RULES:
        first = f"σ′ = {rule.first}" if rule.kind == "element-wise" else f"ẏ = {rule.first}"
        second = f"σ″ = {rule.second}" if rule.kind == "element-wise" else f"ÿ = {rule.second}"
        lines.append(
            f"| {rule.name} | {_targets(rule)} | {rule.kind} | {first} | {second} | {rule.notes} |"
        )
    return "\n".join(lines) + "\n"
