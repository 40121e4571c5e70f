"""Atomic file writes: a failed run never leaves a half-written file behind.

Every writer puts its content into a temporary file in the destination's
folder and then moves it into place with :func:`os.replace`, which is atomic
on POSIX and Windows when both paths are on the same file system.

The temporary file is created with mode ``0o666`` less the process's umask
(``0644`` under the usual ``022``), like any file the user creates, so that
results in a shared folder are readable by others (:func:`tempfile.mkstemp`
would give ``0600``).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "write_csv", "write_json", "write_text"]


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Any:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    Args:
        path: the final destination; its parent folders are created.
        suffix: suffix of the temporary file (default: ``path``'s own, so that
            writers that infer the format from the name still work).

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_path(out) as tmp:
        ...     _ = tmp.write_text("hello")
        >>> out.read_text()
        'hello'
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(final.parent, f".{final.name}.", final.suffix if suffix is None else suffix)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file with a fresh name in ``folder``, mode ``0o666`` less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return name
    raise FileExistsError(f"no free temporary file name in {folder}")  # pragma: no cover


def _write_with(path: str | os.PathLike[str], write: Callable[[IO[str]], None]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        write(fh)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""

    def write(fh: IO[str]) -> None:
        fh.write(text)

    return _write_with(path, write)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Write a CSV table (a header row, then ``rows``) to ``path`` atomically; returns the path."""

    def write(fh: IO[str]) -> None:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)

    return _write_with(path, write)
