"""The batched per-pair L-BFGS runs of the energy solver against plain references."""

from __future__ import annotations

import torch

from latentgeo.curves import CubicSpline
from latentgeo.memory import memory_budget
from latentgeo.solvers import Status
from latentgeo.solvers.energy import lbfgs, pair_budget
from latentgeo.solvers.energy.lbfgs import LBFGSMemory, RunningPairs, run_lbfgs
from latentgeo.solvers.energy.problem import PairState
from latentgeo.solvers.status import code, statuses_from_codes


class Quadratics:
    """``f_i(x) = ½ (x − c_i)ᵀ H_i (x − c_i) + 1``, independent per pair (not a curve: no
    preconditioner)."""

    linear = False
    tested_by_shape = False  # not curves

    def __init__(self, hess: torch.Tensor, centre: torch.Tensor) -> None:
        self.hess, self.centre = hess, centre
        self.metric = object()  # the owner of the solver's warnings

    def value_and_grad(self, x: torch.Tensor, idx: torch.Tensor):
        r = x - self.centre[idx]
        hr = (self.hess[idx] @ r[..., None])[..., 0]
        return 0.5 * (r * hr).sum(-1) + 1.0, hr


def _quadratics(a: int, p: int) -> Quadratics:
    gen = torch.Generator().manual_seed(3)
    m = torch.randn(a, p, p, generator=gen, dtype=torch.float64)
    scales = torch.logspace(0, 3, a, dtype=torch.float64)[:, None, None]  # conditioning
    hess = (
        m @ m.mT
        + torch.eye(p, dtype=torch.float64)
        + scales * torch.diag_embed(torch.rand(a, p, generator=gen, dtype=torch.float64))
    )
    return Quadratics(hess, torch.randn(a, p, generator=gen, dtype=torch.float64))


def _state(objective: Quadratics, x: torch.Tensor) -> PairState:
    a = x.shape[0]
    f, g = objective.value_and_grad(x, torch.arange(a))
    status = torch.full((a,), code(Status.MAX_ITERATIONS))
    zero = torch.zeros(a, dtype=torch.long)
    return PairState(x.clone(), f, g, status, zero, torch.ones(a, dtype=x.dtype), zero.bool())


def test_run_lbfgs_solves_each_pair_as_if_alone() -> None:
    objective = _quadratics(4, 6)
    x0 = torch.zeros(4, 6, dtype=torch.float64)
    together = _state(objective, x0)
    run_lbfgs(objective, together, max_iter=200, tol=1e-12, history=5, precondition_every=10)  # type: ignore[arg-type]
    assert statuses_from_codes(together.status) == [Status.CONVERGED] * 4
    torch.testing.assert_close(together.x, objective.centre, rtol=0, atol=1e-5)
    assert len(set(together.iterations.tolist())) > 1  # each pair stopped on its own
    for i in range(4):
        alone_objective = Quadratics(objective.hess[i : i + 1], objective.centre[i : i + 1])
        alone = _state(alone_objective, x0[i : i + 1])
        run_lbfgs(alone_objective, alone, max_iter=200, tol=1e-12, history=5, precondition_every=10)  # type: ignore[arg-type]
        assert torch.equal(alone.x[0], together.x[i])
        assert torch.equal(alone.iterations[0], together.iterations[i])


def test_run_lbfgs_respects_the_budget_and_updates_the_memory() -> None:
    objective = _quadratics(3, 5)
    state = _state(objective, torch.zeros(3, 5, dtype=torch.float64))
    start = state.f.clone()
    memory = LBFGSMemory(state.x, history=4)
    run_lbfgs(objective, state, max_iter=2, tol=1e-12, history=4, precondition_every=10,  # type: ignore[arg-type]
              memory=memory)  # fmt: skip
    assert state.iterations.tolist() == [2, 2, 2]
    assert statuses_from_codes(state.status) == [Status.MAX_ITERATIONS] * 3
    assert memory.updates == 2 and bool((memory.s[:, -2:] != 0).any(-1).all())
    assert bool((state.f < start).all())
    # nothing to do: no running pair
    before = state.x.clone()
    run_lbfgs(objective, state, max_iter=2, tol=1e-12, history=4, precondition_every=10)  # type: ignore[arg-type]
    assert torch.equal(state.x, before)


def test_running_pairs_subset_every_field() -> None:
    a = 4
    pairs = RunningPairs(
        idx=torch.arange(a),
        x=torch.randn(a, 3),
        f=torch.randn(a),
        g=torch.randn(a, 3),
        iterations=torch.arange(a),
        scale=torch.ones(a),
        small_decrease=torch.tensor([True, False, True, False]),
        restarted=torch.tensor([False, True, False, True]),
        next_check=torch.tensor([0, 10, 20, 30]),
        check_below=torch.randn(a),
        f_tested=torch.randn(a),
    )
    keep = torch.tensor([3, 1])
    sub = pairs.rows(keep)
    for name, value in vars(pairs).items():
        assert torch.equal(getattr(sub, name), value[keep]), name
    torch.testing.assert_close(sub.first_scale(), 0.1 / pairs.g[keep].norm(dim=-1))


