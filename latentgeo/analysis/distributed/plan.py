"""Checking a distance-matrix job before any work: :func:`plan_job` and :class:`DistanceJob`."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from latentgeo._validation import check_points
from latentgeo._version import __version__
from latentgeo.analysis.distributed.sparse import knn_pairs
from latentgeo.analysis.distributed.store import TileStore
from latentgeo.analysis.distributed.tiles import TilePlan
from latentgeo.analysis.distributed.worker import (
    DecoderSource,
    SolveSettings,
    TileTask,
    decoder_of,
)
from latentgeo.solvers import available_methods

__all__ = ["DistanceJob", "ModelRef", "Points", "plan_job"]

ModelRef = str | os.PathLike[str] | DecoderSource
Points = Tensor | np.ndarray


@dataclass
class DistanceJob:
    """A checked job (from :func:`plan_job`), ready to run (``run_job``).

    Attributes:
        source: where workers get the decoder.
        settings: how each tile is solved.
        plan: the tiles.
        z_a: row points ``(N_a, d)``.
        z_b: column points ``(N_b, d)`` (``z_a`` itself for a symmetric job).
        store: the output folder, or ``None``.
        config: the configuration recorded in the manifest.
        neighbours: ``k`` in sparse mode.
    """

    source: DecoderSource
    settings: SolveSettings
    plan: TilePlan
    z_a: np.ndarray
    z_b: np.ndarray
    store: TileStore | None
    config: dict[str, Any]
    neighbours: int | None = None

    def task(self, k: int) -> TileTask:
        """What tile ``k`` sends to a worker."""
        i, j = self.plan.pairs(k)
        return TileTask(k, i, j, self.z_a[i], self.z_b[j])

    def finished_tiles(self) -> set[int]:
        """Tiles already in the output folder."""
        if self.store is None:
            return set()
        return {k for k in self.store.done() if k < self.plan.num_tiles}


def _source(model: object) -> DecoderSource:
    if isinstance(model, DecoderSource):
        return model
    if isinstance(model, (str, os.PathLike)):
        return DecoderSource.checkpoint(model)
    raise TypeError(
        f"model must be a checkpoint path or a DecoderSource, got {type(model).__name__}: the "
        "decoder travels to the workers as a checkpoint, not a closure; save it with "
        "latentgeo.models.save(decoder, path) and pass the path"
    )


def _points(z: object, name: str, dtype: torch.dtype) -> np.ndarray:
    if isinstance(z, np.ndarray):
        if not np.issubdtype(z.dtype, np.floating):
            raise TypeError(f"{name} must hold floating-point numbers, got dtype {z.dtype}")
        z = torch.from_numpy(np.ascontiguousarray(z))
    z = check_points(z, name)
    if z.ndim != 2:
        raise ValueError(f"{name} must have shape (N, d), got {tuple(z.shape)}")
    return z.detach().cpu().to(dtype).numpy()


def _check_dimension(decoder: nn.Module, z: np.ndarray, model: str) -> None:
    """Run the decoder on one point: the cheapest proof that it takes ``d``-dimensional codes."""
    try:
        with torch.no_grad():
            decoder(torch.from_numpy(z[:1].copy()))
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(
            f"the points have dimension d={z.shape[1]}, which the decoder of {model} does not "
            f"take (its forward pass on one point raised: {err})"
        ) from err


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype}{a.shape};".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _positive(name: str, value: object, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "None or a positive int" if none_ok else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _settings(
    method: str,
    solver_options: dict[str, Any] | None,
    dtype: torch.dtype,
    device: str,
    threads: int | None,
) -> SolveSettings:
    if method not in available_methods():
        raise ValueError(f"method must be one of {available_methods()}, got {method!r}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    _positive("threads", threads, none_ok=True)
    try:
        options_json = json.dumps(solver_options or {}, sort_keys=True)
    except TypeError as err:
        raise TypeError(
            f"solver_options must be JSON-serialisable (they go into the manifest): {err}"
        ) from err
    return SolveSettings(
        method, options_json, str(dtype).removeprefix("torch."), str(device), threads
    )


def _tile_plan(
    z_a: np.ndarray, z_b: np.ndarray | None, tile: int, neighbours: int | None
) -> TilePlan:
    if neighbours is not None:
        if z_b is not None:
            raise ValueError("neighbours (sparse mode) needs one set of points: leave z_b None")
        pairs = knn_pairs(z_a.astype(np.float64), neighbours)
        return TilePlan(z_a.shape[0], tile_size=tile, pairs=pairs)
    if z_b is not None:
        return TilePlan(z_a.shape[0], z_b.shape[0], tile_size=tile)
    if z_a.shape[0] < 2:
        raise ValueError(f"z must hold at least 2 points, got {z_a.shape[0]}")
    return TilePlan(z_a.shape[0], tile_size=tile)


def plan_job(
    model: ModelRef,
    z: Points,
    z_b: Points | None = None,
    *,
    tile: int = 256,
    out: str | os.PathLike[str] | None = None,
    neighbours: int | None = None,
    method: str = "spline",
    solver_options: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    device: str = "cpu",
    threads: int | None = 1,
) -> DistanceJob:
    """Check a job's inputs, before any work, and open its output folder.

    Arguments as in :func:`distance_matrix`. The checkpoint is loaded here once
    (on the CPU) to check it and the points' dimension.

    Raises:
        As :func:`distance_matrix`, except ``ConnectionError``.
    """
    _positive("tile", tile)
    _positive("neighbours", neighbours, none_ok=True)
    source = _source(model)
    built = source.build()  # FileNotFoundError / CheckpointError for a bad checkpoint
    source = source.fingerprinted(built)
    if dtype is None:
        dtype = next((p.dtype for p in built.parameters() if p.is_floating_point()), torch.float32)
    settings = _settings(method, solver_options, dtype, device, threads)
    z_a = _points(z, "z", dtype)
    z_c = None if z_b is None else _points(z_b, "z_b", dtype)
    if z_c is not None and z_c.shape[1] != z_a.shape[1]:
        raise ValueError(
            f"z and z_b must have the same dimension d, got shapes {z_a.shape} and {z_c.shape}"
        )
    _check_dimension(decoder_of(built).to(dtype), z_a, source.target)
    plan = _tile_plan(z_a, z_c, tile, neighbours)
    config = {
        "model": source.describe() | {"target": None},  # where it lies is not what it is
        "points": {"sha256": _digest(z_a, *([] if z_c is None else [z_c])), "dim": z_a.shape[1]},
        "tiles": plan.describe(),
        "neighbours": neighbours,
        "solver": {
            "method": method,
            "options": json.loads(settings.options_json),
            "dtype": settings.dtype,
            "line_points": settings.line_points,
        },
    }
    info = {"model_target": source.target, "latentgeo_version": __version__}
    store = None if out is None else TileStore.open(out, config, info)
    z_b_array = z_a if z_c is None else z_c
    return DistanceJob(source, settings, plan, z_a, z_b_array, store, config, neighbours)
