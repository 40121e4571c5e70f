"""The ``latentgeo`` command.

``latentgeo demo`` is the main job; ``latentgeo reproduce ...`` re-runs the
seed papers' experiments. Every command builds its output folder next to the
destination and moves it into place only when the run is complete (so an
interrupted run, even with ``--force``, leaves an earlier result intact),
prints its result on stdout, logs everything else on stderr (``--quiet``:
warnings and errors only; progress bars only on a terminal or with
``--progress``), and ends a user mistake with exit status 2 and a line or
two saying what was wrong and what is accepted (``--debug`` shows the
traceback).

Each subcommand is a module of this package with ``add_parser(subparsers)``,
which registers its parser and sets ``run`` (a function of the parsed
arguments returning the exit code).
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from latentgeo.cli import demo, distances, reproduce
from latentgeo.cli.common import (
    Parser,
    UsageError,
    add_output_options,
    logging_to_stderr,
    user_errors,
)

__all__ = ["UsageError", "build_parser", "main"]

log = logging.getLogger("latentgeo.cli")


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM (``kill PID``): unwound like Ctrl-C, so runs clean up."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``latentgeo`` command."""
    parser = Parser(
        prog="latentgeo",
        description="Riemannian geometry of the latent spaces of deep generative models.",
        epilog="examples:\n  latentgeo demo\n  latentgeo demo --quick\n"
        "  latentgeo reproduce ensembles-cv --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    add_output_options(parser)
    parser.set_defaults(print_help=parser.print_help, run=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (demo, reproduce, distances):
        command.add_parser(sub)
    return parser


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentgeo`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, already printed)
        return stop.code if isinstance(stop.code, int) else 2
    for flag in ("quiet", "progress", "debug"):
        setattr(args, flag, getattr(args, flag, False))
    if args.version:
        from latentgeo._version import __version__

        print(__version__)
        return 0
    if args.run is None:
        args.print_help()
        return 0
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    from latentgeo.experiments.rundir import command_line

    with logging_to_stderr(level), _sigterm_unwinds(), command_line(["latentgeo", *argv]):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except user_errors() as err:
        log.error("%s", err, exc_info=args.debug)
        return 2
    except KeyboardInterrupt as err:
        gc.collect()  # run folders being built are removed as they are freed
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        log.error("%s; output folders were left as they were before this run", what)
        return 143 if isinstance(err, Terminated) else 130
