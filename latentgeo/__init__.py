"""latentgeo: Riemannian geometry of the latent spaces of deep generative models.

Subpackages: :mod:`latentgeo.metrics`, :mod:`latentgeo.curves`,
:mod:`latentgeo.solvers`, :mod:`latentgeo.geometry`, :mod:`latentgeo.models`,
:mod:`latentgeo.interop`, :mod:`latentgeo.data`, :mod:`latentgeo.analysis`,
:mod:`latentgeo.viz`, :mod:`latentgeo.experiments`, :mod:`latentgeo.testing`; the
memory budget every batched path obeys (:func:`set_memory_budget`,
:func:`memory_budget`, :mod:`latentgeo.memory`). The light subpackages are imported
with the package; the others (matplotlib, scikit-learn) on first attribute access.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from latentgeo import curves, interop, metrics, models, solvers
from latentgeo._version import __version__
from latentgeo.memory import current_memory_budget, memory_budget, set_memory_budget

_LAZY = ("analysis", "data", "experiments", "geometry", "testing", "viz")

__all__ = [
    "__version__",
    "current_memory_budget",
    "curves",
    "interop",
    "memory_budget",
    "metrics",
    "models",
    "set_memory_budget",
    "solvers",
    *_LAZY,
]


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        return importlib.import_module(f"latentgeo.{name}")
    raise AttributeError(f"module 'latentgeo' has no attribute {name!r}")
