"""Every metric kind latentgeo makes passes the metric identities in both precisions."""

from __future__ import annotations

import pytest
import torch

from latentgeo.testing import check_metric_identities
from latentgeo.testing.kinds import METRIC_KINDS, make_metric


@pytest.mark.parametrize("kind", METRIC_KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_metric_kind_satisfies_the_identities(kind: str, dtype: torch.dtype) -> None:
    d = 2 if kind == "disk" else 3
    metric = make_metric(kind, d, seed=1, dtype=dtype)
    scale = 0.4 if kind == "disk" else 1.0
    z = scale * torch.rand(6, d, generator=torch.Generator().manual_seed(2), dtype=dtype)
    check_metric_identities(metric, z)
