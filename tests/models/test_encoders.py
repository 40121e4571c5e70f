"""GaussianEncoder: a Normal over latents, trailing shapes flattened."""

from __future__ import annotations

import torch
from torch.distributions import Normal

from latentgeo.models import (
    GaussianEncoder,
)


def test_encoder_outputs_a_normal_over_latents() -> None:
    enc = GaussianEncoder(6, 2, hidden=(8,))
    q = enc(torch.randn(4, 1, 2, 3))  # trailing shape flattened
    assert isinstance(q, Normal) and q.mean.shape == (4, 2) and bool((q.stddev > 0).all())
