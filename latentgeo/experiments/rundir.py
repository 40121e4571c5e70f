"""Output folders of the ``latentgeo`` commands: a run appears whole or not at all.

A :class:`RunDir` builds the run in a hidden sibling staging folder,
``.NAME.incomplete-PID-XXXXXXXX``, and moves it onto ``NAME`` only when it is
complete (:meth:`RunDir.write_summary`, the last step of every experiment,
does it). So:

* an interrupted run (an exception, Ctrl-C, ``kill``) never leaves a folder
  that looks finished, and the previous result in ``NAME`` stays intact even
  under ``force=True``: the old run is replaced only at that last moment;
* the staging folder is removed when the run fails in this process; one left
  behind by a killed process (``kill -9``, a power cut) is removed by the
  next run into the same folder.

A finished run holds ``summary.json`` (the results) and ``run.json`` (how it
was made: command line, latentgeo version, seed, start and end times,
``"completed": true``). Starting a run where a finished one exists raises
:class:`RunExistsError` unless ``force=True``. A folder that holds something
else than a latentgeo run is never replaced (:class:`OutputFolderError`).
Every file is written atomically (:mod:`latentgeo._atomic`) with the modes
the umask gives (``0644`` files, ``0755`` folders under ``022``).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import logging
import os
import platform
import secrets
import shutil
import sys
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from latentgeo._atomic import write_csv, write_json
from latentgeo.exceptions import LatentgeoError
from latentgeo.viz import save_figure

__all__ = ["RUN_RECORD", "SUMMARY", "OutputFolderError", "RunDir", "RunExistsError", "command_line"]

SUMMARY = "summary.json"
RUN_RECORD = "run.json"
_STAGING, _REPLACED = "incomplete", "replaced"

log = logging.getLogger(__name__)

_COMMAND: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "latentgeo_command_line", default=None
)


class RunExistsError(LatentgeoError, FileExistsError):
    """The output folder holds a finished run and ``force`` was not given."""


class OutputFolderError(LatentgeoError, ValueError):
    """The output folder cannot hold a run: it is a file, not writable, or holds other files."""


@contextlib.contextmanager
def command_line(argv: Sequence[str]) -> Iterator[None]:
    """Record ``argv`` as the command line in the ``run.json`` of runs started in the block.

    The ``latentgeo`` command uses it; without it, ``sys.argv`` is recorded.
    """
    token = _COMMAND.set(tuple(argv))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def recorded_command() -> tuple[str, ...] | None:
    """The command line recorded by :func:`command_line` for this block (``None`` outside)."""
    return _COMMAND.get()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_run(folder: Path) -> bool:
    return (folder / SUMMARY).is_file() or (folder / RUN_RECORD).is_file()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still run (``True`` when it cannot be known)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's live process
        return True
    return True


def _discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class RunDir:
    """An output folder for one run, committed whole when the run is complete.

    Args:
        path: the folder (its parents are created). It may not exist yet, be
            empty, or hold an earlier latentgeo run. :attr:`path` is its
            absolute form (a symbolic link's target).
        force: replace a finished run (at commit time only).
        seed: the run's seed, for ``run.json`` (default: read from the
            summary's ``"seed"`` or ``"settings"``).

    Raises:
        RunExistsError: ``path`` holds a finished run and ``force`` is false.
        OutputFolderError: ``path`` is a file, cannot be created or written,
            or is a non-empty folder that is not a latentgeo run.

    Files written before the commit live in :attr:`staging`; :attr:`written`
    lists them under their final names in :attr:`path`. Used as a context
    manager (``with RunDir(out) as run: ...``), a block that ends without a
    commit removes the staging folder at once; otherwise that happens when
    the object is freed or the process exits.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
        >>> run = RunDir(out)
        >>> _ = run.write_csv("table.csv", ["a"], [[1]])
        >>> out.exists()                        # nothing visible until the run is complete
        False
        >>> _ = run.write_summary({"ok": True})  # writes summary.json, run.json, then commits
        >>> sorted(p.name for p in out.iterdir())
        ['run.json', 'summary.json', 'table.csv']
        >>> RunDir(out)
        Traceback (most recent call last):
        ...
        latentgeo.experiments.rundir.RunExistsError: ...
    """

    def __init__(
        self, path: str | os.PathLike[str], *, force: bool = False, seed: int | None = None
    ) -> None:
        target = Path(os.path.abspath(path))  # "." and "runs/.." have names to rename
        self.path = target.resolve() if target.is_symlink() else target
        self.force = force
        self.seed = seed
        self.committed = False
        self._start = time.monotonic()
        self._names: list[str] = []
        self._prepare_parent()
        self._recover_leftovers()
        self._check_target()
        self.staging = self._make_staging()
        self._cleanup = weakref.finalize(self, _discard, self.staging)
        self._record: dict[str, Any] = {
            "command": list(_COMMAND.get() or sys.argv),
            "latentgeo_version": _version(),
            "seed": seed,
            "started": _now(),
            "finished": None,
            "seconds": None,
            "completed": False,
            "pid": os.getpid(),
            "python": platform.python_version(),
        }
        self.write_json(RUN_RECORD, self._record)
        log.debug("building the run in %s", self.staging)

    # ------------------------------------------------------------------ set-up
    def _prepare_parent(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise OutputFolderError(f"{p} is a file; the output must be a folder (new or a run)")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise OutputFolderError(f"cannot create {p}: a parent is a file ({err})") from err
        except PermissionError as err:
            raise OutputFolderError(f"cannot create {p}: permission denied ({err})") from err

    def _check_target(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise OutputFolderError(f"{p} is a file; the output must be a folder (new or a run)")
        if not p.is_dir():
            return
        if _is_run(p):
            if not self.force:
                raise RunExistsError(
                    f"{p} holds a finished run ({SUMMARY} exists); pass --force to "
                    "replace it or choose another folder with --out"
                )
        elif any(p.iterdir()):
            raise OutputFolderError(
                f"{p} is a non-empty folder that is not a latentgeo run (no {SUMMARY}); "
                "it is never replaced: choose a new or empty folder"
            )

    def _siblings(self, kind: str) -> list[tuple[Path, int]]:
        prefix = f".{self.path.name}.{kind}-"
        found = []
        for entry in self.path.parent.iterdir():
            pid = entry.name.removeprefix(prefix).split("-")[0]
            if entry.name.startswith(prefix) and pid.isdigit() and entry.is_dir():
                found.append((entry, int(pid)))
        return found

    def _recover_leftovers(self) -> None:
        """Undo what a killed process left: its staging folder, or a half-done swap."""
        for old, pid in self._siblings(_REPLACED):
            if _pid_alive(pid):
                continue
            if self.path.exists():
                _discard(old)
            else:  # killed between moving the old run away and moving the new one in
                os.replace(old, self.path)
                log.warning("restored the earlier run in %s (a commit was interrupted)", self.path)
        for staging, pid in self._siblings(_STAGING):
            if not _pid_alive(pid):
                log.info("removing %s, left by an interrupted run", staging)
                _discard(staging)

    def _make_staging(self) -> Path:
        for _ in range(100):
            name = f".{self.path.name}.{_STAGING}-{os.getpid()}-{secrets.token_hex(4)}"
            staging = self.path.parent / name
            try:
                staging.mkdir()  # mode 0o777 less the umask
            except FileExistsError:
                continue
            except PermissionError as err:
                raise OutputFolderError(
                    f"cannot write into {self.path.parent}: permission denied"
                ) from err
            return staging
        raise OutputFolderError(f"no free staging folder name next to {self.path}")

    # ---------------------------------------------------------------- writing
    def _add(self, name: str) -> Path:
        if self.committed or not self._cleanup.alive:
            raise RuntimeError(f"the run in {self.path} is already committed or discarded")
        if name not in self._names:
            self._names.append(name)
        return self.staging / name

    @property
    def written(self) -> list[Path]:
        """The files written so far, under their final paths (inside :attr:`path`)."""
        return [self.path / n for n in self._names]

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as JSON into the run; returns where it is now."""
        return write_json(self._add(name), obj)

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        """Write a CSV table into the run; returns where it is now."""
        return write_csv(self._add(name), header, rows)

    def save_figure(self, name: str, fig: Figure, *, dpi: int = 120) -> Path:
        """Save a figure into the run; returns where it is now."""
        return save_figure(fig, self._add(name), dpi=dpi)

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Write ``summary.json`` and commit the run (call it last).

        Returns:
            ``path / "summary.json"``.
        """
        self.write_json(SUMMARY, summary)
        self.commit(summary)
        return self.path / SUMMARY

    # ------------------------------------------------------- commit / discard
    def commit(self, summary: dict[str, Any] | None = None) -> Path:
        """Finish ``run.json`` and move the run onto :attr:`path`, replacing an earlier run.

        Raises:
            RunExistsError: a finished run appeared in :attr:`path` meanwhile
                and ``force`` is false (the new run is discarded).
        """
        seed = self.seed if self.seed is not None else _seed_of(summary or {})
        seconds = round(time.monotonic() - self._start, 2)
        self._record.update(seed=seed, finished=_now(), seconds=seconds, completed=True)
        self.write_json(RUN_RECORD, self._record)
        try:
            self._check_target()
        except (RunExistsError, OutputFolderError):
            self.discard()
            raise
        old = None
        if self.path.exists():
            token = self.staging.name.rsplit("-", 1)[-1]
            old = self.path.parent / f".{self.path.name}.{_REPLACED}-{os.getpid()}-{token}"
            os.replace(self.path, old)
        try:
            os.replace(self.staging, self.path)
        except OSError:
            if old is not None:
                os.replace(old, self.path)
            raise
        self.committed = True
        self._cleanup.detach()
        if old is not None:
            _discard(old)
        log.info("run complete: %s", self.path)
        return self.path

    def discard(self) -> None:
        """Remove the staging folder (the run is abandoned; :attr:`path` is untouched)."""
        self._cleanup()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()


def _seed_of(summary: dict[str, Any]) -> Any:
    if "seed" in summary:
        return summary["seed"]
    settings = summary.get("settings")
    return settings.get("seed") if isinstance(settings, dict) else None


def _version() -> str:
    from latentgeo._version import __version__

    return __version__
