"""What the subcommands of ``latentgeo`` share: common options and the printed table."""

from __future__ import annotations

import argparse

__all__ = ["add_common_options", "format_table", "parse_classes"]


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
    """``"0,5,7"`` -> ``(0, 5, 7)``."""
    return tuple(int(c) for c in text.split(",") if c.strip())
