"""Shared by the figure tests: a PNG check and a decoder with a latent-dependent scale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class GaussianDecoder(nn.Module):
    """``N(W z + b, σ(z)² I)`` in ``R⁵`` with ``σ(z) = 0.1 + ‖z‖²``."""

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Linear(2, 5)

    def forward(self, z: torch.Tensor) -> Independent:
        sigma = 0.1 + z.pow(2).sum(-1, keepdim=True).expand(-1, 5)
        return Independent(Normal(self.mu(z), sigma), 1)


@pytest.fixture
def gaussian_decoder() -> GaussianDecoder:
    return GaussianDecoder()


@pytest.fixture
def is_png() -> Callable[[Path], bool]:
    """Whether a path is a written PNG file (by its magic bytes)."""

    def check(path: Path) -> bool:
        return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC

    return check
