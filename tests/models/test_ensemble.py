"""EnsembleDecoder: stacked member outputs, the mean metric dispatched."""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Normal

from latentgeo.metrics import MeanMetric, as_metric
from latentgeo.models import (
    MLP,
    BernoulliDecoder,
    EnsembleDecoder,
    GaussianDecoder,
)


def test_ensemble_stacks_members_and_dispatches_the_mean_metric() -> None:
    members = [GaussianDecoder(MLP(2, 3, hidden=(8,)), 0.5) for _ in range(4)]
    ens = EnsembleDecoder(members)
    z = torch.randn(5, 2)
    out = ens(z)
    assert isinstance(out, Normal) and out.loc.shape == (4, 5, 3)
    assert ens.num_members == 4 and ens.forward_member(z, 2).loc.shape == (5, 3)
    # independent initialisations: the members differ
    assert not torch.allclose(out.loc[0], out.loc[1])
    metric = as_metric(ens)
    assert isinstance(metric, MeanMetric)
    per_member = torch.stack([as_metric(m).metric_tensor(z) for m in members])
    torch.testing.assert_close(metric.metric_tensor(z), per_member.mean(0))
    bern = EnsembleDecoder([BernoulliDecoder(MLP(2, 3, hidden=(4,))) for _ in range(2)])
    assert isinstance(bern(z), Bernoulli) and bern(z).logits.shape == (2, 5, 3)