def test_the_preconditioner_is_recomputed_only_for_pairs_that_moved(monkeypatch) -> None:
    """Every ``precondition_every`` iterations, exactly the pairs whose parameters moved by
    more than ``MOVED · |z1 − z0|_∞`` since their last preconditioner get a new one."""
    from latentgeo.metrics import as_metric
    from latentgeo.solvers.energy import lbfgs
    from latentgeo.solvers.energy.problem import Objective, start_level
    from latentgeo.testing import StereographicSphere

    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=4)
    objective = Objective(as_metric(StereographicSphere()), curve, "metric", None, 4, None)
    state = start_level(objective, curve, torch.zeros(4, dtype=torch.long))
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = lbfgs.frozen_metric_preconditioner

    def record(objective, x, idx, **kw):  # type: ignore[no-untyped-def]
        calls.append((idx.clone(), x.clone()))
        return original(objective, x, idx, **kw)

    monkeypatch.setattr(lbfgs, "frozen_metric_preconditioner", record)
    positions: list[torch.Tensor] = []
    real_search = lbfgs.armijo_search

    def search(objective, idx, x, *rest):  # type: ignore[no-untyped-def]
        positions.append(torch.full((4, x.shape[1]), torch.nan, dtype=x.dtype))
        positions[-1][idx] = x
        return real_search(objective, idx, x, *rest)

    monkeypatch.setattr(lbfgs, "armijo_search", search)
    run_lbfgs(objective, state, max_iter=300, tol=1e-10, history=5, precondition_every=3)  # type: ignore[arg-type]
    assert statuses_from_codes(state.status) == [Status.CONVERGED] * 4
    assert torch.equal(calls[0][0], torch.arange(4))  # all pairs at the first iteration
    anchor = calls[0][1].clone()
    partial = 0
    for it in range(3, len(positions), 3):  # the iterations that may recompute
        x = positions[it]
        running = (~x.isnan().any(-1)).nonzero()[:, 0]
        moved = (x[running] - anchor[running]).abs().amax(-1) > lbfgs.MOVED * state.scale[running]
        expected = running[moved]
        recomputed = [c for c in calls[1:] if torch.equal(c[1], x[c[0]])]
        got = recomputed[0][0] if recomputed else torch.zeros(0, dtype=torch.long)
        assert torch.equal(got, expected), it
        partial += 0 < got.numel() < running.numel()
        anchor[got] = x[got]
    assert len(calls) > 1 and partial > 0  # recomputed for some, kept for others


class Poisoned(Quadratics):
    """Quadratics whose energy is ``inf`` for pair 0 on its calls ``[start, stop)``: one
    line search that cannot succeed, and then it can again."""

    def __init__(self, base: Quadratics, start: int, stop: int) -> None:
        super().__init__(base.hess, base.centre)
        self.start, self.stop, self.calls = start, stop, 0

    def value_and_grad(self, x: torch.Tensor, idx: torch.Tensor):
        f, g = super().value_and_grad(x, idx)
        if bool((idx == 0).any()):
            self.calls += 1
            if self.start <= self.calls < self.stop:
                f = torch.where(idx == 0, torch.inf, f)
        return f, g


def test_a_failed_line_search_starts_again_from_an_empty_memory() -> None:
    base = _quadratics(2, 5)
    x0 = torch.zeros(2, 5, dtype=torch.float64)
    # one failed search (30 trials in a row) after three iterations: a restart, then converged
    once = Poisoned(base, start=4, stop=4 + 30)
    state = _state(once, x0)
    run_lbfgs(once, state, max_iter=300, tol=1e-12, history=4, precondition_every=10)  # type: ignore[arg-type]
    assert statuses_from_codes(state.status) == [Status.CONVERGED] * 2
    torch.testing.assert_close(state.x, base.centre, rtol=0, atol=1e-5)
    # failing again straight after the restart: stalled, and the other pair is unaffected
    always = Poisoned(base, start=4, stop=10**9)
    state = _state(always, x0)
    run_lbfgs(always, state, max_iter=300, tol=1e-12, history=4, precondition_every=10)  # type: ignore[arg-type]
    assert statuses_from_codes(state.status) == [Status.LINE_SEARCH_FAILED, Status.CONVERGED]


def _per_pair_bytes(p: int, history: int) -> int:
    """The state :func:`pairs_per_run` counts for a pair without a preconditioner."""
    return (4 * history + 16) * p * 8


def test_run_lbfgs_solves_the_pairs_in_runs_that_fit_the_budget(monkeypatch) -> None:
    objective = _quadratics(5, 6)
    x0 = torch.zeros(5, 6, dtype=torch.float64)
    together = _state(objective, x0)
    run_lbfgs(objective, together, max_iter=200, tol=1e-12, history=5, precondition_every=10)  # type: ignore[arg-type]
    runs: list[int] = []
    group = lbfgs._run_group

    def recorded(objective, state, idx, **options):
        runs.append(idx.numel())
        group(objective, state, idx, **options)

    monkeypatch.setattr(lbfgs, "_run_group", recorded)
    budget = int(2 * _per_pair_bytes(6, 5) / pair_budget.STATE_SHARE)  # room for two pairs' state
    split = _state(objective, x0)
    memory = LBFGSMemory(split.x, history=5)
    with memory_budget(budget):
        assert pair_budget.pairs_per_run(objective, split.x, 5) == 2  # type: ignore[arg-type]
        run_lbfgs(objective, split, max_iter=200, tol=1e-12, history=5, precondition_every=10,  # type: ignore[arg-type]
                  memory=memory)  # fmt: skip
    assert runs == [2, 2, 1]
    assert torch.equal(split.x, together.x) and torch.equal(split.iterations, together.iterations)
    assert bool((memory.s[:, -1] != 0).any(-1).all())  # every run wrote its pairs' memory back
