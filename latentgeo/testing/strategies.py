"""Hypothesis strategies for property tests of metrics (needs ``hypothesis``).

Example (in your pytest suite)::

    from hypothesis import given
    from latentgeo.testing import check_metric_identities
    from latentgeo.testing.strategies import latent_points, metrics

    @given(metrics(d=3), latent_points(d=3))
    def test_identities(metric, z):
        check_metric_identities(metric, z)
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import Tensor

from latentgeo.metrics import Metric
from latentgeo.testing.kinds import METRIC_KINDS, make_metric

__all__ = ["latent_points", "metrics", "tangent_vectors"]


@st.composite
def latent_points(
    draw: st.DrawFn,
    d: int,
    *,
    min_points: int = 2,
    max_points: int = 8,
    scale: float = 1.5,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Points ``(N, d)`` drawn as ``scale · N(0, I)`` from a hypothesis-chosen seed.

    Args:
        draw: supplied by hypothesis.
        d: the latent dimension.
        min_points: least ``N``.
        max_points: largest ``N``.
        scale: the standard deviation of the coordinates.
        dtype: their dtype.
    """
    n = draw(st.integers(min_points, max_points))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=gen, dtype=dtype)


def tangent_vectors(z: Tensor) -> st.SearchStrategy[Tensor]:
    """Tangent vectors ``(N, d)`` at the points ``z``, standard normal from a drawn seed."""
    return st.integers(0, 2**31 - 1).map(
        lambda seed: torch.randn(
            z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype
        ).to(z.device)
    )


def metrics(
    d: int,
    *,
    kinds: tuple[str, ...] | None = None,
    dtype: torch.dtype = torch.float64,
) -> st.SearchStrategy[Metric]:
    """Small random metrics of the given kinds (default: every kind that exists at ``d``).

    Args:
        d: the latent dimension.
        kinds: names from :data:`latentgeo.testing.kinds.METRIC_KINDS`.
        dtype: the metrics' dtype.
    """
    names = kinds or tuple(k for k in METRIC_KINDS if k != "disk" or d == 2)
    return st.tuples(st.sampled_from(names), st.integers(0, 2**31 - 1)).map(
        lambda pair: make_metric(pair[0], d, seed=pair[1], dtype=dtype)
    )
