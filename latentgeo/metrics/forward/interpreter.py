"""Run a prepared graph: primal values, K first-order tangents and (optionally) the
second-order term, node by node.

Each node's jet comes from its rule (:mod:`~latentgeo.metrics.forward.rules`);
a node without one, or whose rule declines a call, takes the exact generic
path: ``torch.func.jvp`` of that node alone, vectorised over the K tangents
with ``vmap``, and ``jvp`` of ``jvp`` for the second-order term. Values are
freed as soon as no later node needs them.

Sub-modules and attributes are looked up on the module at run time, so
``.to()``, ``.double()`` and replaced buffers are honoured.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, fx, nn
from torch.func import jvp, vmap

from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.metrics.forward.errors import UnsupportedOperation, is_out_of_memory
from latentgeo.metrics.forward.graph import Program, Step
from latentgeo.metrics.forward.jet import Call, Jet
from latentgeo.metrics.forward.layout import plain, plain_readers
from latentgeo.metrics.forward.transposed import faster_forward, has_faster_forward

__all__ = ["Interpreter", "holds_tensor"]

Env = dict[fx.Node, tuple[Any, Any]]  # node -> (primal, jet / tuple of jets / None)


def holds_tensor(value: Any) -> bool:
    """Whether ``value`` is a tensor or a (nested) container holding one."""
    if isinstance(value, Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(holds_tensor(v) for v in value.values())
    return False


def _differentiable(out: Any) -> bool:
    if isinstance(out, Tensor):
        return out.is_floating_point() or out.is_complex()
    if isinstance(out, (list, tuple)) and out and all(isinstance(o, Tensor) for o in out):
        return any(o.is_floating_point() for o in out)
    if holds_tensor(out):
        raise UnsupportedOperation(type(out).__name__, "a node returns a container of tensors")
    return False


class Interpreter:
    """Interpret a :class:`~latentgeo.metrics.forward.graph.Program` on a module.

    Args:
        root: the traced module (its sub-modules and attributes are read at run time).
        program: its prepared graph.
    """

    def __init__(self, root: nn.Module, program: Program) -> None:
        self.root = root
        self.program = program
        self._plans: dict[tuple[fx.Node, ...], tuple[list[fx.Node], dict[fx.Node, list[fx.Node]]]]
        self._plans = {}
        #: the modules with a faster forward of the same value (a transposed convolution
        #: on the CPU: :func:`~latentgeo.metrics.forward.transposed.faster_forward`)
        self._faster = {
            node
            for node in program.graph.nodes
            if node.op == "call_module" and has_faster_forward(root.get_submodule(str(node.target)))
        }
        #: the calls that may be given a channels-last tensor made by those forwards and
        #: whose code may not take one (see :mod:`~latentgeo.metrics.forward.layout`)
        self._plain_readers = plain_readers(program.graph, root, self._faster)

    def run(
        self,
        z: Tensor,
        first: Tensor | None,
        second_order: bool,
        wanted: Sequence[fx.Node],
    ) -> list[tuple[Any, Any]]:
        """``(primal, jet)`` of the ``wanted`` nodes at ``z``, computing only what they need.

        Args:
            z: the input.
            first: ``K`` first-order tangents ``(K, *z.shape)``, or ``None`` for values only.
            second_order: also propagate the second-order term along ``first[-1]``.
            wanted: the nodes whose values and jets are returned.
        """
        nodes, free_after = self._plan(tuple(wanted))
        keep = set(wanted)
        env: Env = {}
        k = 0 if first is None else first.shape[0]
        steps = self.program.steps
        for node in nodes:
            if node.op == "placeholder":
                env[node] = (z, None if first is None else Jet(first))
            elif node.op == "get_attr":
                env[node] = (self._attribute(str(node.target)), None)
            else:
                env[node] = self._step(node, steps[node], env, k, second_order, first is None)
            for dead in free_after.get(node, ()):
                if dead not in keep:
                    env.pop(dead, None)
        return [env[n] for n in wanted]

    def _plan(
        self, wanted: tuple[fx.Node, ...]
    ) -> tuple[list[fx.Node], dict[fx.Node, list[fx.Node]]]:
        """The nodes ``wanted`` depend on, in order, and when each value can be freed."""
        plan = self._plans.get(wanted)
        if plan is None:
            needed: set[fx.Node] = set()
            stack = list(wanted)
            while stack:
                node = stack.pop()
                if node not in needed:
                    needed.add(node)
                    stack.extend(node.all_input_nodes)
            nodes = [n for n in self.program.graph.nodes if n in needed]
            last: dict[fx.Node, fx.Node] = {}
            for node in nodes:
                for source in node.all_input_nodes:
                    last[source] = node
            free: dict[fx.Node, list[fx.Node]] = {}
            for source, user in last.items():
                free.setdefault(user, []).append(source)
            plan = self._plans[wanted] = (nodes, free)
        return plan

    def _attribute(self, target: str) -> Any:
        """A ``get_attr`` value: a constant made by tracing, else looked up on the module now."""
        if target in self.program.constants:
            return self.program.constants[target]
        value: Any = self.root
        for part in target.split("."):
            value = getattr(value, part)
        return value

    def _function(self, node: fx.Node) -> Callable[..., Any]:
        if node.op == "call_module":
            return self.root.get_submodule(str(node.target))
        if node.op == "call_method":
            name = str(node.target)
            return lambda self_, *a, **k: getattr(self_, name)(*a, **k)
        return node.target  # type: ignore[return-value]

    @property
    def faster_forwards(self) -> int:
        """How many of the graph's modules have a faster forward of the same value."""
        return len(self._faster)

    def _step(
        self, node: fx.Node, step: Step, env: Env, k: int, second_order: bool, values_only: bool
    ) -> tuple[Any, Any]:
        args = fx.node.map_arg(node.args, lambda n: env[n][0])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n][0])
        if node in self._plain_readers:
            args, kwargs = plain(args), plain(kwargs)
        fn = self._function(node)
        if node in self._faster and has_faster_forward(fn):  # (hooks added since: not)
            out = faster_forward(fn, *args, **kwargs)  # type: ignore[arg-type]
        else:
            out = _invoke(fn, args, kwargs, step.inplace)
        if values_only or not step.live:
            return out, None
        if not any(env[n][1] is not None for n in node.all_input_nodes):
            return out, None  # constant in z at run time
        jets = _jets_of(node.args, env)
        if node.target is operator.getitem and isinstance(args[0], (tuple, list)):
            source, index = jets[0], cast(int, args[1])  # an element of a tuple output
            return out, source[index] if isinstance(source, (tuple, list)) else None
        if not _differentiable(out):
            return out, None
        jet = None
        if step.rule is not None:
            module = fn if node.op == "call_module" else None
            keywords = {key: v for key, v in kwargs.items() if key != "inplace"}
            call = Call(args, keywords, out, jets, k, second_order, module)  # type: ignore[arg-type]
            jet = step.rule.apply(call)
        if jet is None:
            jet = self._generic(fn, node, step, env, out, second_order)
        return out, jet

    def _generic(
        self, fn: Callable[..., Any], node: fx.Node, step: Step, env: Env, out: Any, so: bool
    ) -> Any:
        """Exact fallback: ``torch.func.jvp`` of the node alone (``vmap``'d over the K
        tangents), and ``jvp`` of ``jvp`` along ``v`` for the second-order term."""
        inputs = [n for n in node.all_input_nodes if env[n][1] is not None]
        if any(not isinstance(env[n][1], Jet) for n in inputs):
            raise UnsupportedOperation(step.label, "it takes a tuple of tensors as one argument")
        primals = tuple(plain(env[n][0]) for n in inputs)  # (the user's code may view them)
        jets: list[Jet] = [env[n][1] for n in inputs]

        def call(*values: Tensor) -> Any:
            lookup = dict(zip(inputs, values, strict=True))

            def sub(n: fx.Node) -> Any:
                return lookup[n] if n in lookup else plain(env[n][0])

            a = fx.node.map_arg(node.args, sub)
            kw = fx.node.map_arg(node.kwargs, sub)
            return _invoke(fn, a, kw, step.inplace)

        def push(*ts: Tensor) -> Any:
            return jvp(call, primals, ts)[1]

        firsts = tuple(plain(j.first) for j in jets)
        first = self._vmap(push, firsts, step)
        if not so:
            return _pack(first, None)
        vs = tuple(f[-1] for f in firsts)
        second = jvp(lambda *p: jvp(call, p, vs)[1], primals, vs)[1]
        if any(j.second is not None for j in jets):
            zeros = [
                torch.zeros_like(p) if j.second is None else plain(j.second)
                for j, p in zip(jets, primals, strict=True)
            ]
            second = _add(second, push(*zeros))
        return _pack(first, second)

    def _vmap(self, push: Callable[..., Any], firsts: tuple[Tensor, ...], step: Step) -> Any:
        try:
            return vmap(push)(*firsts)
        except (RuntimeError, NotImplementedError, ValueError) as err:
            if is_out_of_memory(err):
                raise
            message = f"{step.label}: torch.func.vmap cannot batch it; tangents go one at a time"
            warn_once(self.root, PerformanceWarning(message))
            k = firsts[0].shape[0]
            pushed = [push(*(t[i] for t in firsts)) for i in range(k)]
            if isinstance(pushed[0], (tuple, list)):
                return tuple(torch.stack(parts) for parts in zip(*pushed, strict=True))
            return torch.stack(pushed)


