"""The ``latentgeo`` command.

``latentgeo demo`` is the main job; ``latentgeo reproduce ...`` re-runs the
seed papers' experiments. Every command writes its results atomically into
an output folder, refuses to overwrite a finished run without ``--force``,
shows progress on stderr (``--quiet`` silences it) and prints a short table
and where the files are.

Each subcommand is a module of this package with ``add_parser(subparsers)``,
which registers its parser and sets ``run`` (a function of the parsed
arguments returning the exit code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from latentgeo.cli import demo, distances, reproduce
from latentgeo.cli.common import UsageError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``latentgeo`` command."""
    parser = argparse.ArgumentParser(
        prog="latentgeo",
        description="Riemannian geometry of the latent spaces of deep generative models.",
        epilog="examples:\n  latentgeo demo\n  latentgeo demo --quick\n"
        "  latentgeo reproduce ensembles-cv --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.set_defaults(print_help=parser.print_help, run=None)
    sub = parser.add_subparsers(dest="command")
    for command in (demo, reproduce, distances):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentgeo`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from latentgeo._version import __version__

        print(__version__)
        return 0
    if args.run is None:
        args.print_help()
        return 0
    from latentgeo.experiments.rundir import RunExistsError

    try:
        return int(args.run(args))
    except (RunExistsError, UsageError) as err:
        print(f"latentgeo: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentgeo: interrupted; finished files are intact", file=sys.stderr)
        return 130
