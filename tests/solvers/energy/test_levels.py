"""The level loop: pairs optimised, settled and refined, in groups when their carried
L-BFGS memory would not fit the budget."""

from __future__ import annotations

import pytest
import torch

from latentgeo.solvers import connecting_geodesic
from latentgeo.solvers.energy import levels
from latentgeo.testing import StereographicSphere

SPHERE = StereographicSphere()


def _pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z0 = 2 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = 2 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return z0, z1


def _record_groups(monkeypatch: pytest.MonkeyPatch, sizes: dict[int, int]) -> list[list[int]]:
    """Make ``pairs_per_carry`` answer ``sizes[p]`` (all pairs for other ``p``) and record
    the batch rows of every call of :meth:`LevelLoop.run`."""
    calls: list[list[int]] = []
    run = levels.LevelLoop.run

    def recorded(self, curve, pairs, carried=None):  # type: ignore[no-untyped-def]
        calls.append(pairs.tolist())
        return run(self, curve, pairs, carried)

    monkeypatch.setattr(levels.LevelLoop, "run", recorded)

    def per_carry(metric, p, history, like, announce=True):  # type: ignore[no-untyped-def]
        return sizes.get(p, 99)

    monkeypatch.setattr(levels, "pairs_per_carry", per_carry)
    return calls


@pytest.mark.parametrize("where", ["first level", "refinement"])
def test_a_batch_whose_memory_does_not_fit_goes_on_in_groups_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Groups of two pairs, from the start (each with a new memory) or from the first
    refinement (each with its rows of the carried memory): every pair's curve, length,
    status and iterations are those of the whole batch solved at once."""
    z0, z1 = _pairs(5, seed=1)
    whole = connecting_geodesic(SPHERE, z0, z1, num_knots=3)
    assert bool(whole.info["refined"].all())  # every pair went through a refinement
    p = {"first level": 5 * 2, "refinement": 9 * 2}[where]  # (interior knots + 2) x d
    calls = _record_groups(monkeypatch, {p: 2})
    grouped = connecting_geodesic(SPHERE, z0, z1, num_knots=3)
    assert calls[0] == [0, 1, 2, 3, 4]
    groups = [c for c in calls[1:] if len(c) <= 2]
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert max(len(g) for g in groups) == 2
    torch.testing.assert_close(grouped.length, whole.length, rtol=1e-12, atol=0)
    torch.testing.assert_close(grouped.curve(torch.linspace(0, 1, 9, dtype=torch.float64)),
                               whole.curve(torch.linspace(0, 1, 9, dtype=torch.float64)),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    assert grouped.status == whole.status
    assert torch.equal(grouped.iterations, whole.iterations)


def test_groups_split_after_some_pairs_settled_keep_each_pairs_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A split at the third level, after two of eight pairs settled at the second: the
    groups hold batch rows that are not consecutive, each group with its own rows of the
    carried memory; every pair's result is that of the whole batch."""
    z0, z1 = _pairs(8, seed=0)
    whole = connecting_geodesic(SPHERE, z0, z1, num_knots=3)
    calls = _record_groups(monkeypatch, {(15 + 2) * 2: 2})  # 3 → 7 → 15 interior knots
    grouped = connecting_geodesic(SPHERE, z0, z1, num_knots=3)
    assert calls[0] == list(range(8))
    groups = calls[1:]  # each group's entry into the loop (its later levels loop inside)
    kept = [i for g in groups for i in g]
    assert len(kept) == 6 and all(len(g) <= 2 for g in groups)
    # the rows must not be the positions, or a mix-up of the two could not show
    assert kept != list(range(kept[0], kept[0] + 6)), kept
    torch.testing.assert_close(grouped.length, whole.length, rtol=1e-12, atol=0)
    assert grouped.status == whole.status
    assert torch.equal(grouped.iterations, whole.iterations)
