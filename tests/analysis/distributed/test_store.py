"""TileStore: atomic tile files, a manifest, resume, refusal of another configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latentgeo.analysis.distributed import ConfigurationMismatchError, TileStore
from latentgeo.analysis.distributed.store import differences
from latentgeo.analysis.distributed.worker import TileResult

CONFIG = {"model": {"sha256": "ab" * 32}, "tiles": {"tile_size": 4}, "solver": {"tol": [1e-5]}}


def _tile(k: int) -> TileResult:
    i = np.arange(3, dtype=np.int64)
    return TileResult(
        k, i, i + 1, np.array([1.0, 2.0, np.nan]), np.array([1.5, 2.5, 3.0]),
        np.array(["converged", "max_iter", "nonfinite"]), np.array([3, 9, 1]),
    )  # fmt: skip


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_tiles_round_trip_and_are_found(tmp_path: Path) -> None:
    store = TileStore.open(tmp_path / "out", CONFIG, {"note": "x"})
    assert store.done() == set()
    for k in (0, 7, 1003):
        store.write(_tile(k))
    assert store.done() == {0, 7, 1003}
    assert store.path(1003).parent.name == "000001"  # 1000 tiles per folder
    back = store.read(7)
    for name, value in _tile(7).arrays().items():
        np.testing.assert_array_equal(getattr(back, name), value)
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no temporaries left
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"] == CONFIG and manifest["info"]["note"] == "x"


def test_same_configuration_reopens_another_is_refused_untouched(tmp_path: Path) -> None:
    TileStore.open(tmp_path, CONFIG).write(_tile(0))
    assert TileStore.open(tmp_path, json.loads(json.dumps(CONFIG))).done() == {0}
    before = _snapshot(tmp_path)
    changed = {**CONFIG, "tiles": {"tile_size": 8}}
    with pytest.raises(ConfigurationMismatchError, match=r"tiles.tile_size: 4 -> 8.*nothing"):
        TileStore.open(tmp_path, changed)
    assert _snapshot(tmp_path) == before


def test_tiles_without_manifest_and_foreign_manifest_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a" / "tiles").mkdir(parents=True)
    with pytest.raises(ConfigurationMismatchError, match=r"no manifest\.json"):
        TileStore.open(tmp_path / "a", CONFIG)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ConfigurationMismatchError, match="not a latentgeo-distance-tiles"):
        TileStore.open(tmp_path / "b", CONFIG)


def test_damaged_tile_is_named(tmp_path: Path) -> None:
    store = TileStore.open(tmp_path, CONFIG)
    store.write(_tile(2))
    store.path(2).write_bytes(store.path(2).read_bytes()[:40])
    with pytest.raises(ValueError, match=r"000000002.npz is damaged.*delete it"):
        store.read(2)


def test_differences_lists_nested_keys() -> None:
    assert differences({"a": {"b": 1}, "c": 2}, {"a": {"b": 1, "d": 3}, "c": 2}) == [
        "a.d: None -> 3"
    ]
