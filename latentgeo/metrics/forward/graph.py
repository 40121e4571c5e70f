"""A traced module prepared for the engine: functional, with a rule per node, checked once.

:func:`prepare` turns a :class:`~latentgeo.metrics.forward.tracing.Trace` into a
:class:`Program`, once per trace:

1. **In-place operations become functional.** ``x.tanh_()``, ``torch.sigmoid_(x)``,
   ``F.relu(x, inplace=True)``, ``nn.ReLU(inplace=True)`` and ``x.mul_(y)`` run on
   a copy of ``x`` (so the primal that rules and the generic path see is never
   mutated, nor is the caller's input), and every later use of ``x`` is
   redirected to the operation's result, as eager execution sees it. An in-place
   operation on a *view* (or on a tensor of which a view is read afterwards)
   cannot be made functional this way: the program is then marked
   :attr:`Program.aliasing` and the module takes the exact generic path.
2. **Liveness.** A node is *live* if it depends on the input (value-independent
   calls such as ``zeros_like`` or ``x.shape`` cut the dependence).
3. **Rules.** Every live call is paired with its rule from the table, after the
   rule's static check; calls without one are listed in
   :attr:`Program.unsupported` (named once in a warning by the metric) and use
   the exact per-node ``torch.func`` path.
"""

from __future__ import annotations

import builtins
import operator
import weakref
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from latentgeo.metrics.forward.jet import Rule, Site
from latentgeo.metrics.forward.layers import TrainingModeError, random_in_training
from latentgeo.metrics.forward.rules import (
    CONSTANT_FUNCTIONS,
    CONSTANT_METHODS,
    FUNCTIONS,
    INPLACE_FUNCTIONS,
    METHODS,
    MODULES,
    function_name,
    module_name,
)
from latentgeo.metrics.forward.shapes import CONSTANT_ATTRIBUTES, VIEW_ATTRIBUTES
from latentgeo.metrics.forward.tracing import Trace

__all__ = ["Program", "Step", "prepare"]

#: operations whose result may share memory with their first argument
_VIEW_METHODS = frozenset(
    {
        "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze",
        "unsqueeze", "transpose", "swapaxes", "swapdims", "t", "permute", "expand", "expand_as",
        "narrow", "select", "chunk", "split", "unbind", "tensor_split", "contiguous", "detach",
        "as_strided", "diagonal", "movedim", "moveaxis", "unfold", "to", "type", "type_as",
        "float", "double", "half", "real", "imag", "ravel", "alias",
    }
)  # fmt: skip
_VIEW_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                 nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)  # fmt: skip


@dataclass(slots=True)
class Step:
    """How to run one call node: its rule (``None``: the generic path), whether it
    mutates its first argument (run on a copy), whether it depends on the input."""

    rule: Rule | None
    inplace: bool
    live: bool
    label: str


@dataclass
class Program:
    """A prepared graph (see the module doc).

    Attributes:
        graph: the functional graph (a copy of the trace's).
        constants: tensors stored by tracing.
        steps: per call node.
        output: the node the module returns (``None`` if it returns a container).
        unsupported: labels of the live calls without a rule, in graph order.
        aliasing: why in-place operations could not be made functional (``None``: they could).
    """

    graph: fx.Graph
    constants: dict[str, Any]
    steps: dict[fx.Node, Step] = field(default_factory=dict)
    output: fx.Node | None = None
    unsupported: list[str] = field(default_factory=list)
    aliasing: str | None = None


_PROGRAMS: weakref.WeakKeyDictionary[Trace, Program] = weakref.WeakKeyDictionary()


def prepare(root: nn.Module, trace: Trace) -> Program:
    """The (cached) :class:`Program` of a traced module.

    Raises:
        TrainingModeError: the graph calls a functional dropout with ``training=True``.
    """
    cached = _PROGRAMS.get(trace)
    if cached is not None:
        return cached
    graph = fx.Graph()
    graph.output(graph.graph_copy(trace.graph, {}))
    program = Program(graph, trace.constants)
    inplace = {n for n in graph.nodes if _mutates(root, n)}
    program.aliasing = _functionalize(root, graph, inplace)
    _resolve(root, program, inplace)
    _PROGRAMS[trace] = program
    return program


def _label(root: nn.Module, node: fx.Node) -> str:
    if node.op == "call_module":
        return f"{module_name(type(root.get_submodule(str(node.target))))} ('{node.target}')"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return function_name(node.target)


def _mutates(root: nn.Module, node: fx.Node) -> bool:
    """Whether a call writes into its first argument."""
    if not node.args or not isinstance(node.args[0], fx.Node):
        return False
    if node.kwargs.get("inplace", False) is True:
        return True
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("_") and name not in CONSTANT_METHODS
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return node.target in INPLACE_FUNCTIONS or (name.endswith("_") and not name.startswith("_"))
    if node.op == "call_module":
        return getattr(root.get_submodule(str(node.target)), "inplace", False) is True
    return False


