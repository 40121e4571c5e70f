"""``latentgeo reproduce ...``: the seed papers' experiments (one module each in
:mod:`latentgeo.experiments`), with their argument parsers and adaptors."""

from __future__ import annotations

import argparse
from typing import Any

from latentgeo.cli.common import (
    add_common_options,
    make_settings,
    parse_classes,
    positive_float,
    positive_int,
    show_progress,
)

__all__ = ["add_parser", "run"]

EPILOG = """\
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


def add_parser(sub: Any) -> None:
    """Add ``reproduce`` and its experiments to the subcommands ``sub``."""
    rep = sub.add_parser(
        "reproduce",
        help="re-run a seed paper's experiment",
        description="Re-run the experiments of the seed papers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.set_defaults(print_help=rep.print_help, run=None)
    rsub = rep.add_subparsers(dest="experiment")
    _add_ensembles_cv(rsub)
    _add_relative_improvement(rsub)
    _add_kmeans(rsub)


def _add_ensembles_cv(rsub: Any) -> None:
    cv = rsub.add_parser(
        "ensembles-cv",
        help="Syrota et al.: CV of geodesic distances over retrainings, ensemble vs RBF",
        description="Coefficient of variation of geodesic distances over retrainings.",
        epilog=CV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(cv, "runs/ensembles-cv")
    cv.add_argument(
        "--data",
        choices=["digits", "mnist"],
        default="digits",
        help="digits: scikit-learn's 8x8 digits (offline); mnist: local MNIST files",
    )
    cv.add_argument(
        "--classes", type=parse_classes, default=(0, 5, 7), help="digit classes (default: 0,5,7)"
    )
    cv.add_argument(
        "--repeats", type=positive_int, default=None, help="retrainings per model (30 in the paper)"
    )
    cv.add_argument("--pairs", type=positive_int, default=None, help="test pairs")
    cv.set_defaults(run=lambda args: _report(ensembles_cv_from_args(args), args))


def _add_relative_improvement(rsub: Any) -> None:
    ri = rsub.add_parser(
        "relative-improvement",
        help="Michelis et al.: Monte-Carlo relative improvement of geodesics over lines",
        description="Algorithm 1 of Michelis et al. on a trained VAE.",
        epilog=RI_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(ri, "runs/relative-improvement")
    ri.add_argument(
        "--pairs", type=positive_int, default=None, help="Monte-Carlo pairs (50 in the paper)"
    )
    ri.add_argument(
        "--latent-dim", type=positive_int, default=None, help="latent dimension (paper: 16)"
    )
    ri.add_argument("--step", type=positive_float, default=1.0, help="step length (default: 1.0)")
    ri.set_defaults(run=lambda args: _report(relative_improvement_from_args(args), args))


def _add_kmeans(rsub: Any) -> None:
    km = rsub.add_parser(
        "kmeans",
        help="Arvanitidis et al.: geodesic vs Euclidean k-means on digit triples",
        description="Geodesic vs Euclidean k-means, F-measure.",
        epilog=KMEANS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(km, "runs/kmeans")
    km.add_argument("--subsets", type=positive_int, default=None, help="subsets per digit triple")
    km.add_argument("--points", type=positive_int, default=None, help="points per subset")
    km.set_defaults(run=lambda args: _report(kmeans_from_args(args), args))


def _report(summary: dict[str, Any], args: argparse.Namespace) -> int:
    for line in summary.get("report", []):
        print(line)
    print(f"\n{summary['seconds']:.0f} s; files in {args.out}/: {', '.join(summary['files'])}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen experiment with parsed arguments; returns the exit code."""
    return int(args.run(args))


def ensembles_cv_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce ensembles-cv`` with parsed arguments."""
    kw: dict[str, Any] = dict(data=args.data, classes=tuple(args.classes), seed=args.seed)
    if args.repeats is not None:
        kw["repeats"] = args.repeats
    if args.pairs is not None:
        kw["pairs"] = args.pairs
    from latentgeo.experiments.ensembles_cv import CVSettings, run_ensembles_cv

    s = make_settings(CVSettings, args.quick, **kw)
    return run_ensembles_cv(args.out, s, force=args.force, progress=show_progress(args))


def relative_improvement_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce relative-improvement`` with parsed arguments."""
    kw: dict[str, Any] = dict(step=args.step, seed=args.seed)
    if args.pairs is not None:
        kw["pairs"] = args.pairs
    if args.latent_dim is not None:
        kw["latent_dim"] = args.latent_dim
    from latentgeo.experiments.relative_improvement import RISettings, run_relative_improvement

    s = make_settings(RISettings, args.quick, **kw)
    return run_relative_improvement(args.out, s, force=args.force, progress=show_progress(args))


def kmeans_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce kmeans`` with parsed arguments."""
    kw: dict[str, Any] = dict(seed=args.seed)
    if args.subsets is not None:
        kw["subsets"] = args.subsets
    if args.points is not None:
        kw["points"] = args.points
    from latentgeo.experiments.kmeans import KMeansSettings, run_kmeans

    s = make_settings(KMeansSettings, args.quick, **kw)
    return run_kmeans(args.out, s, force=args.force, progress=show_progress(args))
