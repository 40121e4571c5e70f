"""What runs on a Dask worker: the decoder, loaded once per worker, and one tile's geodesics.

The decoder travels as a :class:`DecoderSource` (a checkpoint path or a
factory's import path, with a SHA-256 fingerprint), never as a closure. A
worker builds it on its first tile, checks the fingerprint, and keeps its
metric in a per-process cache, so every later tile of the job only carries
pair indices and coordinates. Nothing here imports Dask: :func:`solve_tile`
is a plain function that any executor can run.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from latentgeo.analysis.distances import iter_geodesics
from latentgeo.analysis.improvement import straight_line_length
from latentgeo.metrics import Metric, as_metric
from latentgeo.models import VAE, load
from latentgeo.solvers.validity import mark_invalid

__all__ = [
    "DecoderSource",
    "SolveSettings",
    "TileResult",
    "TileTask",
    "cache_info",
    "cached_metric",
    "file_sha256",
    "solve_tile",
    "state_sha256",
]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_sha256(model: nn.Module) -> str:
    """SHA-256 of a module's state (names, dtypes, shapes and bytes of its tensors, in order)."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        array = value.detach().cpu().contiguous()
        digest.update(f"{name}:{array.dtype}:{tuple(array.shape)};".encode())
        digest.update(array.view(torch.uint8).numpy().tobytes() if array.numel() else b"")
    return digest.hexdigest()


def decoder_of(model: nn.Module) -> nn.Module:
    """The decoder of ``model``: a :class:`~latentgeo.models.VAE`'s ``decoder``, else the model."""
    return model.decoder if isinstance(model, VAE) else model


@dataclass(frozen=True)
class DecoderSource:
    """Where a worker gets the decoder, and the fingerprint it must have.

    Build one with :meth:`checkpoint` (a file written by
    :func:`latentgeo.models.save`: a decoder of any kind, or a VAE whose
    decoder is used) or :meth:`factory` (``"package.module:function"``,
    importable on every worker, called with JSON-able keyword arguments and
    returning the decoder).

    Attributes:
        kind: ``"checkpoint"`` or ``"factory"``.
        target: the checkpoint's absolute path, or the factory's import path.
        kwargs_json: the factory's keyword arguments as JSON (``"{}"`` for checkpoints).
        sha256: the checkpoint file's SHA-256, or that of the factory's module state.
    """

    kind: str
    target: str
    kwargs_json: str = "{}"
    sha256: str = ""

    @classmethod
    def checkpoint(cls, path: str | os.PathLike[str]) -> DecoderSource:
        """A checkpoint file; its bytes are hashed now.

        Raises:
            FileNotFoundError: ``path`` is not a file.
        """
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise FileNotFoundError(f"no checkpoint at {path} (expected a latentgeo checkpoint)")
        return cls("checkpoint", str(file), "{}", file_sha256(file))

    @classmethod
    def factory(cls, target: str, **kwargs: Any) -> DecoderSource:
        """A factory ``"package.module:function"`` called as ``function(**kwargs)``.

        The fingerprint is filled in by :meth:`fingerprinted` (the job does it
        on the client): every worker's decoder must have the same state.

        Raises:
            ValueError: ``target`` is not ``"module:function"``.
            TypeError: ``kwargs`` are not JSON-serialisable.
        """
        module, _, attr = target.partition(":")
        if not module or not attr:
            raise ValueError(f"factory must be 'package.module:function', got {target!r}")
        try:
            kwargs_json = json.dumps(kwargs, sort_keys=True)
        except TypeError as err:
            raise TypeError(f"factory keyword arguments must be JSON-serialisable: {err}") from err
        return cls("factory", target, kwargs_json, "")

    def build(self, map_location: str | torch.device = "cpu") -> nn.Module:
        """Load or build the model (the whole model: a VAE stays a VAE).

        Raises:
            FileNotFoundError, latentgeo.models.CheckpointError: unreadable checkpoint.
            TypeError: the factory returned something other than an ``nn.Module``.
        """
        if self.kind == "checkpoint":
            model = load(self.target, map_location=map_location)
        elif self.kind == "factory":
            module, _, attr = self.target.partition(":")
            model = getattr(importlib.import_module(module), attr)(**json.loads(self.kwargs_json))
            if not isinstance(model, nn.Module):
                raise TypeError(
                    f"factory {self.target} must return an nn.Module, got {type(model).__name__}"
                )
            model = model.to(map_location)
        else:
            raise ValueError(f"kind must be 'checkpoint' or 'factory', got {self.kind!r}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"{self.target} holds a {type(model).__name__}, not a decoder module")
        return model

    def fingerprinted(self, model: nn.Module) -> DecoderSource:
        """This source with ``sha256`` set from a model it built (factories only)."""
        if self.kind == "checkpoint":
            return self
        return DecoderSource(self.kind, self.target, self.kwargs_json, state_sha256(model))

    def verify(self, model: nn.Module) -> None:
        """Raise ``ValueError`` unless what this worker sees has the expected fingerprint."""
        seen = file_sha256(self.target) if self.kind == "checkpoint" else state_sha256(model)
        if self.sha256 and seen != self.sha256:
            what = "the checkpoint file" if self.kind == "checkpoint" else "the factory's model"
            raise ValueError(
                f"{what} {self.target} has SHA-256 {seen[:12]}… on this worker, expected "
                f"{self.sha256[:12]}… (changed since the job started, another file on this "
                "machine, or a factory that is not deterministic)"
            )

    def describe(self) -> dict[str, Any]:
        """JSON-able description (what the manifest records)."""
        return {
            "kind": self.kind,
            "target": self.target,
            "kwargs": json.loads(self.kwargs_json),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class SolveSettings:
    """How every tile is solved (the same for all tiles of a job).

    Attributes:
        method: the method of :func:`~latentgeo.solvers.connecting_geodesic`.
        options_json: its other options, as JSON.
        dtype: ``"float32"`` or ``"float64"``: the decoder and points are cast to it.
        device: where workers compute (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        threads: torch threads per worker process (``None``: leave the worker's setting).
        line_points: Gauss–Legendre nodes of the straight-line length.
    """

    method: str = "spline"
    options_json: str = "{}"
    dtype: str = "float64"
    device: str = "cpu"
    threads: int | None = 1
    line_points: int = 64

    @property
    def torch_dtype(self) -> torch.dtype:
        """The ``torch.dtype`` named by ``dtype``."""
        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]


@dataclass(frozen=True)
class TileTask:
    """One tile as it travels to a worker: pair indices and the end points' coordinates.

    Attributes:
        index: the tile's number.
        i: row indices ``(T,)``.
        j: column indices ``(T,)``.
        z_a: start points ``(T, d)``.
        z_b: end points ``(T, d)``.
    """

    index: int
    i: np.ndarray
    j: np.ndarray
    z_a: np.ndarray
    z_b: np.ndarray


@dataclass
class TileResult:
    """One solved tile (NumPy arrays, so that it pickles small and saves as ``.npz``).

    Attributes:
        index: the tile's number.
        i: row indices ``(T,)``.
        j: column indices ``(T,)``.
        length: geodesic lengths ``(T,)``.
        line_length: Riemannian lengths of the straight segments ``(T,)``.
        status: per-pair :class:`~latentgeo.solvers.Status` values as strings ``(T,)``.
        iterations: solver iterations per pair ``(T,)``.
    """

    index: int
    i: np.ndarray
    j: np.ndarray
    length: np.ndarray
    line_length: np.ndarray
    status: np.ndarray
    iterations: np.ndarray

    ARRAYS: ClassVar[tuple[str, ...]] = ("i", "j", "length", "line_length", "status", "iterations")

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name (what a tile file holds)."""
        return {name: getattr(self, name) for name in self.ARRAYS}


_CACHE: dict[tuple[str, str, str, str, str], Metric] = {}
_CACHE_SIZE = 4
_LOCK = threading.Lock()
_COUNTS = {"builds": 0, "hits": 0}


def cache_info() -> dict[str, int]:
    """This process's decoder cache: ``builds`` (decoders loaded), ``hits`` (tiles that
    reused one) and ``size`` (decoders kept), like ``functools.lru_cache``'s ``cache_info``."""
    with _LOCK:
        return {**_COUNTS, "size": len(_CACHE)}


