"""A paper experiment's run: its folder, its resumable parts, its clock, its summary.

:func:`start_run` opens the run folder and its resumable parts and starts
the clock; :meth:`StartedRun.finish` stamps the summary and writes it.
:func:`summary_head` is the first entries of every experiment's summary.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import torch

from latentgeo._atomic import write_json
from latentgeo.experiments.rundir import RunDir, RunExistsError

__all__ = [
    "NOT_A_RESULT",
    "Resumable",
    "StartedRun",
    "finish_run",
    "machine_load",
    "parts_folder",
    "start_run",
    "summary_head",
]

#: The first line of every quick run's report (and its ``summary.json`` ``"note"``).
NOT_A_RESULT = "QUICK SMOKE TEST (--quick): tiny settings, NOT A RESULT"


class Resumable:
    """The resumable parts of a run: JSON and model files in ``OUT.parts/``, read back on a rerun.

    They live next to the run folder ``OUT`` (:func:`parts_folder`), not in
    it: a :class:`~latentgeo.experiments.RunDir` builds ``OUT`` in a staging
    folder that an interrupted run loses, while the parts stay. They are kept
    after the run is complete (the trained models, for further analyses). The
    parts' ``settings.json`` is written first; a rerun reuses the files only if
    its settings are the same (else it refuses, unless ``force``, which
    recomputes everything).

    Raises:
        RunExistsError: the parts folder holds the parts of a run with other settings.
    """

    def __init__(self, run: RunDir, settings: Any, *, force: bool) -> None:
        self.run, self.path = run, parts_folder(run.path)
        self._settings = json.loads(json.dumps(asdict(settings)))
        found = self.read("settings.json")
        self.resuming = found is not None and not force
        if self.resuming and found != self._settings:
            raise RunExistsError(
                f"{self.path} holds the parts of a run with other settings; pass --force to "
                "start it again or choose another folder with --out"
            )
        if not self.resuming:
            self._clear()
        self._started = self.resuming

    def _clear(self) -> None:
        for sub in ("models", "tables"):
            for p in (self.path / sub).glob("*") if (self.path / sub).is_dir() else []:
                if p.suffix in (".json", ".pt"):
                    p.unlink()
        (self.path / "settings.json").unlink(missing_ok=True)

    def read(self, name: str) -> Any:
        """The JSON object in ``name``, or ``None`` if there is none."""
        p = self.path / name
        return json.loads(p.read_text()) if p.is_file() else None

    def file(self, name: str) -> Path:
        """The path of part ``name``, to write it (the folder and ``settings.json`` made first).

        Nothing is created before a run writes its first part, so a run that
        fails early (missing data, a bad value) leaves no folder behind.
        """
        if not self._started:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(self.path / "settings.json", self._settings)
            self._started = True
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        return self.path / name

    def write(self, name: str, obj: Any) -> None:
        """Write ``obj`` as JSON to part ``name`` (atomically)."""
        write_json(self.file(name), obj)


def parts_folder(out: Path) -> Path:
    """Where the resumable parts of the run in ``out`` live: ``out.parts`` beside it.

    Example:
        >>> parts_folder(Path("/runs/cv"))
        PosixPath('/runs/cv.parts')
    """
    return out.with_name(out.name + ".parts")


def machine_load() -> dict[str, Any]:
    """CPU count and the 1-minute load average now (``None`` where the OS has none)."""
    try:
        load: float | None = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "load_average_1min": load}


def finish_run(run: RunDir, summary: dict[str, Any], start: float, settings: Any) -> dict[str, Any]:
    """Add settings, timing and file list to ``summary`` and write ``summary.json``."""
    summary["settings"] = asdict(settings)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["environment"] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    summary["files"] = [p.name for p in run.written] + ["summary.json"]
    run.write_summary(summary)
    return summary


class StartedRun(NamedTuple):
    """A run begun by :func:`start_run`."""

    run: RunDir
    store: Resumable
    start: float
    load: dict[str, Any]

    def finish(self, summary: dict[str, Any], settings: Any) -> dict[str, Any]:
        """Stamp ``summary`` with the machine's load at start and end, then :func:`finish_run`."""
        summary["machine"] = {"start": self.load, "end": machine_load()}
        return finish_run(self.run, summary, self.start, settings)


def start_run(out: str | Path, settings: Any, *, force: bool) -> StartedRun:
    """Open the run folder ``out`` and its resumable parts; note the load, start the clock.

    Raises:
        RunExistsError: ``out`` is not a fresh or finished run folder (unless ``force``), or
            its parts belong to a run with other settings.
    """
    run = RunDir(out, force=force)
    start, load = time.perf_counter(), machine_load()
    return StartedRun(run, Resumable(run, settings, force=force), start, load)


def summary_head(experiment: str, s: Any) -> dict[str, Any]:
    """The entries every summary starts with: what ran, whether it is a result, budget, seed.

    Example:
        >>> from types import SimpleNamespace
        >>> summary_head("kmeans", SimpleNamespace(budget="quick", seed=3))["result"]
        False
    """
    quick = s.budget == "quick"
    return {
        "experiment": experiment,
        "result": not quick,
        "note": NOT_A_RESULT if quick else "",
        "budget": s.budget,
        "seed": s.seed,
    }
