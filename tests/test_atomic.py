"""Atomic writes: the content appears whole, with the modes the umask gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from latentgeo._atomic import atomic_path, write_csv, write_json, write_text


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_and_folders_follow_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        paths = [
            write_text(tmp_path / "new" / "a.txt", "a"),
            write_json(tmp_path / "b.json", {"b": 1}),
            write_csv(tmp_path / "c.csv", ["c"], [[1]]),
        ]
        with atomic_path(tmp_path / "d.bin") as tmp:
            assert tmp.stat().st_mode & 0o777 == 0o666 & ~umask  # already while writing
            tmp.write_bytes(b"d")
        paths.append(tmp_path / "d.bin")
    finally:
        os.umask(previous)
    for p in paths:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p.name
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
