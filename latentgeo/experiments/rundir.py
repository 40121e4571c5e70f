"""Output folders of the ``latentgeo`` commands: atomic files, no silent overwrites.

A run is *finished* when its ``summary.json`` exists: it is written last.
Starting a run in a folder with a finished run raises :class:`RunExistsError`
unless ``force=True``; an unfinished run (a crash, Ctrl-C) is simply redone.
Every file goes through :mod:`latentgeo._atomic`, so a failed run never
leaves a half-written file or destroys an earlier one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from latentgeo._atomic import write_csv, write_json
from latentgeo.viz import save_figure

__all__ = ["SUMMARY", "RunDir", "RunExistsError"]

SUMMARY = "summary.json"


class RunExistsError(FileExistsError):
    """The output folder holds a finished run and ``force`` was not given."""


class RunDir:
    """An output folder for one run.

    Args:
        path: the folder (created if needed).
        force: allow replacing a finished run's files.

    Raises:
        RunExistsError: ``path`` holds a finished run and ``force`` is false.

    Example:
        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> _ = run.write_summary({"ok": True})
        >>> RunDir(run.path)
        Traceback (most recent call last):
        ...
        latentgeo.experiments.rundir.RunExistsError: ...
    """

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} exists and is not a folder")
        if (self.path / SUMMARY).exists() and not force:
            raise RunExistsError(
                f"{self.path} holds a finished run ({SUMMARY} exists); pass --force to "
                "overwrite it or choose another folder with --out"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def _record(self, p: Path) -> Path:
        self.written.append(p)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as JSON into the folder."""
        return self._record(write_json(self.path / name, obj))

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        """Write a CSV table into the folder."""
        return self._record(write_csv(self.path / name, header, rows))

    def save_figure(self, name: str, fig: Figure, *, dpi: int = 120) -> Path:
        """Save a figure into the folder."""
        return self._record(save_figure(fig, self.path / name, dpi=dpi))

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Write ``summary.json``, which marks the run as finished (call it last)."""
        return self.write_json(SUMMARY, summary)
