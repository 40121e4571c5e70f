"""The per-pair Armijo backtracking line search."""

from __future__ import annotations

import torch

from latentgeo.solvers.energy.line_search import ARMIJO, MAX_TRIALS, armijo_search


class Quadratic:
    """``f_i(x) = ½ a_i |x|² + 1`` per pair (counts calls); NaN for the ``broken`` pairs once
    the search has started."""

    def __init__(self, a: torch.Tensor, broken: tuple[int, ...] = ()) -> None:
        self.a, self.broken, self.calls = a, torch.tensor(broken, dtype=torch.long), -1

    def value_and_grad(self, x: torch.Tensor, idx: torch.Tensor):
        self.calls += 1
        a = self.a[idx]
        f = 0.5 * a * (x * x).sum(-1) + 1.0
        if self.calls > 0:
            f = torch.where(torch.isin(idx, self.broken), torch.nan, f)
        return f, a[:, None] * x


def _start(objective: Quadratic, x: torch.Tensor, direction: torch.Tensor):
    idx = torch.arange(x.shape[0])
    f, g = objective.value_and_grad(x, idx)
    return idx, f, g, (g * direction).sum(-1)


def test_unit_steps_are_taken_in_one_evaluation() -> None:
    objective = Quadratic(torch.tensor([1.0, 2.0], dtype=torch.float64))
    x = torch.tensor([[1.0, -2.0], [0.5, 0.5]], dtype=torch.float64)
    direction = -0.5 * x  # halfway to the minimum: accepted
    idx, f, g, slope = _start(objective, x, direction)
    step = armijo_search(objective, idx, x, f, g, direction, slope)  # type: ignore[arg-type]
    assert objective.calls == 1 and step.failed is None
    torch.testing.assert_close(step.x, 0.5 * x)


def test_an_overshooting_pair_backtracks_to_the_quadratic_minimiser() -> None:
    objective = Quadratic(torch.tensor([1.0, 1.0], dtype=torch.float64))
    x = torch.tensor([[1.0, -2.0], [0.5, 0.5]], dtype=torch.float64)
    direction = torch.stack([-x[0], -3.0 * x[1]])  # pair 1 overshoots to −2 x: rejected
    idx, f, g, slope = _start(objective, x, direction)
    step = armijo_search(objective, idx, x, f, g, direction, slope)  # type: ignore[arg-type]
    assert step.failed is None and objective.calls == 2  # the second trial: pair 1 only
    # the quadratic model is exact here: step 1/3 lands on the minimum
    torch.testing.assert_close(step.x, torch.zeros_like(x), rtol=0, atol=1e-15)
    assert bool((step.f <= f + ARMIJO * slope).all())
    torch.testing.assert_close(step.g, step.x)


def test_a_pair_that_finds_no_decrease_fails_and_keeps_its_point() -> None:
    # pair 0 descends normally; every trial of pair 1 gives NaN
    objective = Quadratic(torch.tensor([1.0, 1.0], dtype=torch.float64), broken=(1,))
    x = torch.tensor([[0.6, 0.0], [0.0, 0.9]], dtype=torch.float64)
    direction = -x
    idx, f, g, slope = _start(objective, x, direction)
    step = armijo_search(objective, idx, x, f, g, direction, slope)  # type: ignore[arg-type]
    assert step.failed is not None and step.failed.tolist() == [False, True]
    assert objective.calls == MAX_TRIALS
    torch.testing.assert_close(step.x[1], x[1], rtol=0, atol=0)
    torch.testing.assert_close(step.f[1], f[1], rtol=0, atol=0)
    torch.testing.assert_close(step.x[0], torch.zeros(2, dtype=torch.float64))
