"""Bad input is refused with a clear error before any work: no cluster is contacted, no tile
is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from latentgeo.analysis import distance_matrix
from latentgeo.analysis.distributed import plan_job
from latentgeo.models import CheckpointError

from ...conftest import make_decoder


class NoCluster:
    """A client that fails the test if the job touches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the job used the cluster ({name}) before refusing its input")


def _refused(tmp_path: Path, model: object, z: object, **kwargs: Any) -> None:
    distance_matrix(model, z, client=NoCluster(), out=tmp_path / "out", **kwargs)  # type: ignore[arg-type]


def test_missing_checkpoint(tmp_path: Path, points: torch.Tensor) -> None:
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*missing\.pt"):
        _refused(tmp_path, tmp_path / "missing.pt", points)
    assert not (tmp_path / "out").exists()


def test_damaged_checkpoint(
    tmp_path: Path, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(checkpoints["mlp"].read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        _refused(tmp_path, damaged, points)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("z", "error", "match"),
    [
        (torch.randn(5, 3, dtype=torch.float64), ValueError, r"dimension d=3.*does not take"),
        (torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), ValueError, "z contains NaN"),
        (torch.randn(5), ValueError, r"shape \(N, d\)"),
        (torch.randn(1, 2), ValueError, "at least 2 points"),
        (np.zeros((4, 2), dtype=np.int64), TypeError, "floating"),
        ([[0.0, 1.0]], TypeError, "torch.Tensor"),
    ],
    ids=["dimension", "nan", "1d", "one_point", "int_array", "list"],
)
def test_bad_points(
    tmp_path: Path, checkpoints: dict[str, Path], z: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        _refused(tmp_path, checkpoints["mlp"], z)
    assert not (tmp_path / "out" / "tiles").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tile": 0}, ValueError, "tile must be a positive int"),
        ({"neighbours": 0}, ValueError, "neighbours"),
        ({"neighbours": 10}, ValueError, r"neighbours must be an int in \[1, N - 1\]"),
        ({"method": "magic"}, ValueError, "method must be one of"),
        ({"solver_options": {"tol": object()}}, TypeError, "JSON-serialisable"),
        ({"dtype": torch.float16}, TypeError, "dtype"),
        ({"threads": 0}, ValueError, "threads"),
        ({"z_b": torch.randn(3, 4, dtype=torch.float64)}, ValueError, "same dimension"),
        ({"z_b": torch.randn(3, 2, dtype=torch.float64), "neighbours": 2}, ValueError, "one set"),
    ],
)
def test_bad_options(
    tmp_path: Path, checkpoints: dict[str, Path], points: torch.Tensor, kwargs: dict,
    error: type, match: str,
) -> None:  # fmt: skip
    with pytest.raises(error, match=match):
        _refused(tmp_path, checkpoints["mlp"], points, **kwargs)


def test_bad_run_options(
    tmp_path: Path, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    with pytest.raises(ValueError, match="retries"):
        _refused(tmp_path, checkpoints["mlp"], points, retries=-1)
    with pytest.raises(ValueError, match="workers"):
        _refused(tmp_path, checkpoints["mlp"], points, workers=0)
    with pytest.raises(ValueError, match="not both"):
        _refused(tmp_path, checkpoints["mlp"], points, scheduler="tcp://127.0.0.1:9")
    with pytest.raises(ValueError, match="embedded local cluster"):
        _refused(tmp_path, checkpoints["mlp"], points, workers=2)


def test_a_module_is_not_a_checkpoint(points: torch.Tensor) -> None:
    with pytest.raises(TypeError, match=r"latentgeo\.models\.save\(decoder, path\)"):
        plan_job(make_decoder("mlp"), points)  # type: ignore[arg-type]


def test_plan_records_what_identifies_the_job(
    checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    job = plan_job(checkpoints["mlp"], points, tile=8, solver_options={"tol": 1e-6})
    assert job.plan.num_tiles == 6 and job.z_a.dtype == np.float64  # the checkpoint's dtype
    assert job.config["model"]["sha256"] == job.source.sha256
    assert job.config["solver"] == {
        "method": "spline", "options": {"tol": 1e-6}, "dtype": "float64", "line_points": 64,
    }  # fmt: skip
    other = plan_job(checkpoints["mlp"], points + 1e-9, tile=8, solver_options={"tol": 1e-6})
    assert other.config["points"] != job.config["points"]
    assert plan_job(checkpoints["mlp"], points, dtype=torch.float32).z_a.dtype == np.float32
