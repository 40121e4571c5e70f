"""``latentgeo demo``: the main job."""

from __future__ import annotations

import argparse
from typing import Any

from latentgeo.cli.common import (
    add_command,
    add_common_options,
    format_table,
    make_settings,
    show_progress,
)

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  latentgeo demo                      # full demo into runs/demo
  latentgeo demo --quick --out /tmp/d # tiny settings (seconds)
  latentgeo demo --seed 3 --force     # another seed, replacing a finished run
"""


def add_parser(sub: Any) -> None:
    """Add ``demo`` to the subcommands ``sub``."""
    demo = add_command(
        sub,
        "demo",
        help="the main job: geodesics of ensemble and RBF VAEs around the hole of a ring",
        description="Train an ensemble-decoder VAE and an RBF-precision VAE on ring data "
        "(2-d latents), compute geodesics and straight lines between codes on opposite "
        "sides of the ring, and write summary.json, distances.csv and one figure per model.",
        epilog=EPILOG,
    )
    add_common_options(demo, "runs/demo")
    demo.set_defaults(run=run)


def _print_summary(summary: dict[str, Any], out: str) -> None:
    rows = [
        [
            "model",
            "geodesic",
            "straight",
            "improvement",
            "off-data geo",
            "off-data line",
            "converged",
        ]
    ]
    for name, m in summary["models"].items():
        rows.append(
            [
                name,
                f"{m['mean_geodesic_length']:.3f}",
                f"{m['mean_straight_line_length']:.3f}",
                f"{100 * m['mean_relative_improvement']:.1f} %",
                f"{100 * m['off_data_fraction']['geodesic']:.1f} %",
                f"{100 * m['off_data_fraction']['straight_line']:.1f} %",
                f"{m['converged']}/{m['num_pairs']}",
            ]
        )
    print(format_table(rows))
    print(
        "means over "
        + ("all pairs" if summary.get("settings", {}).get("include_all") else "converged pairs")
    )
    for name, m in summary["models"].items():
        if m.get("warning"):
            print(f"{m['warning']} ({name})")
    print(f"\n{summary['seconds']:.0f} s; files in {out}/: {', '.join(summary['files'])}")


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed arguments; returns the exit code."""
    from latentgeo.experiments.demo import DemoSettings, run_demo

    settings = make_settings(DemoSettings, args.quick, seed=args.seed)
    summary = run_demo(args.out, settings, force=args.force, progress=show_progress(args))
    _print_summary(summary, args.out)
    return 0
