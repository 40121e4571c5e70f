"""``latentgeo.solvers.exp_log`` stays importable (the maps live in expmap, logmap, shooting)."""

from __future__ import annotations

import latentgeo.solvers as solvers
from latentgeo.solvers import exp_log


def test_the_old_module_names_the_same_objects() -> None:
    for name in exp_log.__all__:
        assert getattr(exp_log, name) is getattr(solvers, name)
