"""Where a job runs: an unreachable scheduler is a clear error; Dask is needed only to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentgeo.analysis import distance_matrix


def test_unreachable_scheduler(
    tmp_path: Path, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    expected = r"cannot reach a Dask scheduler at 'tcp://127\.0\.0\.1:9' within 1\.0 s"
    with pytest.raises(ConnectionError, match=expected):
        distance_matrix(
            checkpoints["mlp"], points, scheduler="tcp://127.0.0.1:9", timeout=1.0,
            out=tmp_path / "out",
        )  # fmt: skip
    assert not (tmp_path / "out" / "tiles").exists()  # no tile was computed


def test_latentgeo_imports_without_dask_and_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
        "import latentgeo.analysis as a\n"
        "from latentgeo.analysis.distributed.cluster import connect\n"
        "try:\n"
        "    with connect(workers=1): pass\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert 'pip install "latentgeo[distributed]"' in out.stdout
