"""Syrota et al. (2024): CV of geodesic distances over retrainings, ensemble vs RBF VAEs.

``latentgeo reproduce ensembles-cv`` runs :func:`run_ensembles_cv`.

The recipe (their code, ``mustass/ensertainty``): dense ReLU encoder
784-512-256-128-64 and mirrored decoders, d = 2, a 10-member decoder
ensemble trained with mini-batches partitioned across the members, loss
``‖x − μ‖² + 0.05 KL``, Adam with early stopping on the fixed 90/10 split;
the RBF baseline is the same VAE with one decoder and an RBF precision
(10 k-means centres on *sampled* codes, ζ = 0.1, squared-distance bandwidths).
Every curve is the paper's 10-piece cubic spline (9 interior knots) starting
from the straight line.
Fixed test pairs (seed 37: half uniformly random, half cross-class), end
points sampled from ``q(z | x)`` under each retraining. The ensemble's
distance is the decorrelated estimator (one member drawn independently per
curve point, ``estimator="sampled"``) on the curve that minimises the same
decorrelated energy (Adam from the straight line); the mean-metric distance
(L-BFGS geodesic of the mean of the members' pull-backs) is reported beside
it. The RBF distance is the geodesic length of the expected metric. Per
pair: CV over retrainings; then ``scipy.stats.ttest_rel`` one-sided.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentgeo.analysis import compare_retrainings
from latentgeo.curves import CubicSpline, Curve, curve_length
from latentgeo.experiments._checks import check_choice, check_digits, check_int
from latentgeo.experiments.common import (
    BudgetedSettings,
    Recipe,
    Resumable,
    Splits,
    load_splits,
    train_or_load,
)
from latentgeo.experiments.ensembles_cv_report import summarise, write_figure, write_tables
from latentgeo.experiments.runs import start_run
from latentgeo.metrics import Metric, as_metric
from latentgeo.models import VAE
from latentgeo.solvers import connecting_geodesic

__all__ = ["DATA", "PAPER", "CVSettings", "pick_test_pairs", "run_ensembles_cv"]

#: ``--data`` names: the data set and its classes (``digits``: scikit-learn's 8×8
#: stand-in, offline, for tests).
DATA: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "mnist3": ("mnist", (0, 5, 7)),
    "mnist": ("mnist", None),
    "digits": ("digits", (0, 5, 7)),
}

#: Table 1 of the paper (one-sided paired t-test, ensemble − RBF).
PAPER = {"t": -16.834, "dataset": "MNIST-3, d = 2, 30 retrainings, 100 pairs"}

#: The decoder-ensembling code's training recipe.
PAPER_RECIPE = Recipe(
    hidden=(64, 128, 256, 512),
    activation="relu",
    output_activation="identity",
    beta=0.05,
    obs_std=2**-0.5,
    lr=5e-5,
    batch_size=130,
    max_epochs=500,
    patience=15,
    eval_every=3,
    grad_clip=0.01,
)

#: The ``cpu`` budget's recipe: 45 minutes on 2 cores, a larger learning rate on a
#: third of MNIST-3; training still early-stops on the val split.
CPU_RECIPE = replace(
    PAPER_RECIPE,
    lr=3e-3,
    max_epochs=60,
    patience=3,
    min_delta=0.2,
    eval_every=1,
    grad_clip=None,
    max_fit=6000,
)

_BUDGETS: dict[str, dict[str, Any]] = {
    "paper": dict(
        repeats=30,
        pairs=100,
        recipe=PAPER_RECIPE,
        energy_points=256,
        length_points=4096,
        max_iter=4096,
        lbfgs_iter=500,
    ),
    # fewer retrainings and pairs than the paper, shorter curves
    "cpu": {},  # the defaults
    "quick": dict(
        repeats=2,
        pairs=4,
        members=4,
        recipe=CPU_RECIPE.smoke(
            hidden=(32, 64), max_epochs=2, min_delta=0.0, max_fit=800, centres=4
        ),
        energy_points=32,
        length_points=128,
        max_iter=20,
        lbfgs_iter=10,
        include_all=True,  # a smoke test exercises the test on whatever came out
    ),
}


@dataclass(frozen=True)
class CVSettings(BudgetedSettings):
    """Settings of :func:`run_ensembles_cv`; :meth:`for_budget` gives the three budgets."""

    budgets: ClassVar[dict[str, dict[str, Any]]] = _BUDGETS

    data: str = "mnist3"
    classes: tuple[int, ...] | None = None
    repeats: int = 5
    pairs: int = 30
    latent_dim: int = 2
    members: int = 10
    recipe: Recipe = CPU_RECIPE
    endpoints: str = "sample"
    knots: int = 9
    energy_points: int = 64
    length_points: int = 1024
    max_iter: int = 800
    geo_lr: float = 0.01
    geo_patience: int = 100
    geo_tol: float = 1e-4
    lbfgs_iter: int = 300
    pair_seed: int = 37

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "data", tuple(DATA))
        if self.classes is not None:
            check_digits(self, "classes")
        check_int(self, "repeats", 2, " (a coefficient of variation needs two retrainings)")
        check_int(self, "pairs", 2, " (the paired t-test needs two pairs)")
        for name in ("latent_dim", "members", "knots", "max_iter", "lbfgs_iter", "geo_patience"):
            check_int(self, name, 1)
        for name in ("energy_points", "length_points"):
            check_int(self, name, 2, " (a polyline needs two points)")
        check_choice(self, "endpoints", ("sample", "mean"))


def _data(s: CVSettings) -> tuple[str, tuple[int, ...] | None]:
    """The data set and classes of ``s`` (``classes`` overrides the name's)."""
    data, classes = DATA[s.data]
    return data, s.classes if s.classes is not None else classes


def pick_test_pairs(labels: Tensor, num_pairs: int, *, seed: int = 37) -> tuple[Tensor, Tensor]:
    """Test pairs as the decoder-ensembling code picks them: half random, half cross-class.

    ``ceil(P/2)`` pairs of indices drawn uniformly (a point is never paired with
    itself), then ``floor(P/2)`` pairs of a random permutation whose two
    labels differ. Fixed by ``seed``, so every retraining sees the same pairs.

    Returns:
        Index tensors ``(a, b)``, each ``(P,)``.

    Example:
        >>> a, b = pick_test_pairs(torch.tensor([0, 0, 1, 1, 2, 2]), 4)
        >>> bool((a != b).all()), a.shape
        (True, torch.Size([4]))
    """
    n = labels.numel()
    if n < 2:
        raise ValueError(f"need at least 2 test points, got {n}")
    gen = torch.Generator().manual_seed(seed)
    n_rand, n_cross = num_pairs - num_pairs // 2, num_pairs // 2
    a = torch.randint(n, (n_rand,), generator=gen)
    b = (a + torch.randint(1, n, (n_rand,), generator=gen)) % n
    perm = torch.randperm(n - n % 2, generator=gen).view(-1, 2)
    cross = perm[labels[perm[:, 0]] != labels[perm[:, 1]]][:n_cross]
    if cross.shape[0] < n_cross:
        raise ValueError(f"only {cross.shape[0]} cross-class pairs available, {n_cross} asked")
    return torch.cat([a, cross[:, 0]]), torch.cat([b, cross[:, 1]])


def _endpoints(vae: VAE, x: Tensor, how: str, seed: int) -> Tensor:
    with torch.no_grad():
        q = vae.encode(x)
        if how == "mean":
            return q.mean
        gen = torch.Generator().manual_seed(seed)
        return q.mean + q.stddev * torch.randn(q.mean.shape, generator=gen)


def _ensemble_table(metric: Metric, z0: Tensor, z1: Tensor, s: CVSettings, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    dec = connecting_geodesic(
        metric,
        z0,
        z1,
        num_knots=s.knots,
        estimator="sampled",
        optimizer="adam",
        num_points=s.energy_points,
        max_iter=s.max_iter,
        lr=s.geo_lr,
        patience=s.geo_patience,
        tol=s.geo_tol,
        refine=False,
        generator=gen,
    )
    with torch.no_grad():
        sampled = curve_length(
            metric,
            cast(Curve, dec.curve),
            estimator="sampled",
            num_points=s.length_points,
            generator=gen,
        )
        line = curve_length(
            metric,
            CubicSpline(z0, z1),
            estimator="sampled",
            num_points=s.length_points,
            generator=gen,
        )
    t1 = time.perf_counter()
    mean = connecting_geodesic(
        metric, z0, z1, num_knots=s.knots, max_iter=s.lbfgs_iter, refine=False
    )
    return {
        "sampled": _lengths(sampled, dec.status, dec.iterations),
        "sampled_line": [float(v) for v in line],
        "mean_metric": _lengths(mean.length.detach(), mean.status, mean.iterations),
        "seconds": {
            "sampled": round(t1 - t0, 2),
            "mean_metric": round(time.perf_counter() - t1, 2),
        },
    }


def _lengths(length: Tensor, status: list[Any], iterations: Tensor | int) -> dict:
    its = iterations.tolist() if isinstance(iterations, Tensor) else [iterations] * len(status)
    return {
        "length": [float(v) for v in length],
        "status": [str(st) for st in status],
        "iterations": [int(i) for i in its],
    }


def _rbf_table(metric: Metric, z0: Tensor, z1: Tensor, s: CVSettings) -> dict:
    t0 = time.perf_counter()
    res = connecting_geodesic(
        metric, z0, z1, num_knots=s.knots, max_iter=s.lbfgs_iter, refine=False
    )
    return {
        "geodesic": _lengths(res.length.detach(), res.status, res.iterations),
        "seconds": {"geodesic": round(time.perf_counter() - t0, 2)},
    }


def _retraining(
    store: Resumable,
    r: int,
    s: CVSettings,
    splits: Splits,
    pairs: tuple[Tensor, Tensor],
    progress: bool,
) -> dict[str, Any]:
    """Models and distance tables of retraining ``r`` (read back where a file exists)."""
    out: dict[str, Any] = {}
    seed = s.seed + r
    for kind in ("ensemble", "rbf"):
        name = f"{kind}_r{r:02d}"
        vae, report = train_or_load(
            store,
            name,
            kind,
            s.recipe,
            splits,
            latent_dim=s.latent_dim,
            seed=seed,
            members=s.members,
            progress=progress,
        )
        table = store.read(f"tables/{name}.json")
        if table is None:
            x = splits.test.x
            z0 = _endpoints(vae, x[pairs[0]], s.endpoints, seed)
            z1 = _endpoints(vae, x[pairs[1]], s.endpoints, seed + 10_000)
            metric = as_metric(vae.decoder)
            if kind == "ensemble":
                table = _ensemble_table(metric, z0, z1, s, seed)
            else:
                table = _rbf_table(metric, z0, z1, s)
            table["z0"], table["z1"] = z0.tolist(), z1.tolist()
            store.write(f"tables/{name}.json", table)
        out[kind] = {"training": report, "table": table}
    return out


def _matrix(results: list[dict], kind: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(R, P)`` lengths and solver statuses of one model's distances over retrainings."""
    rows = [res[kind]["table"][key] for res in results]
    length = np.array([row["length"] for row in rows], dtype=np.float64)
    status = np.array([row["status"] for row in rows], dtype=object)
    return length, status


def run_ensembles_cv(
    out: str | Path, s: CVSettings, *, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Syrota et al.'s protocol: CV of each pair's geodesic distance over retrainings.

    Resumable: every retraining's models (``models/``) and distance tables
    (``tables/``) are files in ``out.parts/``; a rerun with the same settings
    reads them back.

    Returns:
        The summary (also in ``out/summary.json``): the one-sided t-tests of the
        ensemble's CVs against the RBF's (``"decorrelated"``, ``"mean_metric"``),
        the training, the evidence and the report's lines.
    """
    started = start_run(out, s, force=force)
    run, store = started.run, started.store
    splits = load_splits(*_data(s))
    pairs = pick_test_pairs(splits.test.y, s.pairs, seed=s.pair_seed)
    results = []
    for r in tqdm(range(s.repeats), desc="retrainings", disable=not progress, leave=False):
        results.append(_retraining(store, r, s, splits, pairs, progress=False))
    rbf, rbf_ok = _matrix(results, "rbf", "geodesic")
    comps = {}
    for key, name in (("sampled", "decorrelated"), ("mean_metric", "mean metric")):
        ens, ens_ok = _matrix(results, "ensemble", key)
        comps[name] = compare_retrainings(
            ens, rbf, ens_ok, rbf_ok, alternative="less", include_all=s.include_all
        )
    write_tables(run, results, pairs, splits, comps)
    compute = sum(
        res[k]["training"]["seconds"] + sum(res[k]["table"]["seconds"].values())
        for res in results
        for k in ("ensemble", "rbf")
    )
    evidence = f"budget {s.budget}, seed {s.seed}, {s.repeats} retrainings x {s.pairs} pairs"
    write_figure(run, comps, evidence)
    summary = summarise(s, results, comps, compute, _data(s), PAPER)
    return started.finish(summary, s)
