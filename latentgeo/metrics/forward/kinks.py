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
from torch import nn

from latentgeo.metrics.forward.tracing import traced_graph

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

    Submodules are found by type, functional calls (``F.relu``, ``x.clamp(0)``) in
    the module's ``torch.fx`` trace where it has one. A function is not inspected.

    Args:
        module: a decoder or embedding module (anything else gives ``()``).

    Returns:
        The labels, in the module's order (each call site once).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3), nn.Tanh())
        >>> kinked_operations(net)
        ("ReLU at '1'",)
        >>> kinked_operations(nn.Sequential(nn.Linear(2, 8), nn.Softplus()))
        ()
    """
    if not isinstance(module, nn.Module):
        return ()
    found = [
        f"{type(m).__name__} at '{path}'"
        for path, m in module.named_modules()
        if _kinked_module(m)
    ]  # fmt: skip
    trace = traced_graph(module)
    if trace is not None:
        for node in trace.graph.nodes:
            method = node.op == "call_method" and str(node.target).rstrip("_") in KINKED_METHODS
            function = node.op == "call_function" and _is_kinked_function(node.target)
            if method or function:
                name = getattr(node.target, "__name__", str(node.target))
                found.append(f"{name} at node '{node.name}'")
    return tuple(found)


def _is_kinked_function(target: object) -> bool:
    try:
        return target in KINKED_FUNCTIONS
    except TypeError:  # an unhashable target
        return False
