"""Latent size from a decoder's first layer, and one probe run with clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentgeo.metrics.probe import LatentSize, check_latent_dim, infer_latent_dim, probe


class FunctionalFirstLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 6))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.linear(z.float(), self.weight).tanh()


class ShapeFirst(nn.Module):
    """Reads ``z.shape`` before its first layer: still a 3-d latent."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        return self.lin(z.contiguous()).reshape(n, 4)


def test_the_latent_size_comes_from_the_first_linear_layer() -> None:
    seq = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 5))
    assert infer_latent_dim(seq) == LatentSize(16, "its first layer '0' is Linear(in_features=16)")
    found = infer_latent_dim(FunctionalFirstLayer())
    assert found is not None and found.dim == 6 and "weight of shape (8, 6)" in found.source
    shape_first = infer_latent_dim(ShapeFirst())
    assert shape_first is not None and shape_first.dim == 3
    assert infer_latent_dim(nn.Sequential(nn.Tanh(), nn.Linear(2, 3))) is None  # not fixed by d
    assert infer_latent_dim(lambda z: z) is None  # not a module, nothing to trace


def test_latent_dim_option_is_checked() -> None:
    assert check_latent_dim(None) is None and check_latent_dim(4) == 4
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="latent_dim must be a positive int or None"):
            check_latent_dim(bad)


def test_probe_runs_once_and_names_what_failed() -> None:
    net = nn.Sequential(nn.Linear(4, 3)).double()
    probe(net, net, LatentSize(4, "given"))  # runs: no error
    with pytest.raises(ValueError, match=r"decoder Sequential fails on a latent point of dimension"
                                         r" 5 \(a guess\): RuntimeError"):  # fmt: skip
        probe(net, net, LatentSize(5, "a guess"))

    def batch_summed(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, z])

    with pytest.raises(ValueError, match="batch_summed returned 2 rows for 1 latent point"):
        probe(batch_summed, batch_summed, LatentSize(2, "given"))
