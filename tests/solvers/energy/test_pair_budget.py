"""How many pairs fit the memory budget: the running pairs' state and the carried L-BFGS
memory, counted in bytes, with one announcement of a pair over its share."""

from __future__ import annotations

import pytest
import torch

from latentgeo.exceptions import PerformanceWarning
from latentgeo.memory import memory_budget
from latentgeo.solvers.energy import pair_budget

from .test_lbfgs import _per_pair_bytes, _quadratics, _state


def test_pairs_per_carry_counts_each_pairs_history() -> None:
    like = torch.zeros(1, dtype=torch.float64)
    per_pair = (2 * 5 + 1) * 12 * 8  # s, y (history 5) and γ, p = 12 numbers each
    with memory_budget(int(3 * per_pair / pair_budget.CARRY_SHARE)):
        assert pair_budget.pairs_per_carry(object(), 12, 5, like) == 3
    owner = object.__new__(type("Owner", (), {}))
    with memory_budget(per_pair), pytest.warns(PerformanceWarning) as caught:
        assert pair_budget.pairs_per_carry(owner, 12, 5, like) == 1
        assert pair_budget.pairs_per_carry(owner, 12, 5, like) == 1
    assert len(caught) == 1 and "one pair's L-BFGS memory (1,056 bytes" in str(caught[0].message)


def test_a_pair_over_the_budget_is_solved_alone_and_announced_once() -> None:
    objective = _quadratics(3, 6)
    objective.metric = object.__new__(type("Owner", (), {}))  # type: ignore[attr-defined]
    state = _state(objective, torch.zeros(3, 6, dtype=torch.float64))
    with memory_budget(_per_pair_bytes(6, 5)), pytest.warns(PerformanceWarning) as caught:
        assert pair_budget.pairs_per_run(objective, state.x, 5) == 1  # type: ignore[arg-type]
        pair_budget.pairs_per_run(objective, state.x, 5)  # type: ignore[arg-type]
    assert len(caught) == 1
    assert "lower max_knots or raise memory_budget" in str(caught[0].message)


def test_the_state_counts_the_preconditioner_of_a_curve() -> None:
    objective = _quadratics(2, 6)
    objective.linear = True  # type: ignore[misc]
    x = torch.zeros(2, 6, dtype=torch.float64)
    with memory_budget(int(3 * (_per_pair_bytes(6, 5) + 2 * 36 * 8) / pair_budget.STATE_SHARE)):
        assert pair_budget.pairs_per_run(objective, x, 5) == 3  # type: ignore[arg-type]
