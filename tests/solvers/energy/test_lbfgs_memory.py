"""The batched per-pair L-BFGS memory against the textbook two-loop recursion."""

from __future__ import annotations

import torch

from latentgeo.curves import CubicSpline
from latentgeo.solvers.energy.lbfgs_memory import LBFGSMemory


def _two_loop(s: list[torch.Tensor], y: list[torch.Tensor], g: torch.Tensor, h0: torch.Tensor):
    """The textbook two-loop recursion (Nocedal & Wright, alg. 7.4) for one problem."""
    q, alphas = g.clone(), []
    for si, yi in reversed(list(zip(s, y, strict=True))):
        a = (si @ q) / (si @ yi)
        q = q - a * yi
        alphas.append(a)
    r = h0 @ q
    for (si, yi), a in zip(zip(s, y, strict=True), reversed(alphas), strict=True):
        b = (yi @ r) / (si @ yi)
        r = r + si * (a - b)
    return -r


def _memory(a: int, p: int, steps: int) -> tuple[LBFGSMemory, list[list[tuple]], torch.Tensor]:
    """An L-BFGS memory after ``steps`` updates, and per pair the pairs ``(s, y)`` that
    are in its window (the last 4 updates) and passed the curvature test."""
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(a, p, p, generator=gen, dtype=torch.float64)
    hess = m @ m.mT + p * torch.eye(p, dtype=torch.float64)
    opt = LBFGSMemory(torch.zeros(a, p, dtype=torch.float64), history=4)
    slots: list[tuple] = []
    for k in range(steps):
        s = torch.randn(a, p, generator=gen, dtype=torch.float64)
        y = (hess @ s[..., None])[..., 0]
        if k == steps - 2:
            y[0] = -s[0]  # fails the curvature test for pair 0: must be skipped
        opt.update(s, y)
        slots.append((s, y))
    window = slots[-4:]
    kept = [[(s[i], y[i]) for s, y in window if float(s[i] @ y[i]) > 0] for i in range(a)]
    return opt, kept, hess


def test_compact_direction_equals_the_two_loop_recursion() -> None:
    opt, kept, hess = _memory(a=3, p=6, steps=7)
    assert len(kept[0]) == 3 and len(kept[1]) == 4
    g = torch.randn(3, 6, dtype=torch.float64)
    h0 = torch.linalg.inv(hess + torch.eye(6, dtype=torch.float64))
    opt.precondition(h0)
    got = opt.direction(g, torch.ones(3, dtype=torch.float64))
    for i in range(3):
        s, y = [p[0] for p in kept[i]], [p[1] for p in kept[i]]
        torch.testing.assert_close(got[i], _two_loop(s, y, g[i], h0[i]), rtol=1e-12, atol=1e-12)
    # without a preconditioner H0 = γ I, γ = sᵀy / yᵀy of the newest pair
    opt.precondition(None)
    got = opt.direction(g, torch.ones(3, dtype=torch.float64))
    s_new, y_new = kept[1][-1]
    gamma = (s_new @ y_new) / (y_new @ y_new)
    eye = torch.eye(6, dtype=torch.float64)
    ref = _two_loop([p[0] for p in kept[1]], [p[1] for p in kept[1]], g[1], gamma * eye)
    torch.testing.assert_close(got[1], ref, rtol=1e-12, atol=1e-12)
    # a NaN preconditioner (failed Cholesky) falls back to γ I for that pair only
    h0[2] = torch.nan
    opt.precondition(h0)
    mixed = opt.direction(g, lambda: torch.ones(3, dtype=torch.float64))  # scale on demand
    torch.testing.assert_close(mixed[2], got[2])
    torch.testing.assert_close(
        mixed[1], _two_loop([p[0] for p in kept[1]], [p[1] for p in kept[1]], g[1], h0[1])
    )


def test_memory_carried_through_a_knot_refinement() -> None:
    z0, z1 = torch.randn(2, 2, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=3)
    n_old = curve.inner.shape[1]
    opt, _, _ = _memory(a=2, p=2 * n_old, steps=5)
    coarse = curve.subset(torch.arange(2))
    refinement = curve.insert_knots(torch.tensor([[0.1, 0.6], [0.3, 0.9]], dtype=torch.float64))
    carried = opt.refined(refinement, d=2)
    # a step of the coarse curve is the mapped step of the refined curve: same curve change
    t = torch.rand(50, dtype=torch.float64)
    with torch.no_grad():
        coarse.inner.add_(opt.s[:, -1].reshape(2, n_old, 2))
        curve.inner.add_(carried.s[:, -1].reshape(2, -1, 2))
    torch.testing.assert_close(curve(t), coarse(t), rtol=0, atol=1e-12)
    # the measured curvature along each stored step is kept, and Aᵀ y' = y
    torch.testing.assert_close((carried.s * carried.y).sum(-1), (opt.s * opt.y).sum(-1))
    back = torch.einsum("aij,amid->amjd", refinement, carried.y.reshape(2, 4, -1, 2))
    torch.testing.assert_close(back.reshape(2, 4, -1), opt.y)


def test_precondition_rows_replaces_only_those_pairs() -> None:
    memory = LBFGSMemory(torch.zeros(3, 2, dtype=torch.float64), history=2)
    h0 = torch.eye(2, dtype=torch.float64).repeat(3, 1, 1)
    memory.precondition(h0)
    new = torch.full((1, 2, 2), torch.nan, dtype=torch.float64)
    memory.precondition_rows(torch.tensor([1]), new)
    assert memory.h0 is not None and memory.h0_missing is not None
    assert memory.h0_missing.tolist() == [False, True, False]
    assert torch.equal(memory.h0[[0, 2]], h0[[0, 2]]) and bool(memory.h0[1].isnan().all())
    assert torch.equal(h0, torch.eye(2, dtype=torch.float64).repeat(3, 1, 1))  # not aliased
    memory.precondition_rows(torch.tensor([1]), 2 * h0[:1])
    assert memory.h0_missing is None and torch.equal(memory.h0[1], 2 * h0[1])


def test_forget_empties_only_those_pairs() -> None:
    memory, _, _ = _memory(3, 4, steps=5)
    s, y, gamma = memory.s.clone(), memory.y.clone(), memory.gamma.clone()
    memory.forget(torch.tensor([False, True, False]))
    assert not bool(memory.s[1].any()) and not bool(memory.y[1].any()) and memory.gamma[1] == 0
    assert torch.equal(memory.s[[0, 2]], s[[0, 2]]) and torch.equal(memory.y[[0, 2]], y[[0, 2]])
    assert torch.equal(memory.gamma[[0, 2]], gamma[[0, 2]])
    g = torch.ones(3, 4, dtype=torch.float64)
    torch.testing.assert_close(memory.direction(g, torch.full((3,), 0.5))[1], -0.5 * g[1])
