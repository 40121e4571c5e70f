"""The forward-mode engine: one table of layer rules, first and second order.

* :mod:`.tracing`: ``torch.fx`` traces, cached per module.
* :mod:`.graph`: a trace prepared once: in-place operations made functional,
  liveness, a rule per node, the calls without one.
* :mod:`.rules` (with :mod:`.elementwise`, :mod:`.arithmetic`, :mod:`.shapes`,
  :mod:`.layers`): the table, each operation's first and second derivatives
  written once (:mod:`.jet` says how).
* :mod:`.interpreter`: runs a prepared graph, with the exact per-node
  ``torch.func`` path for calls without a rule.
* :mod:`.first_order` (:class:`TangentPropagator`, K tangents: metric tensors,
  squared norms) and :mod:`.second_order` (:class:`TaylorPropagator`: K tangents
  and ``∂²f[v, v]``, the geodesic ODE), on :mod:`.engine`; :mod:`.patterns`
  finds the shortcuts (a final widening linear layer, concatenated heads).
"""

from latentgeo.metrics.forward.engine import FastPathReport, Propagator, fast_path_report
from latentgeo.metrics.forward.errors import UnsupportedOperation, is_out_of_memory
from latentgeo.metrics.forward.first_order import TangentPropagator, try_tangent_propagator
from latentgeo.metrics.forward.jet import Jet, Rule
from latentgeo.metrics.forward.rules import RULES, rules_table
from latentgeo.metrics.forward.second_order import TaylorPropagator, taylor_propagator
from latentgeo.metrics.forward.tracing import forget, trace_failure, traced_graph

__all__ = [
    "RULES",
    "FastPathReport",
    "Jet",
    "Propagator",
    "Rule",
    "TangentPropagator",
    "TaylorPropagator",
    "UnsupportedOperation",
    "fast_path_report",
    "forget",
    "is_out_of_memory",
    "rules_table",
    "taylor_propagator",
    "trace_failure",
    "traced_graph",
    "try_tangent_propagator",
]