def _invoke(fn: Callable[..., Any], args: Any, kwargs: dict[str, Any], inplace: bool) -> Any:
    """Call ``fn``; an in-place call runs on a copy of its first argument and returns it."""
    if not inplace:
        return fn(*args, **kwargs)
    target = args[0].clone()
    fn(target, *args[1:], **kwargs)
    return target


def _jets_of(args: Any, env: Env) -> tuple[Any, ...]:
    """The jets aligned with a node's arguments: ``None`` for constants, lists for lists."""
    return tuple(_jet_of(a, env) for a in args)


def _jet_of(a: Any, env: Env) -> Any:
    """The jet of one argument (a module-level recursion: a recursive closure over ``env``
    would be a reference cycle keeping every pass's tensors alive until the garbage
    collector runs, and the heap growing meanwhile)."""
    if isinstance(a, fx.Node):
        return env[a][1]
    if isinstance(a, (list, tuple)):
        inner = [_jet_of(x, env) for x in a]
        return inner if any(t is not None for t in inner) else None
    return None


def _pack(first: Any, second: Any) -> Any:
    if isinstance(first, (tuple, list)):
        seconds = second if second is not None else [None] * len(first)
        return tuple(Jet(f, s) for f, s in zip(first, seconds, strict=True))
    return Jet(first, second)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, (tuple, list)):
        return tuple(x + y for x, y in zip(a, b, strict=True))
    return a + b
