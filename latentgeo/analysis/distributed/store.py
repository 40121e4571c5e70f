"""The output folder of a distance-matrix job: a manifest and one file per finished tile.

Layout of ``out/``::

    manifest.json                  format, version, the job's configuration, information
    tiles/000000/000000017.npz     tile 17: i, j, length, line_length, status, iterations
    tiles/000001/000001003.npz     (1000 tiles per sub-folder)

Every file is written atomically (:mod:`latentgeo._atomic`): a tile file
exists only once the tile is complete, so an interrupted job leaves only
finished tiles behind and a rerun skips them. The configuration (points,
decoder fingerprint, tiling, solver, dtype) is compared on every open; a
folder holding another configuration is refused with the differences named,
and nothing in it is touched.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from latentgeo._atomic import atomic_path, write_json
from latentgeo.analysis.distributed.worker import TileResult
from latentgeo.exceptions import LatentgeoError

__all__ = ["FORMAT", "FORMAT_VERSION", "ConfigurationMismatchError", "TileStore"]

FORMAT = "latentgeo-distance-tiles"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TILES_PER_FOLDER = 1000


class ConfigurationMismatchError(LatentgeoError, ValueError):
    """The output folder holds a job with another configuration (nothing was overwritten)."""


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every setting that differs between two configurations.

    Example:
        >>> differences({"tile": 256, "solver": {"method": "spline"}},
        ...             {"tile": 128, "solver": {"method": "spline"}})
        ['tile: 256 -> 128']
    """
    a, b = _flatten(old), _flatten(new)
    keys = sorted(a.keys() | b.keys())
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


class TileStore:
    """A job's output folder (use :meth:`open`).

    Attributes:
        root: the folder.
        config: the job's configuration, as in the manifest.
    """

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        config: dict[str, Any],
        info: dict[str, Any] | None = None,
    ) -> TileStore:
        """Open ``root`` for a job with ``config``: create it, or check that it holds the same job.

        Args:
            root: the output folder (created if needed).
            config: JSON-able configuration; a rerun must give the same one.
            info: JSON-able information recorded in a new manifest, never compared.

        Raises:
            ConfigurationMismatchError: ``root`` holds a job with another
                configuration, or tiles without a manifest.
        """
        root = Path(root)
        config = json.loads(json.dumps(config))  # as it reads back (tuples -> lists)
        manifest = root / MANIFEST
        if manifest.is_file():
            try:
                saved = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ConfigurationMismatchError(f"{manifest} is unreadable: {err}") from err
            if saved.get("format") != FORMAT or saved.get("version") != FORMAT_VERSION:
                raise ConfigurationMismatchError(
                    f"{manifest} is not a {FORMAT} manifest of version {FORMAT_VERSION}"
                )
            diff = differences(saved.get("config", {}), config)
            if diff:
                raise ConfigurationMismatchError(
                    f"{root} holds a distance job with another configuration ("
                    + "; ".join(diff)
                    + "). Use another output folder, or delete this one to start again; "
                    "nothing was overwritten."
                )
        elif (root / "tiles").exists():
            raise ConfigurationMismatchError(
                f"{root} has tiles/ but no {MANIFEST}: not a complete distance job; "
                "use another output folder"
            )
        else:
            write_json(
                manifest,
                {
                    "format": FORMAT,
                    "version": FORMAT_VERSION,
                    "config": config,
                    "info": {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(info or {})},
                },
            )
        return cls(root, config)

    def path(self, index: int) -> Path:
        """The file of tile ``index``."""
        return self.root / "tiles" / f"{index // TILES_PER_FOLDER:06d}" / f"{index:09d}.npz"

    def done(self) -> set[int]:
        """The numbers of the tiles whose files exist."""
        tiles = self.root / "tiles"
        if not tiles.is_dir():
            return set()
        found: set[int] = set()
        for folder in tiles.iterdir():
            if folder.is_dir():
                found.update(
                    int(p.name[:-4])
                    for p in folder.iterdir()
                    if p.name.endswith(".npz") and p.name[:-4].isdigit()
                )
        return found

    def write(self, result: TileResult) -> Path:
        """Write a solved tile atomically; returns its path."""
        path = self.path(result.index)
        with atomic_path(path) as tmp:
            np.savez(tmp, **result.arrays())  # type: ignore[arg-type]
        return path

    def read(self, index: int) -> TileResult:
        """Read tile ``index``.

        Raises:
            ValueError: the file is damaged (it names the file to delete).
        """
        path = self.path(index)
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
                arrays = {name: data[name] for name in TileResult.ARRAYS}
        except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"tile file {path} is damaged ({err}); delete it and rerun to recompute it"
            ) from err
        return TileResult(index=index, **arrays)
