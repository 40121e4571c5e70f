"""The graph each pair is solved on: its end points' edges, and the points' graph kept
for the metric until the points, the options or the decoder's parameters change."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.metrics import as_metric
from latentgeo.solvers import connecting_geodesic, pair_graphs

DT = torch.float64


def test_end_points_join_their_neighbours_and_those_that_count_them() -> None:
    """z0 joins its k nearest points and every point within whose k-th neighbour distance
    it lies; z0 and z1 are joined directly where one is among the other's k nearest."""
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.2, 0.0]], dtype=DT)
    radius = pair_graphs._kth_distance(points, 1)
    torch.testing.assert_close(radius, torch.tensor([1.0, 1.0, 0.2, 0.2], dtype=DT))
    ends = torch.tensor([[0.5, 0.0], [5.1, 0.0]], dtype=DT)
    e, p, reach = pair_graphs.end_edges(points, radius, ends, 1)
    # 0.5 is nearest to point 0 (a tie with 1, broken by topk) and within both radii
    assert sorted(zip(e.tolist(), p.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 2), (1, 3)]
    torch.testing.assert_close(reach, torch.tensor([0.5, 0.1], dtype=DT))
    metric = as_metric(lambda z: z)
    valid, _, components = pair_graphs.pair_graph(
        metric, points, ends[:1], ends[:1] + torch.tensor([0.3, 0.0], dtype=DT), 1, 4
    )
    assert components == 2 and valid[4, 5] == pytest.approx(0.3)  # joined directly
    valid, _, _ = pair_graphs.pair_graph(metric, points, ends[:1], ends[1:], 1, 4)
    assert valid[4, 5] == 0 and valid[4].nnz == 2 and valid[:, 5].nnz == 2


def test_the_points_graph_is_kept_until_points_or_parameters_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()
    metric = as_metric(net)
    gen = torch.Generator().manual_seed(1)
    points = torch.randn(40, 2, generator=gen, dtype=DT)
    z0, z1 = torch.randn(2, 3, 2, generator=gen, dtype=DT)
    built: list[int] = []
    knn = pair_graphs.knn_graph

    def counted(nodes: torch.Tensor, k: int, **kw: int) -> tuple[torch.Tensor, torch.Tensor]:
        built.append(nodes.shape[0])
        return knn(nodes, k, **kw)

    monkeypatch.setattr(pair_graphs, "knn_graph", counted)
    options = {"method": "graph", "points": points, "k": 5, "refine": False}
    first = connecting_geodesic(metric, z0, z1, **options)
    again = connecting_geodesic(metric, z0[:2], z1[:2], **options)
    assert built == [40]  # kept: built once
    assert torch.equal(again.info["graph_length"], first.info["graph_length"][:2])
    connecting_geodesic(metric, z0, z1, **{**options, "k": 6})
    points.add_(0.01)  # the user's points moved, in place
    connecting_geodesic(metric, z0, z1, **options)
    with torch.no_grad():
        net[0].weight.mul_(2.0)  # the decoder trained on
    moved = connecting_geodesic(metric, z0, z1, **options)
    assert built == [40, 40, 40, 40]
    assert not torch.equal(moved.info["graph_length"], first.info["graph_length"])
    built.clear()  # a decoder given as is (a metric made at every call): kept for the decoder,
    connecting_geodesic(net, z0[1:], z1[1:], **options)  # shared with as_metric(net)'s
    other = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()
    connecting_geodesic(other, z0, z1, **options)
    connecting_geodesic(other, z0[1:], z1[1:], **options)
    assert built == [40]


def test_a_decoder_changed_without_a_version_bump_is_measured_again() -> None:
    """``p.data`` updates (and fused optimisers, float attributes, closures) change the
    metric without bumping a version counter: a few kept edges measured again show it."""
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()
    gen = torch.Generator().manual_seed(2)
    points = torch.randn(40, 2, generator=gen, dtype=DT)
    z0, z1 = torch.randn(2, 3, 2, generator=gen, dtype=DT)
    options = {"method": "graph", "points": points, "k": 5, "refine": False}
    connecting_geodesic(net, z0, z1, **options)
    versions = [p._version for p in net.parameters()]
    net[0].weight.data.mul_(3.0)
    assert [p._version for p in net.parameters()] == versions  # nothing to see there
    pair_graphs._KEPT.clear()
    fresh = connecting_geodesic(net, z0, z1, **options).info["graph_length"]
    net[0].weight.data.div_(3.0)
    connecting_geodesic(net, z0, z1, **options)  # kept for the restored weights
    net[0].weight.data.mul_(3.0)
    again = connecting_geodesic(net, z0, z1, **options).info["graph_length"]
    assert torch.equal(again, fresh)
