"""Shared by the distributed tests: one decoder of each kind as a checkpoint, points, and one
``LocalCluster`` of 2 worker processes on 127.0.0.1 for the whole session (started once: a
worker process takes seconds to import torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from latentgeo.analysis.distributed.cluster import connect
from latentgeo.models import MLP, EnsembleDecoder, GaussianDecoder, RBFPrecision, save

KINDS = ("mlp", "gaussian", "rbf", "ensemble")


def make_decoder(kind: str) -> nn.Module:
    """A small float64 decoder 2 → 5 of the given kind (seeded)."""
    torch.manual_seed({"mlp": 1, "gaussian": 2, "rbf": 3, "ensemble": 4}[kind])
    if kind == "mlp":
        decoder: nn.Module = MLP(2, 5, hidden=(16,))
    elif kind == "gaussian":
        scale = MLP(2, 5, hidden=(16,), output_activation="softplus")
        decoder = GaussianDecoder(MLP(2, 5, hidden=(16,)), scale)
    elif kind == "rbf":
        rbf = RBFPrecision(2, 5, num_centres=4)
        rbf.fit_centres(torch.randn(64, 2))
        decoder = GaussianDecoder(MLP(2, 5, hidden=(16,)), rbf)
    else:
        decoder = EnsembleDecoder([MLP(2, 5, hidden=(16,)) for _ in range(3)])
    return decoder.double()


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kind -> checkpoint path of :func:`make_decoder` (kind)."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {kind: save(make_decoder(kind), root / f"{kind}.pt") for kind in KINDS}


@pytest.fixture(scope="session")
def points() -> torch.Tensor:
    """10 latent points (float64), 45 pairs."""
    return torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    """A client of the embedded LocalCluster: 2 worker processes, 1 thread each, 127.0.0.1,
    the HTTP server on a free loopback port; closed at the end of the session."""
    with connect(workers=2) as dask_client:
        dask_client.run(exec, "import latentgeo.analysis.distributed.worker")  # warm the workers
        yield dask_client
