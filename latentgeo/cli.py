"""The ``latentgeo`` command.

``latentgeo demo`` is the main job; ``latentgeo reproduce ...`` re-runs the
seed papers' experiments. Every command writes its results atomically into
an output folder, refuses to overwrite a finished run without ``--force``,
shows progress on stderr (``--quiet`` silences it) and prints a short table
and where the files are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["build_parser", "main"]

DEMO_EPILOG = """\
examples:
  latentgeo demo                      # full demo into runs/demo (about 3 minutes)
  latentgeo demo --quick --out /tmp/d # tiny settings (seconds)
  latentgeo demo --seed 3 --force     # another seed, replacing a finished run
"""

REPRODUCE_EPILOG = """\
examples:
  latentgeo reproduce ensembles-cv --quick
  latentgeo reproduce ensembles-cv --data digits --repeats 30
  latentgeo reproduce relative-improvement --quick
  latentgeo reproduce kmeans --quick
"""

CV_EPILOG = """\
Syrota et al. (2024): retrain an ensemble-decoder VAE and an RBF-precision VAE
N times (d = 2), measure the geodesic distances of fixed test pairs under every
retraining, and compare the per-pair coefficients of variation with a paired
one-sided t-test. The paper: t ≈ −16 on MNIST, ensemble CVs ≈ 0.05–0.1, RBF ≈ 0.1–0.5.

examples:
  latentgeo reproduce ensembles-cv --quick
  latentgeo reproduce ensembles-cv --repeats 10 --pairs 30 --out runs/cv
  latentgeo reproduce ensembles-cv --data mnist   # needs MNIST files on disk
"""

RI_EPILOG = """\
Michelis et al. (2021), Algorithm 1: z0 ~ N(0, I), step along the top
eigenvector of G(z0) towards the origin, and compare the geodesic with the
straight line. Their code on its MNIST VAE (d = 16): 3.6 % ± 0.1 %, every pair > 0.

examples:
  latentgeo reproduce relative-improvement --quick
  latentgeo reproduce relative-improvement --pairs 100 --latent-dim 16
"""

KMEANS_EPILOG = """\
Arvanitidis et al. (2018): k-means with geodesic vs Euclidean distances on
digit triples, scored by the F-measure (MNIST: 94 / 90 / 81 % vs 78 / 78 / 65 %).

examples:
  latentgeo reproduce kmeans --quick
  latentgeo reproduce kmeans --subsets 10 --points 150
"""


def _add_common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    p.add_argument("--quick", action="store_true", help="tiny settings: seconds, not minutes")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--force", action="store_true", help="overwrite a finished run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


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
    parser.set_defaults(print_help=parser.print_help)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser(
        "demo",
        help="the main job: geodesics of ensemble and RBF VAEs around the hole of a ring",
        description="Train an ensemble-decoder VAE and an RBF-precision VAE on ring data "
        "(2-d latents), compute geodesics and straight lines between codes on opposite "
        "sides of the ring, and write summary.json, distances.csv and one figure per model.",
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(demo, "runs/demo")

    rep = sub.add_parser(
        "reproduce",
        help="re-run a seed paper's experiment",
        description="Re-run the experiments of the seed papers.",
        epilog=REPRODUCE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.set_defaults(print_help=rep.print_help)
    rsub = rep.add_subparsers(dest="experiment")
    cv = rsub.add_parser(
        "ensembles-cv",
        help="Syrota et al.: CV of geodesic distances over retrainings, ensemble vs RBF",
        description="Coefficient of variation of geodesic distances over retrainings.",
        epilog=CV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(cv, "runs/ensembles-cv")
    cv.add_argument(
        "--data",
        choices=["digits", "mnist"],
        default="digits",
        help="digits: scikit-learn's 8x8 digits (offline); mnist: local MNIST files",
    )
    cv.add_argument("--classes", default="0,5,7", help="digit classes (default: 0,5,7)")
    cv.add_argument(
        "--repeats", type=int, default=None, help="retrainings per model (30 in the paper)"
    )
    cv.add_argument("--pairs", type=int, default=None, help="test pairs")
    ri = rsub.add_parser(
        "relative-improvement",
        help="Michelis et al.: Monte-Carlo relative improvement of geodesics over lines",
        description="Algorithm 1 of Michelis et al. on a trained VAE.",
        epilog=RI_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(ri, "runs/relative-improvement")
    ri.add_argument("--pairs", type=int, default=None, help="Monte-Carlo pairs (50 in the paper)")
    ri.add_argument("--latent-dim", type=int, default=None, help="latent dimension (paper: 16)")
    ri.add_argument("--step", type=float, default=1.0, help="step length (default: 1.0)")
    km = rsub.add_parser(
        "kmeans",
        help="Arvanitidis et al.: geodesic vs Euclidean k-means on digit triples",
        description="Geodesic vs Euclidean k-means, F-measure.",
        epilog=KMEANS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(km, "runs/kmeans")
    km.add_argument("--subsets", type=int, default=None, help="subsets per digit triple")
    km.add_argument("--points", type=int, default=None, help="points per subset")
    return parser


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_demo(summary: dict[str, Any], out: str) -> None:
    rows = [["model", "geodesic", "straight", "improvement", "off-data geo", "off-data line"]]
    for name, m in summary["models"].items():
        rows.append(
            [
                name,
                f"{m['mean_geodesic_length']:.3f}",
                f"{m['mean_straight_line_length']:.3f}",
                f"{100 * m['mean_relative_improvement']:.1f} %",
                f"{100 * m['off_data_fraction']['geodesic']:.1f} %",
                f"{100 * m['off_data_fraction']['straight_line']:.1f} %",
            ]
        )
    print(_table(rows))
    print(f"\n{summary['seconds']:.0f} s; files in {out}/: {', '.join(summary['files'])}")


def _run_demo(args: argparse.Namespace) -> int:
    from latentgeo.experiments.demo import DemoSettings, run_demo

    settings = DemoSettings.quick(args.seed) if args.quick else DemoSettings(seed=args.seed)
    summary = run_demo(args.out, settings, force=args.force, progress=not args.quiet)
    _print_demo(summary, args.out)
    return 0


def _run_reproduce(args: argparse.Namespace) -> int:
    from latentgeo.experiments import reproduce

    runners: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "ensembles-cv": reproduce.ensembles_cv_from_args,
        "relative-improvement": reproduce.relative_improvement_from_args,
        "kmeans": reproduce.kmeans_from_args,
    }
    summary = runners[args.experiment](args)
    for line in summary.get("report", []):
        print(line)
    print(f"\n{summary['seconds']:.0f} s; files in {args.out}/: {', '.join(summary['files'])}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentgeo`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from latentgeo import __version__

        print(__version__)
        return 0
    if args.command is None or (args.command == "reproduce" and args.experiment is None):
        args.print_help()
        return 0
    from latentgeo.experiments.rundir import RunExistsError

    try:
        if args.command == "demo":
            return _run_demo(args)
        return _run_reproduce(args)
    except RunExistsError as err:
        print(f"latentgeo: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentgeo: interrupted; finished files are intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
