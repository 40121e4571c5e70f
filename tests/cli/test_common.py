"""What the subcommands share: progress only on a terminal, logging to stderr, argument types."""

from __future__ import annotations

import argparse
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from latentgeo.cli import main
from latentgeo.cli.common import (
    Parser,
    UsageError,
    existing_file,
    logging_to_stderr,
    make_settings,
    output_folder,
    show_progress,
)
from latentgeo.exceptions import NumericsWarning
from latentgeo.experiments import DemoSettings, KMeansSettings


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("flags", "tty", "shown"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"quiet": True}, True, False),
        ({"progress": True}, False, True),
        ({"progress": True, "quiet": True}, False, True),
    ],
)
def test_progress_bars_only_on_a_terminal_or_when_asked(
    flags: dict[str, bool], tty: bool, shown: bool
) -> None:
    assert show_progress(argparse.Namespace(**flags), _Stream(tty)) is shown


def test_log_records_and_warnings_go_to_stderr_and_are_put_back() -> None:
    logger = logging.getLogger("latentgeo")
    handlers, level = list(logger.handlers), logger.level
    stream = io.StringIO()
    with logging_to_stderr(logging.INFO, stream) as log, warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.getLogger("latentgeo.experiments.rundir").info("run complete: x")
        logging.getLogger("latentgeo.experiments.rundir").debug("not shown")
        log.error("bad")
        warnings.warn(NumericsWarning("indefinite"), stacklevel=1)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["latentgeo: run complete: x", "latentgeo: error: bad"]
    assert lines[2].startswith("latentgeo: warning: ") and "NumericsWarning: indefinite" in lines[2]
    assert logger.handlers == handlers and logger.level == level
    quiet = io.StringIO()
    with logging_to_stderr(logging.WARNING, quiet):
        logging.getLogger("latentgeo.cli").info("hidden")
    assert quiet.getvalue() == ""


def test_parser_errors_are_two_lines(capsys: pytest.CaptureFixture[str]) -> None:
    p = Parser(prog="latentgeo thing")
    p.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as stop:
        p.parse_args(["--n", "x"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "latentgeo thing: error: argument --n: invalid int value: 'x'",
        "(see 'latentgeo thing --help')",
    ]


def test_settings_errors_name_the_option() -> None:
    with pytest.raises(UsageError, match=r"^argument --points: expected an integer >= 3"):
        make_settings(KMeansSettings, True, points=2)
    with pytest.raises(UsageError, match=r"^DemoSettings\.graph_points must be an integer >= 501"):
        make_settings(DemoSettings, False, graph_k=500)  # the field at fault was not given
    assert make_settings(KMeansSettings, True, points=5).points == 5


def test_path_types(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert output_folder(str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
    for bad, why in [(str(f), "is a file"), (f"{f}/run", "is a file"), ("", "empty")]:
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            output_folder(bad)
    assert existing_file(str(f)) == str(f)
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        existing_file(str(tmp_path / "missing"))
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder"):
        existing_file(str(tmp_path))
    if os.geteuid() != 0:  # root reads everything
        f.chmod(0)
        with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
            existing_file(str(f))


def _fake_run_demo(out: Any, settings: Any, *, force: bool, progress: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from latentgeo.experiments.rundir import RunDir

    run = RunDir(out, force=force)
    for _ in tqdm(range(3), desc="fake", disable=not progress):
        pass
    logging.getLogger("latentgeo.experiments.demo").info("a step")
    summary = {"models": {}, "seconds": 0.0, "files": [p.name for p in run.written]}
    run.write_summary(summary)
    return summary


@pytest.mark.parametrize(
    ("flags", "bars", "info"),
    [([], False, True), (["--progress"], True, True), (["--quiet"], False, False)],
)
def test_redirected_runs_write_no_carriage_returns(
    flags: list[str],
    bars: bool,
    info: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import latentgeo.experiments.demo as demo

    monkeypatch.setattr(demo, "run_demo", _fake_run_demo)
    assert main(["demo", "--out", str(tmp_path / "run"), *flags]) == 0
    out, err = capsys.readouterr()  # pytest's capture is not a terminal
    assert ("\r" in err) is bars and "\r" not in out
    assert ("latentgeo: a step" in err) is info
    assert "files in" in out  # the result goes to stdout, whatever the flags


def test_library_code_never_prints() -> None:
    """Only the command line prints (its results); the library logs or returns."""
    import ast

    package = Path(__file__).resolve().parents[2] / "latentgeo"
    printing = []
    for path in package.rglob("*.py"):
        if "cli" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{path.relative_to(package)}:{node.lineno}")
    assert printing == []


def test_output_options_before_or_after_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import latentgeo.experiments.demo as demo

    monkeypatch.setattr(demo, "run_demo", _fake_run_demo)
    assert main(["--quiet", "demo", "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().err == ""
    assert main(["demo", "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""
