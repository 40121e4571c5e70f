"""What the first- and second-order propagators share: the traced, prepared module.

:class:`Propagator` traces a module (cached), prepares its graph (functional,
with a rule per node), and finds the shortcuts of :mod:`.patterns` once.
:func:`fast_path_report` says, before anything runs, why a module would not
get the full fast path: it cannot be traced, writes into a view, or has calls
without a rule (these use the exact per-node ``torch.func`` path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, fx, nn

from latentgeo.metrics.forward.errors import UnsupportedOperation
from latentgeo.metrics.forward.graph import prepare
from latentgeo.metrics.forward.interpreter import Interpreter
from latentgeo.metrics.forward.jet import Jet
from latentgeo.metrics.forward.patterns import Part, find_final_linear, find_parts
from latentgeo.metrics.forward.tracing import trace_failure, traced_graph

__all__ = ["FastPathReport", "Propagator", "fast_path_report"]


@dataclass(frozen=True)
class FastPathReport:
    """How much of the traced fast path a module gets.

    Attributes:
        usable: whether the traced propagators can run the module.
        reason: why not (untraceable, in-place writes into views...), else ``None``.
        unsupported: calls without a rule (exact per-node ``torch.func`` path), as labels.
    """

    usable: bool
    reason: str | None
    unsupported: tuple[str, ...]


def fast_path_report(module: object) -> FastPathReport:
    """Check a module for the traced fast path, without running it.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
        >>> fast_path_report(net)
        FastPathReport(usable=True, reason=None, unsupported=())
        >>> fast_path_report(lambda z: z).usable
        False
    """
    if not isinstance(module, nn.Module):
        return FastPathReport(False, "not an nn.Module", ())
    trace = traced_graph(module)
    if trace is None:
        return FastPathReport(False, f"torch.fx cannot trace it ({trace_failure(module)})", ())
    program = prepare(module, trace)
    if program.aliasing is not None:
        return FastPathReport(False, f"an in-place operation {program.aliasing}", ())
    if program.output is None:
        return FastPathReport(False, "it returns a container, not one tensor", ())
    return FastPathReport(True, None, tuple(program.unsupported))


class Propagator:
    """Base of :class:`~.first_order.TangentPropagator` and
    :class:`~.second_order.TaylorPropagator`: a module traced and prepared once.

    Args:
        module: an ``nn.Module`` with one input that ``torch.fx`` can trace.

    Raises:
        ValueError: the module cannot be traced, or writes in place into a view
            (see :func:`fast_path_report`).
    """

    def __init__(self, module: nn.Module) -> None:
        report = fast_path_report(module)
        if not report.usable:
            raise ValueError(f"{type(module).__name__} has no traced fast path: {report.reason}")
        trace = traced_graph(module)
        assert trace is not None
        self.module = module
        self.program = prepare(module, trace)
        self.unsupported = report.unsupported
        self._interpreter = Interpreter(module, self.program)
        self._final_node = find_final_linear(module, self.program)
        self._parts = find_parts(module, self.program)

    @property
    def output_node(self) -> fx.Node:
        """The node whose value the module returns."""
        assert self.program.output is not None
        return self.program.output

    @property
    def final_linear(self) -> nn.Linear | None:
        """The ``nn.Linear`` whose output the module returns directly, if there is one."""
        if self._final_node is None:
            return None
        module = self.module.get_submodule(str(self._final_node.target))
        return module if isinstance(module, nn.Linear) else None

    @property
    def parts(self) -> list[Part] | None:
        """The parts of an output concatenated from widening linear heads and others."""
        return self._parts

    @property
    def faster_values(self) -> bool:
        """Whether :meth:`run` computes values faster than calling the module: some of its
        layers have a faster forward (see :meth:`.interpreter.Interpreter.faster_forwards`)."""
        return self._interpreter.faster_forwards > 0

    def linear_of(self, part: Part) -> nn.Linear | None:
        """The ``nn.Linear`` of a part, if it is a linear head."""
        if part.linear is None:
            return None
        module = self.module.get_submodule(str(part.linear.target))
        assert isinstance(module, nn.Linear)
        return module

    def run(
        self, z: Tensor, first: Tensor | None, second_order: bool, wanted: list[fx.Node]
    ) -> list[tuple[Any, Any]]:
        """``(primal, jet)`` of the ``wanted`` nodes (see :class:`.interpreter.Interpreter`)."""
        return self._interpreter.run(z, first, second_order, wanted)

    def final_input_node(self) -> fx.Node:
        """The input node of the final linear layer.

        Raises:
            ValueError: the module does not end with a linear layer (see :attr:`final_linear`).
        """
        if self._final_node is None or self.final_linear is None:
            raise ValueError("the module does not return the output of an nn.Linear")
        node = self._final_node.args[0]
        assert isinstance(node, fx.Node)
        return node

    @staticmethod
    def tensor_output(value: Any, jet: Any, k: int) -> tuple[Tensor, Jet]:
        """A wanted node's value and jet, checked to be one tensor (zero jet if constant)."""
        if not isinstance(value, Tensor):
            raise UnsupportedOperation(type(value).__name__, "the module must return one tensor")
        if jet is None:
            zeros = torch.zeros((k, *value.shape), dtype=value.dtype, device=value.device)
            return value, Jet(zeros)
        if not isinstance(jet, Jet):
            raise UnsupportedOperation(type(value).__name__, "the module must return one tensor")
        return value, jet