def cached_metric(source: DecoderSource, settings: SolveSettings) -> Metric:
    """The decoder's metric in this process: built (and verified) on first use, then reused.

    The first call in a process also sets torch's thread count to
    ``settings.threads``. The cache keeps the last few decoders (a worker can
    serve several jobs).
    """
    key = (source.kind, source.target, source.sha256, settings.dtype, settings.device)
    with _LOCK:
        metric = _CACHE.get(key)
        _COUNTS["hits" if metric is not None else "builds"] += 1
        if metric is None:
            if settings.threads is not None:
                torch.set_num_threads(settings.threads)
            model = source.build(map_location=settings.device)
            source.verify(model)
            metric = as_metric(decoder_of(model).to(settings.torch_dtype))
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = metric
        return metric


def solve_tile(source: DecoderSource, task: TileTask, settings: SolveSettings) -> TileResult:
    """Solve one tile's geodesics in one batched call (on a worker, or anywhere).

    The tile's pairs go through
    :func:`~latentgeo.analysis.iter_geodesics` as one chunk, as
    :func:`~latentgeo.analysis.pairwise_geodesic_distances` solves each of
    its chunks; the straight line is measured by
    :func:`~latentgeo.analysis.straight_line_length` (a pair whose line has no
    length, ``NaN``, is reported ``invalid_metric``).

    Returns:
        The tile's :class:`TileResult`.
    """
    metric = cached_metric(source, settings)
    like = {"dtype": settings.torch_dtype, "device": settings.device}
    z_a = torch.as_tensor(task.z_a, **like)  # type: ignore[arg-type]
    z_b = torch.as_tensor(task.z_b, **like)  # type: ignore[arg-type]
    options = json.loads(settings.options_json)
    [(_, result)] = iter_geodesics(
        metric, z_a, z_b, chunk_size=None, method=settings.method, **options
    )
    line = straight_line_length(metric, z_a, z_b, num_points=settings.line_points)
    # a NaN straight line: the metric gives a negative or non-finite squared norm on it
    status = mark_invalid(result.status, ~torch.isfinite(line))
    iterations = torch.as_tensor(result.iterations).expand(result.num_pairs)
    return TileResult(
        index=task.index,
        i=np.asarray(task.i, dtype=np.int64),
        j=np.asarray(task.j, dtype=np.int64),
        length=result.length.detach().cpu().numpy(),
        line_length=line.detach().cpu().numpy(),
        status=np.array([s.value for s in status]),
        iterations=iterations.detach().cpu().numpy().astype(np.int64),
    )
