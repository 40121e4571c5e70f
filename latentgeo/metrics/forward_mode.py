"""Fast forward-mode products for traceable modules.

``torch.func.jvp`` is general but, for matrix products with a parameter (every
``nn.Linear``), torch's forward-mode formula also multiplies the input by the
parameter's zero tangent, materialised: a JVP then costs about four forward
passes instead of two, and under ``vmap`` (for Jacobians) far more.

:class:`TangentPropagator` traces a module once with ``torch.fx`` and pushes a
*batch* of K tangents through the graph with hand-written rules for the layers
decoders are made of (linear and convolution layers, element-wise
activations, sums and products), so that a layer costs one extra product per
tangent and the primal pass is shared. Any other node falls back to
``torch.func.jvp`` (vectorised over the K tangents with ``vmap``), so the
result is always the exact forward-mode derivative.

Tangents carry a leading dimension K: for an input ``z`` of shape ``(N, d)``
the tangent ``T`` has shape ``(K, N, d)`` and the result's tangent
``(K, *out.shape)``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.func import jvp, vmap

from latentgeo.metrics.tangent_rules import CONSTANT, RULES, canonical_name
from latentgeo.metrics.tracing import traced_graph

Tangent = Any  # a tensor (K, *shape), None, or a tuple of them for tuple-valued nodes

__all__ = ["TangentPropagator", "try_tangent_propagator"]


def _elementwise_derivative(module: nn.Module) -> Callable[[Tensor, Tensor], Tensor] | None:
    """``(x, y) -> dy/dx`` for element-wise activation modules, else ``None``."""
    if isinstance(module, nn.Tanh):
        return lambda x, y: 1.0 - y * y
    if isinstance(module, nn.Sigmoid):
        return lambda x, y: y * (1.0 - y)
    if isinstance(module, nn.ReLU):
        return lambda x, y: (x > 0).to(x.dtype)
    if isinstance(module, nn.LeakyReLU):
        slope = module.negative_slope
        return lambda x, y: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))
    if isinstance(module, nn.ELU):
        alpha = module.alpha
        return lambda x, y: torch.where(x > 0, torch.ones_like(y), y + alpha)
    if isinstance(module, nn.Softplus):
        beta, threshold = module.beta, module.threshold
        return lambda x, y: torch.where(
            x * beta > threshold, torch.ones_like(x), torch.sigmoid(beta * x)
        )
    if isinstance(module, nn.SiLU):

        def silu(x: Tensor, y: Tensor) -> Tensor:
            s = torch.sigmoid(x)
            return s * (1.0 + x * (1.0 - s))

        return silu
    if isinstance(module, (nn.Identity, nn.Dropout)) and not module.training:
        return lambda x, y: torch.ones_like(x)
    return None


def _conv_rule(module: nn.Module, tangent: Tensor) -> Tensor | None:
    """The tangent through a zero-padded convolution (no bias), or ``None``."""
    conv: dict[type, Callable[..., Tensor]] = {
        nn.Conv1d: F.conv1d,
        nn.Conv2d: F.conv2d,
        nn.Conv3d: F.conv3d,
    }
    convt: dict[type, Callable[..., Tensor]] = {
        nn.ConvTranspose1d: F.conv_transpose1d,
        nn.ConvTranspose2d: F.conv_transpose2d,
        nn.ConvTranspose3d: F.conv_transpose3d,
    }
    kind = type(module)
    if kind not in conv and kind not in convt:
        return None
    if getattr(module, "padding_mode", "zeros") != "zeros" or isinstance(module.padding, str):
        return None
    flat = tangent.flatten(0, 1)
    if kind in conv:
        out = conv[kind](
            flat,
            module.weight,
            None,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
        )
    elif kind in convt:
        out = convt[kind](
            flat,
            module.weight,
            None,
            module.stride,
            module.padding,
            module.output_padding,
            module.groups,
            module.dilation,
        )
    else:
        return None
    return out.unflatten(0, tangent.shape[:2])


def holds_tensor(value: Any) -> bool:
    """Whether ``value`` is a tensor or a (nested) container holding one."""
    if isinstance(value, Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(holds_tensor(v) for v in value.values())
    return False


class TangentPropagator:
    """Push K tangents through a traced module: ``(z, T) -> (f(z), J_f(z) T)``.

    Args:
        module: an ``nn.Module`` that ``torch.fx.symbolic_trace`` can trace.

    Raises:
        Exception: whatever ``torch.fx`` raises for untraceable modules (use
            :func:`try_tangent_propagator` to get ``None`` instead).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
        >>> out, tangent = TangentPropagator(net)(torch.zeros(4, 2), torch.ones(1, 4, 2))
        >>> out.shape, tangent.shape
        (torch.Size([4, 3]), torch.Size([1, 4, 3]))
    """

    def __init__(self, module: nn.Module) -> None:
        trace = traced_graph(module)
        if trace is None:
            raise ValueError(
                f"{type(module).__name__} cannot be traced by torch.fx (or has several inputs)"
            )
        self.module = module
        self.graph, self._constants = trace.graph, trace.constants
        self._final_node = self._find_final_linear()
        self._parts = self._find_parts()

    def __call__(self, z: Tensor, tangents: Tensor) -> tuple[Tensor, Tensor]:
        """Evaluate the module at ``z (N, ...)`` and push ``tangents (K, N, ...)`` through it.

        Sub-modules and attributes are looked up on the original module at call
        time, so ``.to()``, ``.double()`` and replaced buffers are honoured.
        """
        out, tangent = self._run(z, tangents, stop=None)
        if not isinstance(out, Tensor):
            raise TypeError("the traced module must return a single tensor")
        if tangent is None:
            tangent = torch.zeros(
                (tangents.shape[0], *out.shape), dtype=out.dtype, device=out.device
            )
        return out, tangent

    @property
    def final_linear(self) -> nn.Linear | None:
        """The ``nn.Linear`` whose output the module returns directly, if there is one."""
        if self._final_node is None:
            return None
        module = self.module.get_submodule(str(self._final_node.target))
        return module if isinstance(module, nn.Linear) else None

    def _find_final_linear(self) -> fx.Node | None:
        """The graph node of a final ``nn.Linear`` call (found once, at trace time)."""
        output = next(n for n in self.graph.nodes if n.op == "output")
        last = output.args[0]
        if not isinstance(last, fx.Node) or last.op != "call_module" or len(last.users) != 1:
            return None
        module = self.module.get_submodule(str(last.target))
        if not isinstance(module, nn.Linear) or len(last.args) != 1 or last.kwargs:
            return None
        return last if isinstance(last.args[0], fx.Node) else None

    def _find_parts(self) -> list[tuple[fx.Node, nn.Linear | None]] | None:
        """The sources of an output ``cat([part_1, ...], dim≠0)`` built from views of
        its parts, paired with the widening ``nn.Linear`` that computes a part (or
        ``None``); ``None`` unless some part is such a linear layer.

        A Gaussian decoder's embedding ``(μ, σ)`` with a linear mean head is the
        typical case: ``‖Δ(μ, σ)‖² = Δhᵀ(WᵀW)Δh + ‖Δσ‖²`` skips the mean head.
        """
        output = next(n for n in self.graph.nodes if n.op == "output")
        last = output.args[0]
        if not isinstance(last, fx.Node) or last.op != "call_function":
            return None
        if last.target not in (torch.cat, torch.concat) or not last.args:
            return None
        items = last.args[0]
        dim = last.kwargs.get("dim", last.args[1] if len(last.args) > 1 else 0)
        if not isinstance(items, (list, tuple)) or not isinstance(dim, int) or dim == 0:
            return None
        parts: list[tuple[fx.Node, nn.Linear | None]] = []
        for item in items:
            if not isinstance(item, fx.Node):
                return None
            source = _through_views(item)
            linear = None
            if source.op == "call_module" and len(source.args) == 1 and not source.kwargs:
                module = self.module.get_submodule(str(source.target))
                if isinstance(module, nn.Linear) and module.out_features > module.in_features:
                    if isinstance(source.args[0], fx.Node):
                        linear = module
            parts.append((source, linear))
        return parts if any(linear is not None for _, linear in parts) else None

    def chord_parts(self, z: Tensor) -> list[tuple[Tensor, nn.Linear | None]] | None:
        """The output's parts at ``z (N, d)``, the linear ones *before* their layer.

        Returns a list of ``(value, linear)``: ``value`` is ``h (N, hidden)``, the
        input of ``linear``, for a linear part and the part itself ``(N, ·)``
        otherwise, so that the squared norm of a difference of outputs is the
        sum over parts of ``Δhᵀ(WᵀW)Δh`` or ``‖Δpart‖²`` (the order of the
        entries does not matter for a squared norm). ``None`` if the output is
        not such a concatenation. The caller checks once that the parts add up
        to the output (broadcasting could make them not).
        """
        if self._parts is None:
            return None
        targets = self._part_targets()
        env = self._run_only(z, None, targets)
        n = z.shape[0]
        return [
            (env[target][0].reshape(n, -1), linear)
            for target, (_, linear) in zip(targets, self._parts, strict=True)
        ]

    def tangent_parts(
        self, z: Tensor, tangents: Tensor
    ) -> list[tuple[Tensor, nn.Linear | None]] | None:
        """The output's tangents part by part, the linear ones *before* their layer.

        As :meth:`chord_parts`, for ``J T``: a list of ``(tangent, linear)``, the
        tangent ``(K, N, ·)`` of ``h`` for a linear part (``J_part T = W J_h T``)
        and of the part itself otherwise; parts that do not depend on ``z`` are
        left out. So ``Tᵀ Jᵀ J T`` is a sum over parts of ``(J_h T)ᵀ(WᵀW)(J_h T)``
        or ``‖J_part T‖²``, and a Gaussian decoder's mean head is never evaluated.
        ``None`` if the output is not such a concatenation.
        """
        if self._parts is None:
            return None
        targets = self._part_targets()
        env = self._run_only(z, tangents, targets)
        k, n = tangents.shape[0], z.shape[0]
        out = []
        for target, (_, linear) in zip(targets, self._parts, strict=True):
            tangent = env[target][1]
            if tangent is not None:
                out.append((tangent.reshape(k, n, -1), linear))
        return out

    def _part_targets(self) -> list[fx.Node]:
        """The nodes :meth:`chord_parts` and :meth:`tangent_parts` read: the input of a
        linear part's layer, the part itself otherwise."""
        assert self._parts is not None
        targets = []
        for source, linear in self._parts:
            target = source.args[0] if linear is not None else source
            assert isinstance(target, fx.Node)
            targets.append(target)
        return targets

    def _run_only(
        self, z: Tensor, tangents: Tensor | None, targets: list[fx.Node]
    ) -> dict[fx.Node, tuple[Any, Tangent]]:
        """``(primal, tangent)`` of ``targets`` and of the nodes they need, nothing else
        (tangents only with ``tangents``)."""
        needed: set[fx.Node] = set()
        stack = list(targets)
        while stack:
            node = stack.pop()
            if node not in needed:
                needed.add(node)
                stack.extend(node.all_input_nodes)
        env: dict[fx.Node, tuple[Any, Tangent]] = {}

        def primal(a: Any) -> Any:
            return fx.node.map_arg(a, lambda n: env[n][0])

        for node in self.graph.nodes:
            if node not in needed:
                continue
            if node.op == "placeholder":
                env[node] = (z, tangents)
            elif node.op == "get_attr":
                env[node] = (self._get_attr(node), None)
            elif tangents is None:
                env[node] = (self._call(node, primal(node.args), primal(node.kwargs)), None)
            else:
                env[node] = self._step(node, env, primal)
        return env

    def push_to_final_linear(self, z: Tensor, tangents: Tensor) -> tuple[nn.Linear, Tensor]:
        """Tangents at the *input* of the final linear layer ``f(z) = W h(z) + b``.

        Then ``J v = W (J_h v)``, so ``‖J v‖² = (J_h v)ᵀ (WᵀW) (J_h v)``: the
        widest product of a decoder (hidden → data) is never formed.

        Returns:
            The final ``nn.Linear`` and ``J_h T`` of shape ``(K, N, hidden)``.

        Raises:
            ValueError: the module does not end with a linear layer (see :attr:`final_linear`).
        """
        linear = self.final_linear
        if self._final_node is None or linear is None:
            raise ValueError("the module does not return the output of an nn.Linear")
        h, tangent = self._run(z, tangents, stop=self._final_node)
        if tangent is None:
            tangent = torch.zeros((tangents.shape[0], *h.shape), dtype=h.dtype, device=h.device)
        return linear, tangent

    def values(self, z: Tensor) -> Tensor:
        """The module's output at ``z``, computed from the trace (no tangents).

        Equal to ``module(z)`` for modules returning a tensor; for a
        :class:`~latentgeo.metrics.embeddings.DecoderEmbedding` it skips building
        the decoder's distribution object (and its argument checks).
        """
        out, _ = self._run(z, None, stop=None)
        if not isinstance(out, Tensor):
            raise TypeError("the traced module must return a single tensor")
        return out

    def values_to_final_linear(self, z: Tensor) -> tuple[nn.Linear, Tensor]:
        """The input ``h(z)`` of the final linear layer ``f(z) = W h(z) + b`` (no tangents).

        Returns:
            The final ``nn.Linear`` and ``h(z)`` of shape ``(N, hidden)``.

        Raises:
            ValueError: the module does not end with a linear layer (see :attr:`final_linear`).
        """
        linear = self.final_linear
        if self._final_node is None or linear is None:
            raise ValueError("the module does not return the output of an nn.Linear")
        h, _ = self._run(z, None, stop=self._final_node)
        return linear, h

    def _run(self, z: Tensor, tangents: Tensor | None, stop: fx.Node | None) -> tuple[Any, Tangent]:
        """Interpret the graph; with ``stop``, return the (primal, tangent) of its input.

        Without ``tangents`` only the primal values are computed.
        """
        env: dict[fx.Node, tuple[Any, Tangent]] = {}

        def primal(a: Any) -> Any:
            return fx.node.map_arg(a, lambda n: env[n][0])

        for node in self.graph.nodes:
            if stop is not None and node is stop:
                source = stop.args[0]
                assert isinstance(source, fx.Node)
                return env[source]
            if node.op == "placeholder":
                env[node] = (z, tangents)
            elif node.op == "get_attr":
                env[node] = (self._get_attr(node), None)
            elif node.op == "output":
                if not isinstance(node.args[0], fx.Node):
                    raise TypeError("the traced module must return a single tensor")
                return env[node.args[0]]
            elif tangents is None:
                args, kwargs = primal(node.args), primal(node.kwargs)
                env[node] = (self._call(node, args, kwargs), None)
            else:
                env[node] = self._step(node, env, primal)
        raise RuntimeError("the traced graph has no output")

    def _get_attr(self, node: fx.Node) -> Any:
        """A ``get_attr`` node's value: a constant made by tracing, else looked up on the
        module now (so ``.to()`` and replaced buffers are honoured)."""
        target = str(node.target)
        if target in self._constants:
            return self._constants[target]
        return _attribute(self.module, target)

    def _call(self, node: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if node.op == "call_module":
            return self.module.get_submodule(str(node.target))(*args, **kwargs)
        if node.op == "call_method":
            self_, *rest = args
            return getattr(self_, str(node.target))(*rest, **kwargs)
        return node.target(*args, **kwargs)  # type: ignore[operator]

    # ------------------------------------------------------------------ rules
    def _step(
        self,
        node: fx.Node,
        env: dict[fx.Node, tuple[Any, Tangent]],
        primal: Callable[[Any], Any],
    ) -> tuple[Any, Tangent]:
        args, kwargs = primal(node.args), primal(node.kwargs)
        out = self._call(node, args, kwargs)
        live = [n for n in node.all_input_nodes if env[n][1] is not None]
        if not live:
            return out, None  # constants, shapes and sizes carry no tangent
        if node.op == "call_module":
            if not isinstance(out, Tensor):
                raise NotImplementedError(f"module {node.target} does not return a tensor")
            module = self.module.get_submodule(str(node.target))
            return out, self._module_tangent(module, node, env, args, kwargs, out)
        tans = _tangents_of(node.args, env)
        name = canonical_name(node.op, node.target)
        source = args[0] if args else None
        if name == "getitem" and isinstance(source, tuple):  # an element of a tuple output
            index = args[1]
            element = tans[0][index] if isinstance(tans[0], tuple) else None
            return out, element if isinstance(out, Tensor) else None
        if not isinstance(out, Tensor):
            if name == "broadcast_tensors":
                return out, RULES[name](args, kwargs, tans, out, _k(live, env))
            if holds_tensor(out):
                raise NotImplementedError(
                    f"node {node.name} returns {type(out).__name__} of tensors: not supported"
                )
            return out, None  # shapes and sizes of a tensor carry no tangent
        if name in CONSTANT or not (out.is_floating_point() or out.is_complex()):
            return out, None  # constant in the inputs' values (or integer/boolean)
        rule = RULES.get(name) if name is not None else None
        tangent = rule(args, kwargs, tans, out, _k(live, env)) if rule is not None else None
        if tangent is None:
            tangent = self._generic(self._callable(node), node, env, args, kwargs)
        return out, tangent

    @staticmethod
    def _callable(node: fx.Node) -> Callable[..., Any]:
        if node.op == "call_method":
            method = str(node.target)
            return lambda self_, *a, **k: getattr(self_, method)(*a, **k)
        return node.target  # type: ignore[return-value]

    def _module_tangent(
        self,
        module: nn.Module,
        node: fx.Node,
        env: dict[fx.Node, tuple[Any, Tangent]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Tensor,
    ) -> Tensor:
        first = node.args[0] if node.args else None
        single = isinstance(first, fx.Node) and len(node.all_input_nodes) == 1 and not kwargs
        if single:
            assert isinstance(first, fx.Node)
            tangent = env[first][1]
            assert isinstance(tangent, Tensor)
            if isinstance(module, nn.Linear):
                return F.linear(tangent, module.weight)
            derivative = _elementwise_derivative(module)
            if derivative is not None:
                return tangent * derivative(args[0], out)
            conv = _conv_rule(module, tangent)
            if conv is not None:
                return conv
            if isinstance(module, (nn.Flatten, nn.Unflatten)):
                return tangent.reshape(tangent.shape[0], *out.shape)
        return self._generic(module, node, env, args, kwargs)

    @staticmethod
    def _generic(
        fn: Callable[..., Any],
        node: fx.Node,
        env: dict[fx.Node, tuple[Any, Tangent]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Tensor:
        """Exact fallback: ``torch.func.jvp`` of the node, vectorised over the K tangents."""
        flat_nodes: list[fx.Node] = [n for n in node.all_input_nodes if env[n][1] is not None]
        if any(not isinstance(env[n][1], Tensor) for n in flat_nodes):
            raise NotImplementedError(f"node {node.name} takes a tuple of tangents")
        primals = tuple(env[n][0] for n in flat_nodes)
        tangents: tuple[Tensor, ...] = tuple(env[n][1] for n in flat_nodes)

        def call(*values: Tensor) -> Any:
            lookup = dict(zip(flat_nodes, values, strict=True))

            def sub(n: fx.Node) -> Any:
                return lookup[n] if n in lookup else env[n][0]

            a = fx.node.map_arg(node.args, sub)
            kw = fx.node.map_arg(node.kwargs, sub)
            return fn(*a, **kw)

        def push(*ts: Tensor) -> Tensor:
            return jvp(call, primals, ts)[1]

        try:
            return vmap(push)(*tangents)
        except (RuntimeError, NotImplementedError, ValueError):
            k = tangents[0].shape[0]
            return torch.stack([push(*(t[i] for t in tangents)) for i in range(k)])


def try_tangent_propagator(module: object) -> TangentPropagator | None:
    """A :class:`TangentPropagator` for ``module``, or ``None`` if it cannot be traced.

    The trace is cached per module (:func:`~latentgeo.metrics.tracing.traced_graph`),
    so calling this again is cheap.
    """
    if not isinstance(module, nn.Module) or traced_graph(module) is None:
        return None
    return TangentPropagator(module)


def _tangents_of(args: Any, env: dict[fx.Node, tuple[Any, Tangent]]) -> tuple[Tangent, ...]:
    """The tangents aligned with a node's arguments: ``None`` for constants, lists for lists."""

    def of(a: Any) -> Tangent:
        if isinstance(a, fx.Node):
            return env[a][1]
        if isinstance(a, (list, tuple)):
            inner = [of(x) for x in a]
            return inner if any(t is not None for t in inner) else None
        return None

    return tuple(of(a) for a in args)


def _k(live: list[fx.Node], env: dict[fx.Node, tuple[Any, Tangent]]) -> int:
    """The number K of tangents pushed (from any tangent-carrying input)."""
    t = env[live[0]][1]
    while isinstance(t, (tuple, list)):
        t = next(x for x in t if x is not None)
    assert isinstance(t, Tensor)
    return t.shape[0]


def _through_views(node: fx.Node) -> fx.Node:
    """The node whose values ``node`` only reshapes (through ``reshape``/``view``/
    ``flatten``/``contiguous`` and elements of ``broadcast_tensors``)."""
    while True:
        first = node.args[0] if node.args else None
        if (
            node.op == "call_method"
            and node.target in ("reshape", "view", "flatten", "contiguous")
            and isinstance(first, fx.Node)
        ):
            node = first
            continue
        if (
            node.op == "call_function"
            and node.target is operator.getitem
            and isinstance(first, fx.Node)
            and first.op == "call_function"
            and first.target is torch.broadcast_tensors
            and isinstance(node.args[1], int)
            and isinstance(first.args[node.args[1]], fx.Node)
        ):
            node = first.args[node.args[1]]  # type: ignore[assignment]
            continue
        return node


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value
