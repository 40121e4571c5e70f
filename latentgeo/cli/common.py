"""What the subcommands of ``latentgeo`` share: options, argument types, errors, logging.

A user mistake ends the command with exit status 2 and one or two lines on
stderr (what was wrong, what is accepted), never a traceback (``--debug``
shows it): argparse's own errors (:class:`Parser`), :class:`UsageError` from
the adaptors, and the library's errors about the user's files and data
(:func:`user_errors`). Everything that is not the command's result goes
through :mod:`logging` to stderr (:func:`logging_to_stderr`); progress bars
only appear on a terminal or with ``--progress`` (:func:`show_progress`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "Parser",
    "UsageError",
    "add_command",
    "add_common_options",
    "add_output_options",
    "existing_file",
    "format_table",
    "logging_to_stderr",
    "make_settings",
    "nonnegative_int",
    "output_folder",
    "parse_classes",
    "positive_float",
    "positive_int",
    "show_progress",
    "user_errors",
]


class UsageError(Exception):
    """A user mistake on the command line: ``latentgeo`` prints the message and exits 2.

    Raise it from a command's adaptor for values argparse cannot check alone
    (a settings object refusing a combination, an unreadable path...).
    """


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are two lines: the mistake, then where help is."""

    def error(self, message: str) -> Any:  # argparse: NoReturn
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def add_command(sub: Any, name: str, *, help: str, description: str, epilog: str) -> Any:
    """Add the subcommand ``name`` to the subparsers ``sub`` and return its parser; every
    ``latentgeo`` command keeps its epilog's line breaks (its examples)."""
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a user mistake (exit 2, no traceback).

    Imported on call: the command's ``--help`` stays fast.
    """
    from latentgeo.data.real import DataNotFoundError
    from latentgeo.experiments.rundir import OutputFolderError, RunExistsError
    from latentgeo.models.checkpoints import CheckpointError

    return (
        UsageError,
        RunExistsError,
        OutputFolderError,
        CheckpointError,
        DataNotFoundError,
        PermissionError,
    )


def make_settings(cls: Any, quick: bool, **given: Any) -> Any:
    """``cls.quick(**given)`` or ``cls(**given)``; a refused value becomes a :class:`UsageError`.

    A settings class checks its fields in ``__post_init__`` and raises a
    ``ValueError`` (a ``SettingsError`` naming the field); a field given on
    the command line is reported as its option, ``--field-name``.
    """
    from latentgeo.experiments._checks import SettingsError

    try:
        return cls.quick(**given) if quick else cls(**given)
    except SettingsError as err:
        if err.field not in given:
            raise UsageError(str(err)) from err
        option = "--" + err.field.replace("_", "-")
        raise UsageError(f"argument {option}: expected {err.expected}, got {err.value!r}") from err
    except ValueError as err:
        raise UsageError(str(err)) from err


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _parse(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _parse(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _parse(text, float, "a number")
    if not (0.0 < value < math.inf):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def output_folder(text: str) -> str:
    """argparse type: a folder to write a run into (new, empty, or an earlier run).

    Refuses a path that is a file, or under a file, here rather than after
    the imports; :class:`~latentgeo.experiments.RunDir` checks the rest.
    """
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder, {text!r} is a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"expected a folder, {str(parent)!r} is a file")
            break
    return text


def existing_file(text: str) -> str:
    """argparse type: a file that exists and can be read."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"expected an existing file, {text!r} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"expected a file, {text!r} is a folder")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"expected a readable file, cannot read {text!r}")
    return text


def _parse(text: str, kind: type, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def add_common_options(p: argparse.ArgumentParser, default_out: str) -> None:
    """``--out``, ``--quick``, ``--seed``, ``--force`` and the output options of a run command."""
    p.add_argument(
        "--out",
        type=output_folder,
        default=default_out,
        help=f"output folder, written when the run is complete (default: {default_out})",
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny settings, for a first look and for tests"
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a finished run in --out (only once the new run is complete)",
    )
    add_output_options(p)


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--quiet``, ``--progress``, ``--debug``, accepted before or after the subcommand."""
    p.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings and errors on stderr, no progress bars",
    )
    p.add_argument(
        "--progress",
        action="store_true",
        default=argparse.SUPPRESS,
        help="progress bars even when stderr is not a terminal",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug messages, and the traceback of an error",
    )


def show_progress(args: argparse.Namespace, stream: TextIO | None = None) -> bool:
    """Progress bars: with ``--progress``, or on a terminal unless ``--quiet``."""
    if getattr(args, "progress", False):
        return True
    if getattr(args, "quiet", False):
        return False
    stream = sys.stderr if stream is None else stream
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"latentgeo: {text}"


@contextlib.contextmanager
def logging_to_stderr(level: int, stream: TextIO | None = None) -> Iterator[logging.Logger]:
    """Send latentgeo's log records (and Python warnings) to stderr during the block.

    Args:
        level: the least level shown (``logging.INFO``; ``WARNING`` with
            ``--quiet``, ``DEBUG`` with ``--debug``).
        stream: where to write (default: ``sys.stderr`` at call time).

    Yields:
        The ``latentgeo`` logger.
    """
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(_Formatter())
    loggers = [logging.getLogger("latentgeo"), logging.getLogger("py.warnings")]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    logging.captureWarnings(True)
    try:
        yield loggers[0]
    finally:
        logging.captureWarnings(False)
        for lg, old_level, old_propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(old_level)
            lg.propagate = old_propagate


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned columns, a rule under the first (header) row.

    Example:
        >>> print(format_table([["a", "bb"], ["ccc", "d"]]))
        a    bb
        ---  --
        ccc  d
    """
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def parse_classes(text: str) -> tuple[int, ...]:
    """argparse type: ``"0,5,7"`` -> ``(0, 5, 7)`` (digits 0-9, at least two, no repeats)."""
    try:
        classes = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated digits such as 0,5,7, got {text!r}"
        ) from None
    if (
        len(classes) < 2
        or len(set(classes)) != len(classes)
        or not all(0 <= c <= 9 for c in classes)
    ):
        raise argparse.ArgumentTypeError(
            f"expected at least two different digits 0-9 such as 0,5,7, got {text!r}"
        )
    return classes
