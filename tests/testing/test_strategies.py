"""Hypothesis strategies: random metrics and points satisfy the identities."""

from __future__ import annotations

import torch
from hypothesis import given, settings

from latentgeo.metrics import Metric
from latentgeo.testing import check_metric_identities
from latentgeo.testing.strategies import latent_points, metrics


@settings(max_examples=15, deadline=None)
@given(metrics(d=3), latent_points(d=3))
def test_identities_hold_for_random_metrics_and_points(metric: Metric, z: torch.Tensor) -> None:
    check_metric_identities(metric, z, lengths=False)
