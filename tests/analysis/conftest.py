"""Shared by the analysis tests: reproducible points well inside the sphere's chart."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

SpherePoints = Callable[..., torch.Tensor]


def _sphere_points(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    # points in the southern hemisphere's chart |z| < 1.5: well inside the projection
    gen = torch.Generator().manual_seed(3)
    return 1.5 * (torch.rand(n, 2, generator=gen, dtype=dtype) * 2 - 1) / math.sqrt(2)


@pytest.fixture
def sphere_points() -> SpherePoints:
    """``sphere_points(n, dtype=float64)``: the same n points ``(n, 2)`` on every call."""
    return _sphere_points
