"""GeodesicTerms and the Christoffel form against Christoffel symbols and exact geometries."""

from __future__ import annotations

import torch

from latentgeo.metrics import GeodesicTerms, as_metric, christoffel_symbols, christoffel_terms
from latentgeo.testing import PoincareDisk, StereographicSphere


def test_christoffel_terms_are_g_times_the_symbols() -> None:
    metric = as_metric(StereographicSphere())
    z, v = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    terms = christoffel_terms(metric, z, v)
    gamma = christoffel_symbols(metric, z)
    expected = -torch.einsum("nkij,ni,nj->nk", gamma, v, v)
    torch.testing.assert_close(terms.acceleration(), expected)
    torch.testing.assert_close(terms.g, metric.metric_tensor(z))


def test_terms_scale_add_and_solve() -> None:
    g = torch.tensor([[[2.0, 0.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    b = torch.tensor([[2.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    terms = GeodesicTerms(g, b)
    acc = terms.acceleration()
    torch.testing.assert_close(acc[0], torch.tensor([-1.0, -1.0], dtype=torch.float64))
    assert torch.isnan(acc[1]).all()  # singular G
    twice = GeodesicTerms.total([terms, terms])
    torch.testing.assert_close(twice.g, terms.scaled(2.0).g)
    torch.testing.assert_close(twice.b, 2 * b)
    torch.testing.assert_close(terms.scaled(3.0).acceleration()[0], acc[0])  # scale-free


def test_poincare_disk_geodesic_bends_outwards() -> None:
    z = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    acc = christoffel_terms(PoincareDisk(), z, v).acceleration()
    torch.testing.assert_close(acc, torch.tensor([[4.0 / 3.0, 0.0]], dtype=torch.float64))