def _is_view(root: nn.Module, node: fx.Node) -> bool:
    """Whether a call's result may share memory with its first argument."""
    if node.op == "call_module":
        return isinstance(root.get_submodule(str(node.target)), _VIEW_MODULES)
    if node.op == "call_method":
        return str(node.target) in _VIEW_METHODS
    if node.op == "call_function":
        if node.target is builtins.getattr:
            return node.args[1] in VIEW_ATTRIBUTES
        name = getattr(node.target, "__name__", "")
        return node.target is operator.getitem or name in _VIEW_METHODS
    return False


def _functionalize(root: nn.Module, graph: fx.Graph, inplace: set[fx.Node]) -> str | None:
    """Redirect the uses after each in-place call to its result; ``None``, or why not.

    A call writing into ``x`` is made functional when no other tensor sharing ``x``'s
    memory (a view of it, what it is a view of, other views of that) is read after
    the call: only then does running it on a copy change nothing else.
    """
    order = {n: i for i, n in enumerate(graph.nodes)}
    root_of: dict[fx.Node, fx.Node] = {}
    versions: dict[fx.Node, list[fx.Node]] = {}
    for node in list(graph.nodes):
        if node not in inplace:
            continue
        if "out" in node.kwargs:
            return f"{node.name} writes into an out= argument"
        target = node.args[0]
        assert isinstance(target, fx.Node)
        base = root_of.get(target, target)
        members = [base, *versions.get(base, [])]
        for alias in _aliases(root, base, inplace) - set(members):
            if order[alias] >= order[node]:
                continue  # the call itself, or taken from its result
            if any(order[user] > order[node] for user in alias.users):
                return f"{node.name} writes into memory that {alias.name} shares and reads later"
        for member in members:
            for user in list(member.users):
                if order[user] > order[node]:
                    user.replace_input_with(member, node)
        root_of[node] = base
        versions.setdefault(base, []).append(node)
    return None


def _aliases(root: nn.Module, node: fx.Node, inplace: set[fx.Node]) -> set[fx.Node]:
    """The nodes whose values may share memory with ``node``'s (views up and down)."""
    while _is_view(root, node) and node.args and isinstance(node.args[0], fx.Node):
        node = node.args[0]
    found, stack = {node}, [node]
    while stack:
        current = stack.pop()
        for user in current.users:
            first = user.args[0] if user.args else None
            sharing = _is_view(root, user) or user in inplace
            if first is current and sharing and user not in found:
                found.add(user)
                stack.append(user)
    return found


def _resolve(root: nn.Module, program: Program, inplace: set[fx.Node]) -> None:
    """Liveness, the rule of each live call, and the calls without one."""
    live: set[fx.Node] = set()
    seen: set[str] = set()
    nodes = list(program.graph.nodes)
    for node in nodes:
        if node.op == "placeholder":
            live.add(node)
        if node.op in ("placeholder", "get_attr", "output"):
            continue
        is_live = any(n in live for n in node.all_input_nodes) and not _constant(node)
        step = Step(None, node in inplace, is_live, _label(root, node))
        if is_live:
            live.add(node)
            step.rule, reason = _rule_of(root, node, live)
            if reason is not None and step.label not in seen:
                seen.add(step.label)
                program.unsupported.append(f"{step.label} ({reason})")
        if node.op == "call_function" and random_in_training(node.target, node.args, node.kwargs):
            raise TrainingModeError(
                f"the decoder calls {function_name(node.target)} with training=True (random); "
                "call decoder.eval() (or pass training=self.training)"
            )
        program.steps[node] = step
    output = nodes[-1]
    program.output = output.args[0] if isinstance(output.args[0], fx.Node) else None


def _constant(node: fx.Node) -> bool:
    if node.op == "call_method":
        return str(node.target) in CONSTANT_METHODS
    if node.op == "call_function":
        if node.target is builtins.getattr:
            return node.args[1] in CONSTANT_ATTRIBUTES
        try:
            return node.target in CONSTANT_FUNCTIONS
        except TypeError:  # an unhashable callable
            return False
    return False


def _rule_of(root: nn.Module, node: fx.Node, live: set[fx.Node]) -> tuple[Rule | None, str | None]:
    """A live call's rule, or ``None`` and why there is none."""
    module = None
    if node.op == "call_module":
        module = root.get_submodule(str(node.target))
        rule = MODULES.get(type(module))
    elif node.op == "call_method":
        name = str(node.target)
        if name.endswith("_") and node.args and isinstance(node.args[0], fx.Node):
            name = name[:-1]
        rule = METHODS.get(name)
    else:
        target = INPLACE_FUNCTIONS.get(node.target, node.target)
        try:
            rule = FUNCTIONS.get(target)
        except TypeError:
            rule = None
    if rule is None:
        return None, "no rule"
    kwargs = {k: v for k, v in node.kwargs.items() if k != "inplace"}

    def is_live(a: Any) -> bool:
        found = False

        def visit(n: fx.Node) -> fx.Node:
            nonlocal found
            found = found or n in live
            return n

        fx.node.map_arg(a, visit)
        return found

    if any(is_live(v) for v in kwargs.values()):
        return None, "an input passed by keyword"
    if rule.check is not None:
        reason = rule.check(Site(tuple(node.args), kwargs, module, is_live))
        if reason is not None:
            return None, reason
    return rule, None
