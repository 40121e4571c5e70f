"""k-medoids on distance matrices and the clustering F-measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentgeo.analysis import (
    f_measure,
    geodesic_kmeans,
    kmedoids,
)
from latentgeo.solvers import SplineEnergy, Status
from latentgeo.testing import LinearMap, StereographicSphere


def blobs(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]], dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(20)
    z = centres[labels] + 0.5 * torch.randn(60, 2, generator=gen, dtype=torch.float64)
    return z, labels


def test_kmedoids_recovers_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    z, labels = blobs(gen)
    res = kmedoids(torch.cdist(z, z), 3, generator=gen)
    assert f_measure(labels, res.labels) == 1.0 and res.settled
    assert res.medoids.shape == (3,)
    assert res.labels.shape == (60,)
    # each medoid is a member of its own cluster
    assert torch.equal(res.labels[res.medoids], torch.arange(3)[res.labels[res.medoids]])


def test_kmedoids_checks() -> None:
    with pytest.raises(ValueError, match=r"\(N, N\)"):
        kmedoids(torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match="k must be"):
        kmedoids(torch.zeros(3, 3), 4)


def test_f_measure() -> None:
    t = np.array([0, 0, 0, 1, 1, 1])
    assert f_measure(t, np.array([1, 1, 1, 0, 0, 0])) == 1.0
    # one cluster for everything: precision 1/2, recall 1 for each class -> F = 2/3
    assert f_measure(t, np.zeros(6)) == pytest.approx(2 / 3)
    # against the hand count for a mixed clustering
    p = np.array([0, 0, 1, 1, 1, 1])
    # class 0: best cluster 0 (P=1, R=2/3 -> 0.8); class 1: cluster 1 (P=3/4, R=1 -> 6/7)
    assert f_measure(t, p) == pytest.approx(0.5 * 0.8 + 0.5 * 6 / 7)
    with pytest.raises(ValueError, match="equal length"):
        f_measure(t, p[:3])


def test_geodesic_kmeans_with_means_on_a_flat_metric() -> None:
    """Under a flat metric true k-means ends at the clusters' Euclidean means (Lloyd's fixed
    point); the medoid mode keeps data points as centres."""
    gen = torch.Generator().manual_seed(1)
    z, labels = blobs(gen)
    z = z[::3]  # 20 points, 7 per blob
    labels = labels[::3]
    flat = LinearMap(torch.eye(2, dtype=torch.float64))
    flat_log = {"method": lambda b, t: t - b, "exp": lambda b, v: b + v}
    res = geodesic_kmeans(flat, z, 3, num_restarts=2, generator=gen, centres="means",
                          mean_options=flat_log)  # fmt: skip
    assert f_measure(labels, res.labels) == 1.0
    assert res.centres is not None and res.centre_distances is not None
    assert res.status == [Status.CONVERGED] * 3
    for c in range(3):
        members = z[res.labels == c]
        torch.testing.assert_close(res.centres[c], members.mean(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(res.centre_distances, torch.cdist(z, res.centres), rtol=0, atol=1e-5)
    assert res.cost <= geodesic_kmeans(flat, z, 3, num_restarts=2, generator=gen).cost + 1e-9
    with pytest.raises(ValueError, match="centres must be"):
        geodesic_kmeans(flat, z, 3, centres="modes")  # type: ignore[arg-type]


def test_kmedoids_fits_on_converged_pairs_and_labels_every_point() -> None:
    gen = torch.Generator().manual_seed(0)
    z, labels = blobs(gen)
    dist = torch.cdist(z, z)
    ok = torch.ones(60, 60, dtype=torch.bool)
    ok[5, :] = ok[:, 5] = False  # point 5: no converged pair
    ok[5, 5] = True
    wrong = dist.clone()
    wrong[5, :] = wrong[:, 5] = 0.0  # its distances are worthless: it would be a medoid
    wrong[5, 5] = 0.0
    res = kmedoids(wrong, 3, generator=torch.Generator().manual_seed(1), converged=ok)
    assert res.used is not None and res.num_used == 59 and not bool(res.used[5])
    assert 5 not in res.medoids.tolist() and res.labels.shape == (60,)
    assert f_measure(labels[res.used], res.labels[res.used]) == 1.0
    every = kmedoids(wrong, 3, generator=torch.Generator().manual_seed(1), converged=ok,
                     include_all=True)  # fmt: skip
    assert every.num_used == 60 and every.include_all
    # the mask's verdicts are the evidence count (an audit: "converged 0/0 pairs")
    assert res.num_pairs == 60 * 59 // 2 and res.num_converged == 60 * 59 // 2 - 59
    assert res.converged_note == f"converged {60 * 59 // 2 - 59}/{60 * 59 // 2} pairs"
    assert kmedoids(dist, 3).converged_note == "converged 0/0 pairs"  # no mask: no verdicts
    with pytest.raises(ValueError, match="include_all=True"):
        kmedoids(dist, 3, converged=torch.eye(60, dtype=torch.bool))


def test_geodesic_kmeans_counts_its_pairs() -> None:
    gen = torch.Generator().manual_seed(0)
    z, labels = blobs(gen)
    z, labels = z[::4], labels[::4]  # 15 points, 105 pairs
    lin = LinearMap(torch.eye(2, dtype=torch.float64))
    res = geodesic_kmeans(lin, z, 3, generator=gen, chunk_size=128)
    assert res.num_pairs == 105 and res.num_converged == 105 and res.warning is None
    assert res.status_counts() == {"converged": 105} and res.num_used == 15
    stop = SplineEnergy(max_iter=1)  # the solver's budget (max_iter is k-medoids')
    with pytest.raises(ValueError, match="include_all=True"):  # no pair converged
        geodesic_kmeans(StereographicSphere(), z / 4, 3, generator=gen, method=stop)
    stopped = geodesic_kmeans(
        StereographicSphere(), z / 4, 3, generator=gen, method=stop, include_all=True
    )
    assert stopped.num_converged == 0 and stopped.warning is not None
    assert set(stopped.pair_status) == {Status.MAX_ITERATIONS} and stopped.num_used == 15


def test_geodesic_kmeans_means_report_their_point_centre_geodesics() -> None:
    """With ``centres="means"`` the reassignment solves N·k more geodesics: their statuses
    are kept and counted (they were dropped), and a failing budget shows in the note."""
    gen = torch.Generator().manual_seed(0)
    z, _ = blobs(gen)
    z = z[::6] / 8  # 10 points on the sphere's chart
    mean_options = {"method": "energy", "max_iter": 3}
    res = geodesic_kmeans(StereographicSphere(), z, 2, generator=gen, centres="means",
                          mean_options=mean_options)  # fmt: skip
    assert len(res.centre_status) == 10 * 2
    assert set(res.centre_status) == {Status.CONVERGED}
    assert "converged 20/20 point-centre geodesics" in res.converged_note
    assert f"converged {res.num_converged}/45 pairs" in res.converged_note
    stop = SplineEnergy(max_iter=1)
    failed = geodesic_kmeans(StereographicSphere(), z, 2, generator=gen, centres="means",
                             mean_options=mean_options, method=stop, include_all=True)  # fmt: skip
    assert set(failed.centre_status) == {Status.MAX_ITERATIONS}
    assert "converged 0/20 point-centre geodesics" in failed.converged_note
    assert failed.warning is not None
    assert "WARNING: only 0/20 point-centre geodesics converged" in failed.warning
    medoids = geodesic_kmeans(StereographicSphere(), z, 2, generator=gen)
    assert medoids.centre_status == [] and medoids.converged_note == "converged 45/45 pairs"


def test_geodesic_kmeans_means_report_the_centres_they_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: stopped by ``max_iter`` while labels still changed, the result returned one
    set of means and the statuses of the next. Centres, their statuses, distances and labels
    are now one assignment's, and an unsettled clustering says so."""
    import latentgeo.analysis.kmeans as kmeans_module

    made = []
    original = kmeans_module._cluster_means

    def recording(*args: object, **kwargs: object) -> object:
        made.append(original(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(kmeans_module, "_cluster_means", recording)
    z = torch.randn(15, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    flat = LinearMap(torch.eye(2, dtype=torch.float64))
    options = {"method": lambda b, t: t - b, "exp": lambda b, v: b + v, "max_iter": 1}
    res = geodesic_kmeans(flat, z, 3, generator=torch.Generator().manual_seed(0),
                          centres="means", max_iter=1, mean_options=options)  # fmt: skip
    assert not res.settled and res.iterations == 1 and len(made) == 1
    assert res.centres is not None and torch.equal(res.centres, made[0].mean)
    assert res.status == made[0].status
    torch.testing.assert_close(res.centre_distances, torch.cdist(z, res.centres))
    assert torch.equal(res.labels, torch.cdist(z, res.centres).argmin(1))
    assert "the assignment still changed after 1 iterations" in res.converged_note
    assert res.warning is not None and "WARNING: the assignment still changed" in res.warning
    settled = geodesic_kmeans(flat, z, 3, generator=torch.Generator().manual_seed(0),
                              centres="means", mean_options=options)  # fmt: skip
    assert settled.settled and "still changed" not in settled.converged_note


def test_geodesic_kmeans_on_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(6)
    z = centres[labels] + 0.3 * torch.randn(18, 2, generator=gen, dtype=torch.float64)
    lin = LinearMap(torch.eye(2, dtype=torch.float64))
    res = geodesic_kmeans(lin, z, 3, generator=gen, chunk_size=64)
    assert f_measure(labels, res.labels) == 1.0
    torch.testing.assert_close(res.distances, torch.cdist(z, z), rtol=1e-6, atol=1e-8)
