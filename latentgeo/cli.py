"""The ``latentgeo`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``latentgeo`` command."""
    parser = argparse.ArgumentParser(
        prog="latentgeo",
        description="Riemannian geometry of the latent spaces of deep generative models.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="the main job: geodesics of ensemble and RBF VAEs")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentgeo`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.version:
        from latentgeo import __version__

        print(__version__)
        return 0
    if args.command == "demo":
        print("latentgeo demo: not yet available (it lands with the main-job issue)")
        return 0
    build_parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
