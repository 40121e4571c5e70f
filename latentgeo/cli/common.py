"""What the subcommands of ``latentgeo`` share: common options and the printed table."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = [
    "UsageError",
    "add_common_options",
    "format_table",
    "nonnegative_int",
    "parse_classes",
    "positive_float",
    "positive_int",
]


class UsageError(Exception):
    """A user mistake on the command line: ``latentgeo`` prints the message and exits 2.

    Raise it from a command's adaptor for values argparse cannot check alone
    (a settings object refusing a combination, an unreadable path...).
    """


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
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _parse(text: str, kind: type, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def add_common_options(p: argparse.ArgumentParser, default_out: str) -> None:
    """``--out``, ``--quick``, ``--seed``, ``--force``, ``--quiet`` for a run-folder command."""
    p.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    p.add_argument("--quick", action="store_true", help="tiny settings: seconds, not minutes")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--force", action="store_true", help="overwrite a finished run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


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
