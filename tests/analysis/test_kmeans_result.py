"""KMeansResult's counts and notes, and converged_points."""

from __future__ import annotations

import pytest
import torch

from latentgeo.analysis.kmeans_result import KMeansResult, converged_points
from latentgeo.solvers import Status


def test_converged_points_set_aside_the_points_of_failed_pairs() -> None:
    ok = torch.ones(5, 5, dtype=torch.bool)
    for a, b in ((0, 3), (1, 3), (2, 3), (0, 4)):  # point 3 in three failures, 4 in one
        ok[a, b] = ok[b, a] = False
    keep = converged_points(ok)
    assert keep.tolist() == [False, True, True, False, True]  # 3 first, then 0 (tie 0/4: lowest)
    kept = keep.nonzero().squeeze(1)
    assert bool(ok[kept][:, kept].all())
    assert converged_points(torch.ones(3, 3, dtype=torch.bool)).all()
    with pytest.raises(ValueError, match="converged"):
        converged_points(torch.ones(2, 3, dtype=torch.bool))


def _result(**fields: object) -> KMeansResult:
    n = 3
    base: dict[str, object] = dict(
        labels=torch.zeros(n, dtype=torch.long), medoids=torch.tensor([0]), cost=0.0,
        iterations=2, distances=torch.zeros(n, n), pair_status=[Status.CONVERGED] * 3,
    )  # fmt: skip
    base.update(fields)
    return KMeansResult(**base)  # type: ignore[arg-type]


def test_notes_count_every_part_and_an_unsettled_assignment() -> None:
    assert _result().converged_note == "converged 3/3 pairs" and _result().warning is None
    means = _result(
        centre_status=[Status.CONVERGED] * 9 + [Status.MAX_ITERATIONS],
        status=[Status.MAX_ITERATIONS],
    )
    assert means.converged_note == (
        "converged 3/3 pairs; converged 9/10 point-centre geodesics; "
        "converged 0/1 Fréchet means (WARNING: < 90 % converged)"
    )
    assert means.warning == "WARNING: only 0/1 Fréchet means converged (< 90 %)"
    unsettled = _result(settled=False)
    assert unsettled.converged_note.endswith("the assignment still changed after 2 iterations "
                                             "(max_iter)")  # fmt: skip
    assert unsettled.warning == (
        "WARNING: the assignment still changed after 2 iterations (max_iter)"
    )
    assert unsettled.num_pairs == 3 and unsettled.num_used == 3
