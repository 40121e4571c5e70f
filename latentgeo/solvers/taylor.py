"""Second-order forward mode (Taylor mode) through a traced decoder, for the geodesic ODE.

The geodesic acceleration of a pull-back needs, at every point, the Jacobian
``J`` (``d`` first-order tangents) and the second directional derivative
``∂²f[v, v]``. Nested ``torch.func.jvp`` gives the latter exactly but, on
torch's forward-mode formulas, a nested product through an ``nn.Linear``
costs many passes, and nesting once more (the log map's sensitivities) more
still. :class:`TaylorPropagator` traces the module once with ``torch.fx`` and
pushes the primal, ``K`` first-order tangents and one second-order term
``ẍ`` through it with the chain rule written out per layer:

* linear maps (``nn.Linear``, ``F.linear``, sums, reshapes…): ``ẏ = A ẋ``, ``ÿ = A ẍ``;
* element-wise ``y = σ(x)``: ``ẏ = σ'(x) ẋ``, ``ÿ = σ''(x) ẋ_v² + σ'(x) ẍ``;
* products: ``ÿ = ẍ_a b + a ẍ_b + 2 ẋ_a ẋ_b``;
* any other node: exact ``torch.func`` products of that node alone (``vmap``'d
  ``jvp`` for ``ẏ``, ``jvp`` of ``jvp`` for ``ÿ``).

So a tanh MLP costs about ``K + 3`` matrix products per layer and nothing of
torch's forward-mode machinery on the hot path; the result is the exact
derivative whatever the module contains.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.func import jvp, vmap

from latentgeo.metrics.forward_mode import holds_tensor
from latentgeo.metrics.tracing import traced_graph

__all__ = ["TaylorPropagator", "taylor_propagator"]

Derivs = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (x, y) -> (σ'(x), σ''(x))
State = tuple[Any, Tensor | None, Tensor | None]  # primal, first-order (K, ...), second-order


def _tanh(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    d1 = 1.0 - y * y
    return d1, -2.0 * y * d1


def _sigmoid(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    d1 = y * (1.0 - y)
    return d1, d1 * (1.0 - 2.0 * y)


def _exp(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return y, y


def _sin(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return torch.cos(x), -y


def _cos(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return -torch.sin(x), -y


def _relu(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return (x > 0).to(x.dtype), torch.zeros_like(x)


def _module_derivs(module: nn.Module) -> Derivs | None:
    if isinstance(module, nn.Tanh):
        return _tanh
    if isinstance(module, nn.Sigmoid):
        return _sigmoid
    if isinstance(module, nn.ReLU):
        return _relu
    if isinstance(module, nn.Softplus):
        beta, threshold = module.beta, module.threshold

        def softplus(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            s = torch.sigmoid(beta * x)
            linear = x * beta > threshold
            d1 = torch.where(linear, torch.ones_like(x), s)
            d2 = torch.where(linear, torch.zeros_like(x), beta * s * (1.0 - s))
            return d1, d2

        return softplus
    if isinstance(module, nn.ELU):
        alpha = module.alpha

        def elu(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            neg = y + alpha
            pos = x > 0
            return torch.where(pos, torch.ones_like(x), neg), torch.where(
                pos, torch.zeros_like(x), neg
            )

        return elu
    if isinstance(module, nn.LeakyReLU):
        slope = module.negative_slope

        def leaky(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            d1 = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))
            return d1, torch.zeros_like(x)

        return leaky
    if isinstance(module, nn.SiLU):

        def silu(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            s = torch.sigmoid(x)
            ds = s * (1.0 - s)
            return s + x * ds, 2.0 * ds + x * ds * (1.0 - 2.0 * s)

        return silu
    return None


_FUNCTIONS: dict[Any, Derivs] = {
    torch.tanh: _tanh,
    torch.sigmoid: _sigmoid,
    torch.exp: _exp,
    torch.sin: _sin,
    torch.cos: _cos,
    torch.relu: _relu,
    F.relu: _relu,
}
_METHODS: dict[str, Derivs] = {"tanh": _tanh, "sigmoid": _sigmoid, "exp": _exp, "relu": _relu}
_RESHAPES = {"reshape", "view", "flatten", "unsqueeze", "squeeze"}
_REDUCTIONS = {torch.sum, torch.mean, "sum", "mean"}


def _differentiable(out: Any) -> bool:
    """Whether a node's value carries derivatives (sizes and integer tensors do not).

    Raises:
        NotImplementedError: a container of tensors (``chunk``, ``split``…): the
            caller then uses the generic path for the whole module.
    """
    if isinstance(out, Tensor):
        return out.is_floating_point() or out.is_complex()
    if holds_tensor(out):
        raise NotImplementedError("nodes returning several tensors are not traced")
    return False


class TaylorPropagator:
    """``(z, T, v) ↦ (f(z), J T, ∂²f[v, v])`` for a traced module, batched over points.

    Args:
        module: an ``nn.Module`` mapping ``(N, d)`` to a tensor ``(N, ...)`` that
            ``torch.fx.symbolic_trace`` can trace.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
        >>> z, v = torch.randn(4, 2), torch.randn(4, 2)
        >>> basis = torch.eye(2)[:, None].expand(2, 4, 2)  # J's columns
        >>> out, tangents, second = TaylorPropagator(net)(z, basis, v)
        >>> out.shape, tangents.shape, second.shape
        (torch.Size([4, 3]), torch.Size([2, 4, 3]), torch.Size([4, 3]))
    """

    def __init__(self, module: nn.Module) -> None:
        trace = traced_graph(module)
        if trace is None:
            raise ValueError(
                f"{type(module).__name__} cannot be traced by torch.fx (or has several inputs)"
            )
        self.module = module
        self.graph, self._constants = trace.graph, trace.constants

    def __call__(self, z: Tensor, tangents: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Push ``tangents (K, N, d)`` (first order) and ``v (N, d)`` (second order) through.

        Returns:
            ``f(z)`` ``(N, m)``, ``J T`` ``(K, N, m)`` and ``∂²f[v, v]`` ``(N, m)``, all
            with the output flattened per point.
        """
        self._modules = dict(self.module.named_modules())
        t_all = torch.cat([tangents, v[None]], 0)  # the last tangent is v
        env: dict[fx.Node, State] = {}
        result: State | None = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                env[node] = (z, t_all, None)
            elif node.op == "get_attr":
                target = str(node.target)
                value: Any = self._constants.get(target, self.module)
                if target not in self._constants:
                    for part in target.split("."):
                        value = getattr(value, part)
                env[node] = (value, None, None)
            elif node.op == "output":
                arg = node.args[0]
                result = env[arg] if isinstance(arg, fx.Node) else None
            else:
                env[node] = self._step(node, env)
        if result is None or not isinstance(result[0], Tensor):
            raise TypeError("the traced module must return a single tensor")
        out, tan, sec = result
        n, k = z.shape[0], tangents.shape[0]
        flat = out.reshape(n, -1)
        tan_f = (
            torch.zeros((k, *flat.shape), dtype=flat.dtype, device=flat.device)
            if tan is None
            else tan[:k].reshape(k, n, -1)
        )
        sec_f = torch.zeros_like(flat) if sec is None else sec.reshape(n, -1)
        return flat, tan_f, sec_f

    # ---------------------------------------------------------------- rules
    def _step(self, node: fx.Node, env: dict[fx.Node, State]) -> State:
        args = fx.node.map_arg(node.args, lambda n: env[n][0])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n][0])
        live = [n for n in node.all_input_nodes if env[n][1] is not None]
        if node.op == "call_module":
            module = self._modules[str(node.target)]
            out = module(*args, **kwargs)
            if not live or not _differentiable(out):
                return out, None, None
            x, t, s = env[live[0]]
            if len(live) == 1 and len(node.args) == 1 and not kwargs:
                if isinstance(module, nn.Linear):
                    w = module.weight.T
                    return out, t @ w, None if s is None else s @ w  # type: ignore[operator]
                if isinstance(module, (nn.Identity, nn.Dropout)) and not module.training:
                    return out, t, s
                derivs = _module_derivs(module)
                if derivs is not None:
                    return (out, *self._elementwise(derivs, x, out, t, s))  # type: ignore[arg-type]
            return self._generic(module, node, env, out)
        fn: Any = (
            getattr(torch.Tensor, str(node.target)) if node.op == "call_method" else node.target
        )
        out = fn(*args, **kwargs)
        if not live or not _differentiable(out):
            return out, None, None
        ins = [env[n] if isinstance(n, fx.Node) else (n, None, None) for n in node.args]
        if fn is torch.cat and isinstance(node.args[0], (list, tuple)):
            cat = self._cat(node, env, out)
            if cat is not None:
                return cat
        fast = self._fast(node, fn, out, ins, kwargs)
        if fast is not None:
            return fast
        return self._generic(fn, node, env, out)

    @staticmethod
    def _cat(node: fx.Node, env: dict[fx.Node, State], out: Tensor) -> State | None:
        """``torch.cat`` is linear: concatenate the tangents (zeros for constant members)."""
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(dim, int) or len(node.args) > 2 or set(node.kwargs) - {"dim"}:
            return None
        members = node.args[0]
        assert isinstance(members, (list, tuple))
        states: list[State] = [
            env[m] if isinstance(m, fx.Node) else (m, None, None) for m in members
        ]
        if not all(isinstance(x, Tensor) for x, _, _ in states):
            return None
        k = next(t.shape[0] for _, t, _ in states if t is not None)
        tans, secs = [], []
        for x, t, s in states:
            tans.append(
                t if t is not None else torch.zeros((k, *x.shape), dtype=x.dtype, device=x.device)
            )
            secs.append(s if s is not None else torch.zeros_like(x))
        return out, torch.cat(tans, dim + 1 if dim >= 0 else dim), torch.cat(secs, dim)

    @staticmethod
    def _elementwise(
        derivs: Derivs, x: Tensor, y: Tensor, t: Tensor, s: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        d1, d2 = derivs(x, y)
        sec = d2 * t[-1] * t[-1]
        return d1 * t, sec if s is None else sec + d1 * s

    def _fast(
        self, node: fx.Node, fn: Any, out: Tensor, ins: list[State], kwargs: dict[str, Any]
    ) -> State | None:
        """Closed-form rules for the common functions, or ``None``."""
        red = str(node.target) if node.op == "call_method" else fn
        if red in _REDUCTIONS or (node.op == "call_method" and red in _RESHAPES):
            # linear in the first argument; the others are constants (dims, sizes)
            x, t, s = ins[0]
            extra = [a for a, _, _ in ins[1:]]
            if t is None or any(tt is not None for _, tt, _ in ins[1:]):
                return None
            f = getattr(torch.Tensor, red) if isinstance(red, str) else red
            tan = vmap(lambda tt: f(tt, *extra, **kwargs))(t)
            return out, tan, None if s is None else f(s, *extra, **kwargs)
        if kwargs:
            return None
        k_shape = 0
        for _, t, _ in ins:
            if t is not None:
                k_shape = t.shape[0]

        def full(t: Tensor) -> Tensor:
            return t.expand(k_shape, *out.shape) if t.shape[1:] != out.shape else t

        def full2(s: Tensor) -> Tensor:
            return s.expand(out.shape) if s.shape != out.shape else s

        name = str(node.target)
        if node.op == "call_method" and name in _METHODS and len(ins) == 1:
            x, t, s = ins[0]
            assert t is not None
            return (out, *self._elementwise(_METHODS[name], x, out, t, s))
        if node.op == "call_function" and fn in _FUNCTIONS and len(ins) == 1:
            x, t, s = ins[0]
            assert t is not None
            return (out, *self._elementwise(_FUNCTIONS[fn], x, out, t, s))
        if fn in (operator.add, torch.add, operator.sub, torch.sub) and len(ins) == 2:
            sign = -1.0 if fn in (operator.sub, torch.sub) else 1.0
            (_, ta, sa), (_, tb, sb) = ins
            tan = ta if tb is None else (sign * tb if ta is None else ta + sign * tb)
            sec = sa if sb is None else (sign * sb if sa is None else sa + sign * sb)
            return out, full(tan), None if sec is None else full2(sec)  # type: ignore[arg-type]
        if fn in (operator.neg, torch.neg) and len(ins) == 1:
            _, t, s = ins[0]
            return out, -t, None if s is None else -s  # type: ignore[operator]
        if fn in (operator.mul, torch.mul) and len(ins) == 2:
            (a, ta, sa), (b, tb, sb) = ins
            parts = [ta * b] if ta is not None else []
            if tb is not None:
                parts.append(a * tb)
            tan = parts[0] if len(parts) == 1 else parts[0] + parts[1]
            sec_parts = []
            if sa is not None:
                sec_parts.append(sa * b)
            if sb is not None:
                sec_parts.append(a * sb)
            if ta is not None and tb is not None:
                sec_parts.append(2.0 * ta[-1] * tb[-1])
            sec = None if not sec_parts else sum(sec_parts[1:], sec_parts[0])
            return out, full(tan), None if sec is None else full2(sec)
        if fn in (operator.truediv, torch.div) and len(ins) == 2:
            (_, ta, sa), (b, tb, sb) = ins
            if tb is None:
                assert ta is not None
                return out, full(ta / b), None if sa is None else full2(sa / b)
            # y = a / b: ẏ = (ȧ − y ḃ) / b, ÿ = (ä − y b̈ − 2 ẏ ḃ) / b
            tan = full((-out * tb if ta is None else ta - out * tb) / b)
            num = -2.0 * tan[-1] * tb[-1]
            if sa is not None:
                num = num + sa
            if sb is not None:
                num = num - out * sb
            return out, tan, full2(num / b)
        if fn in (operator.pow, torch.pow) and len(ins) == 2 and ins[1][1] is None:
            (x, t, sx), (p, _, _) = ins
            if not isinstance(p, (int, float)) or t is None:
                return None

            def power(xx: Tensor, yy: Tensor) -> tuple[Tensor, Tensor]:
                return p * xx ** (p - 1), p * (p - 1) * xx ** (p - 2)

            return (out, *self._elementwise(power, x, out, t, sx))

        if fn in (F.linear, torch.matmul, operator.matmul) and len(ins) >= 2:
            if ins[0][1] is None or any(t is not None for _, t, _ in ins[1:]):
                return None
            _, t, s = ins[0]
            assert t is not None
            rest: list[Tensor] = [x for x, _, _ in ins[1:]]
            if fn is F.linear:
                return out, F.linear(t, rest[0]), None if s is None else F.linear(s, rest[0])
            return out, torch.matmul(t, rest[0]), None if s is None else torch.matmul(s, rest[0])
        return None

    @staticmethod
    def _generic(
        fn: Callable[..., Any], node: fx.Node, env: dict[fx.Node, State], out: Any
    ) -> State:
        """Exact fallback for one node: ``vmap``'d ``jvp`` and ``jvp`` of ``jvp`` of it alone."""
        nodes = [n for n in node.all_input_nodes if env[n][1] is not None]
        primals = tuple(env[n][0] for n in nodes)
        firsts = tuple(cast(Tensor, env[n][1]) for n in nodes)
        seconds: tuple[Tensor, ...] = tuple(
            cast(Tensor, env[n][2]) if env[n][2] is not None else torch.zeros_like(env[n][0])
            for n in nodes
        )

        def call(*values: Tensor) -> Any:
            lookup = dict(zip(nodes, values, strict=True))

            def sub(n: fx.Node) -> Any:
                return lookup[n] if n in lookup else env[n][0]

            return fn(*fx.node.map_arg(node.args, sub), **fx.node.map_arg(node.kwargs, sub))

        def push(*ts: Tensor) -> Tensor:
            return jvp(call, primals, ts)[1]

        tan = vmap(push)(*firsts)
        vs = tuple(t[-1] for t in firsts)

        def along_v(*values: Tensor) -> Tensor:
            return jvp(call, values, vs)[1]

        curv = jvp(along_v, primals, vs)[1]
        return out, tan, curv + push(*seconds)


# modules whose traced path failed at run time (weakly held: they can still be freed)
_DISABLED: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def taylor_propagator(module: object) -> TaylorPropagator | None:
    """A :class:`TaylorPropagator` for ``module``, or ``None`` if it cannot be traced.

    The trace is cached per module (:func:`~latentgeo.metrics.tracing.traced_graph`),
    so calling this again is cheap.
    """
    if not isinstance(module, nn.Module) or module in _DISABLED:
        return None
    if traced_graph(module) is None:
        return None
    return TaylorPropagator(module)


def disable(module: nn.Module) -> None:
    """Stop using the traced path for ``module`` (after it failed at run time)."""
    _DISABLED.add(module)
