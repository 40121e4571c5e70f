"""What a worker runs: the decoder from a checkpoint or a factory, cached and verified, and one
tile solved exactly as the in-process pairwise computation solves its chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from latentgeo.analysis import pairwise_geodesic_distances, straight_line_length
from latentgeo.analysis.distributed import DecoderSource, SolveSettings, TilePlan, solve_tile
from latentgeo.analysis.distributed.worker import (
    TileTask,
    cache_info,
    cached_metric,
    file_sha256,
)
from latentgeo.models import CheckpointError, load, save

from ...conftest import KINDS, make_decoder


def _task(plan: TilePlan, k: int, z: torch.Tensor) -> TileTask:
    i, j = plan.pairs(k)
    return TileTask(k, i, j, z[i].numpy(), z[j].numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_tile_equals_the_in_process_chunk(
    kind: str, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    """Every decoder kind latentgeo saves; tile k is chunk k of pairwise_geodesic_distances."""
    source = DecoderSource.checkpoint(checkpoints[kind])
    decoder = make_decoder(kind)
    plan = TilePlan(points.shape[0], tile_size=16)
    ref = pairwise_geodesic_distances(decoder, points, chunk_size=16)
    for k in range(plan.num_tiles):
        tile = solve_tile(source, _task(plan, k, points), SolveSettings())
        i, j = plan.pairs(k)
        np.testing.assert_array_equal(tile.i, i)
        torch.testing.assert_close(torch.from_numpy(tile.length), ref[i, j], rtol=1e-10, atol=0)
        line = straight_line_length(decoder, points[i], points[j])
        torch.testing.assert_close(torch.from_numpy(tile.line_length), line)
        assert (tile.length <= tile.line_length * (1 + 1e-8)).all()  # never longer than the line
        assert set(tile.status.tolist()) == {"converged"}
        assert tile.iterations.shape == i.shape


def test_float32_settings_cast_the_workers_copy(checkpoints: dict[str, Path]) -> None:
    z = torch.randn(4, 2, dtype=torch.float64)
    task = TileTask(0, np.array([0, 1]), np.array([2, 3]), z[:2].numpy(), z[2:].numpy())
    tile = solve_tile(
        DecoderSource.checkpoint(checkpoints["mlp"]), task, SolveSettings(dtype="float32")
    )
    assert tile.length.dtype == np.float32
    ref = pairwise_geodesic_distances(make_decoder("mlp").float(), z.float(), chunk_size=None)
    np.testing.assert_allclose(tile.length, ref[[0, 1], [2, 3]].numpy(), rtol=1e-4)


def test_decoder_is_built_once_per_process(checkpoints: dict[str, Path]) -> None:
    source = DecoderSource.checkpoint(checkpoints["ensemble"])
    settings = SolveSettings(options_json='{"max_iter": 3}')
    first = cached_metric(source, settings)
    before = cache_info()
    assert cached_metric(source, settings) is first
    after = cache_info()
    assert after["builds"] == before["builds"] and after["hits"] == before["hits"] + 1


def test_changed_checkpoint_is_detected(tmp_path: Path) -> None:
    path = save(make_decoder("mlp"), tmp_path / "m.pt")
    source = DecoderSource.checkpoint(path)
    assert source.sha256 == file_sha256(path) and source.kind == "checkpoint"
    save(make_decoder("gaussian"), path)  # replaced after the job started
    with pytest.raises(ValueError, match=r"has SHA-256 .* expected"):
        source.verify(load(path))


def test_factories_by_import_path() -> None:
    spec = {"data_dim": 5, "num_members": 2, "hidden": [8], "seed": 0}
    source = DecoderSource.factory("latentgeo.models:make_ensemble_vae", **spec)
    model = source.build()
    source = source.fingerprinted(model)
    assert len(source.sha256) == 64
    source.verify(source.build())  # seeded: every worker builds the same model
    z = torch.randn(3, 2, dtype=torch.float64)
    task = TileTask(0, np.array([0]), np.array([1]), z[:1].numpy(), z[1:2].numpy())
    tile = solve_tile(source, task, SolveSettings())
    ref = pairwise_geodesic_distances(model.decoder.double(), z[:2])[0, 1]
    np.testing.assert_allclose(tile.length, [float(ref)], rtol=1e-10)
    unseeded = DecoderSource.factory("latentgeo.models:MLP", in_dim=2, out_dim=3)
    unseeded = unseeded.fingerprinted(unseeded.build())
    with pytest.raises(ValueError, match="not deterministic"):
        unseeded.verify(unseeded.build())


def test_bad_sources() -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        DecoderSource.checkpoint("/nonexistent/model.pt")
    with pytest.raises(ValueError, match="module:function"):
        DecoderSource.factory("latentgeo.models.MLP")
    with pytest.raises(TypeError, match="JSON"):
        DecoderSource.factory("latentgeo.models:MLP", x=object())
    with pytest.raises(TypeError, match=r"nn\.Module"):
        DecoderSource.factory("builtins:dict", a=1).build()


def test_damaged_checkpoint(tmp_path: Path) -> None:
    path = save(make_decoder("mlp"), tmp_path / "m.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        DecoderSource.checkpoint(path).build()
