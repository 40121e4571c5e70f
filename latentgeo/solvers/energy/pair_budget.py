"""How many pairs of the energy solver fit in the memory budget at once.

Two things of the spline solver grow with the number of pairs and are not
chunked work: the running pairs' state (a ``p × p`` preconditioner where the
curve is linear in its parameters, the L-BFGS history, the iteration's vectors),
held within :data:`STATE_SHARE` of the budget (:func:`pairs_per_run`), and the
L-BFGS memory each pair carries into its next refinement, held for a whole
level within :data:`CARRY_SHARE` (:func:`pairs_per_carry`). More pairs than fit
are solved in consecutive runs or refined in groups, each pair as if alone; a
single pair over its share is announced once per metric.
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.memory import current_memory_budget
from latentgeo.solvers.energy.problem import Objective

__all__ = ["CARRY_SHARE", "STATE_SHARE", "pairs_per_carry", "pairs_per_run"]

#: share of the memory budget the running pairs' state may hold (their preconditioners,
#: ``p × p`` each, and L-BFGS histories); the chunked work is sized for the rest
STATE_SHARE = 0.25
#: share of the memory budget the L-BFGS memory carried across refinements may hold
#: (``2 · history · p`` numbers for every pair of a level); more pairs are refined in groups
CARRY_SHARE = 0.25


def pairs_per_run(objective: Objective, x: Tensor, history: int) -> int:
    """How many pairs one L-BFGS run may hold, from the bytes of each pair's state and
    :data:`STATE_SHARE` of the memory budget: its preconditioner (``p × p``, twice while
    it is recomputed) where the curve is linear in its parameters, its history
    (``2 · history · p``) and the iteration's vectors. Above the budget, pairs are
    solved in consecutive runs (each pair's result is its own: only rounding depends
    on the batch); a single pair over the budget is warned about once per metric.

    Args:
        objective: the energies.
        x: the level's parameters ``(B, p)``.
        history: L-BFGS memory.
    """
    p = x.shape[1]
    numbers = (4 * history + 16) * p + (2 * p * p if objective.linear else 0)
    per_pair = numbers * x.element_size()
    return _pairs_within(
        STATE_SHARE, per_pair, x.device, objective.metric,
        f"one pair's solver state ({per_pair:,} bytes: a {p} x {p} preconditioner, "
        "p = (knots + 2) x d) exceeds {share} of the memory budget ({budget} bytes); the "
        "pairs are solved one at a time, each over the budget: lower max_knots or raise "
        "memory_budget",
        key="a pair's solver state over the memory budget",
    )  # fmt: skip


def pairs_per_carry(
    metric: object, p: int, history: int, like: Tensor, *, announce: bool = True
) -> int:
    """How many pairs of ``p`` parameters may carry their L-BFGS memory (``2 · history · p``
    numbers each) into their next refinement within :data:`CARRY_SHARE` of the memory
    budget. It is held for every pair of a level at once (the runs of
    :func:`pairs_per_run` take their rows from it); a larger batch goes on through its
    refinements in groups that fit (each pair's result is its own). A single pair above
    that share is warned about once per metric.

    Args:
        metric: the metric (the owner of the warning).
        p: parameters per pair.
        history: L-BFGS memory.
        like: a tensor of the problem's dtype and device.
        announce: warn when one pair is over (else only count).
    """
    per_pair = (2 * history + 1) * p * like.element_size()
    return _pairs_within(
        CARRY_SHARE, per_pair, like.device, metric if announce else None,
        f"one pair's L-BFGS memory ({per_pair:,} bytes: 2 x history x p numbers, "
        f"p = (knots + 2) x d = {p}) exceeds {{share}} of the memory budget ({{budget}} "
        "bytes); the pairs are refined one at a time, each over the budget: lower history "
        "or max_knots, or raise memory_budget",
        key="a pair's carried L-BFGS memory over the memory budget",
    )  # fmt: skip


def _pairs_within(
    share: float, per_pair: int, device: torch.device, owner: object, message: str, *, key: str
) -> int:
    """How many pairs of ``per_pair`` bytes fit in ``share`` of the memory budget (at
    least one); a single pair over it is announced once per ``owner`` (``None``: not at
    all) with ``message``, whose ``{share}`` and ``{budget}`` are filled in."""
    budget = share * current_memory_budget(device)
    if owner is not None and per_pair > budget:
        text = message.format(share=f"{share:.0%}", budget=f"{round(budget / share):,}")
        warn_once(owner, PerformanceWarning(text), key=key)
    return max(1, int(budget // per_pair))
