"""Shared fixtures: one thread, seeded randomness, dtypes and devices to test on; for the
distance jobs (tests/analysis/distributed, tests/cli/test_distances.py) one decoder of each
kind as a checkpoint, points, and one ``LocalCluster`` of 2 worker processes on 127.0.0.1 for
the whole session (started once, on first use: a worker process takes seconds to import torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, settings
from torch import nn

from latentgeo.models import MLP, EnsembleDecoder, GaussianDecoder, RBFPrecision, save

torch.set_num_threads(1)

# Reproducible property tests: a fixed example sequence, no wall-clock deadline.
settings.register_profile(
    "latentgeo",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("latentgeo")

DTYPES = [torch.float64, torch.float32]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``cuda`` when no GPU is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Both precisions."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """The CPU, and CUDA when available (tests marked ``cuda`` skip otherwise)."""
    return torch.device(request.param)


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
    from latentgeo.analysis.distributed.cluster import connect  # dask: only where used

    with connect(workers=2) as dask_client:
        dask_client.run(exec, "import latentgeo.analysis.distributed.worker")  # warm the workers
        yield dask_client
