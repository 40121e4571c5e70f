"""Which operations of a module make its metric jump: piecewise-linear activations.

A decoder built of ReLU (or LeakyReLU, hard-tanh, max pooling, ``abs``, ``clamp``...)
is piecewise linear in the latent point, so its Jacobian, and the pull-back metric
``JᵀJ``, are piecewise constant: they jump across the kinks. The Christoffel
symbols are zero inside every region and the geodesic ODE (exponential and log
maps, the ``"bvp"`` and ``"shooting"`` methods) never sees the jumps; the energy
solver, which measures the length of whole curves, does. :func:`kinked_operations`
names those operations so that the ODE solvers can say so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

from latentgeo.metrics.forward.tracing import GUARD, traced_graph

__all__ = ["kinked_operations"]

#: module classes whose derivative jumps (SELU, and ELU with ``alpha ≠ 1``, at 0 too)
KINKED_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.Hardtanh, nn.Hardsigmoid,
    nn.Hardswish, nn.Hardshrink, nn.Softshrink, nn.Threshold, nn.SELU,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
#: functions of a traced graph whose derivative jumps
KINKED_FUNCTIONS: frozenset[object] = frozenset({
    torch.relu, F.relu, F.relu6, F.leaky_relu, F.prelu, F.rrelu, F.hardtanh, F.hardsigmoid,
    F.hardswish, F.hardshrink, F.softshrink, F.threshold, F.selu, torch.selu, torch.abs,
    torch.clamp, torch.clip, torch.clamp_min, torch.clamp_max, torch.maximum, torch.minimum,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
    F.adaptive_max_pool3d,
})  # fmt: skip
#: tensor methods whose derivative jumps (their in-place ``name_`` forms too)
KINKED_METHODS = frozenset({"relu", "abs", "clamp", "clip", "clamp_min", "clamp_max"})


def _kinked_module(module: nn.Module) -> bool:
    if isinstance(module, nn.ELU):
        return module.alpha != 1.0
    return isinstance(module, KINKED_MODULES)


def kinked_operations(module: object) -> tuple[str, ...]:
    """The operations of ``module`` whose derivative jumps, as ``"ReLU at 'net.1'"`` labels.

    Where ``torch.fx`` traces the module, the call sites of its graph that depend on
    the input (modules it calls, functional calls such as ``F.relu`` or
    ``x.clamp(0)``); a clamp of a parameter, a module stored but never called, and
    the guards tracing adds itself (a ``Bernoulli(probs=...)``'s clamp) are not
    kinks. An untraceable module is judged by the types of its submodules; a
    function is not inspected.

    Args:
        module: a decoder or embedding module (anything else gives ``()``).

    Returns:
        The labels, in the graph's order (each call site once).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3), nn.Tanh())
        >>> kinked_operations(net)
        ("ReLU at '1'",)
        >>> kinked_operations(nn.Sequential(nn.Linear(2, 8), nn.Softplus()))
        ()
    """
    if not isinstance(module, nn.Module):
        return ()
    trace = traced_graph(module)
    if trace is None:
        kinked = [(p, m) for p, m in module.named_modules() if _kinked_module(m)]
        return tuple(f"{type(m).__name__} at '{p}'" for p, m in kinked)
    found = []
    for node in _on_the_input(trace.graph):
        if node.meta.get(GUARD):
            continue
        if node.op == "call_module":
            sub = module.get_submodule(str(node.target))
            if _kinked_module(sub):
                found.append(f"{type(sub).__name__} at '{node.target}'")
        elif (node.op == "call_method" and str(node.target).rstrip("_") in KINKED_METHODS) or (
            node.op == "call_function" and _is_kinked_function(node.target)
        ):
            name = getattr(node.target, "__name__", str(node.target))
            found.append(f"{name} at node '{node.name}'")
    return tuple(found)


def _on_the_input(graph: fx.Graph) -> list[fx.Node]:
    """The nodes of ``graph`` that depend on its inputs, in the graph's order."""
    live = {n for n in graph.nodes if n.op == "placeholder"}
    for node in graph.nodes:  # topological order: a node's inputs come before it
        if any(arg in live for arg in node.all_input_nodes):
            live.add(node)
    return [n for n in graph.nodes if n in live and n.op != "placeholder"]


def _is_kinked_function(target: object) -> bool:
    try:
        return target in KINKED_FUNCTIONS
    except TypeError:  # an unhashable target
        return False
