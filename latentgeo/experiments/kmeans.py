"""Arvanitidis et al. (2018): geodesic vs Euclidean clustering on digit triples.

``latentgeo reproduce kmeans`` runs :func:`run_kmeans`.

The recipe (LSO, p. 6 and App. D): digit triples {0, 1, 2}, {3, 4, 7},
{5, 6, 9}, 1000 random training images per digit, one VAE per triple (d = 2,
tanh MLPs with hidden layers of 64 and 32 units, L2 1e-5, sigmoid mean, an RBF
precision with 64 centres and ``a = 2``); each triple's points are split into
10 random subsets, each clustered into 3 clusters, and scored by the
F-measure against the digits. Both sides run the SAME algorithm, k-medoids
(:func:`latentgeo.analysis.kmedoids`), once on geodesic distances and once on
Euclidean distances of the codes. Geodesic distances: shortest paths on a
k-NN graph of the codes under the metric, refined into geodesics by L-BFGS on
the energy (``connecting_geodesic(method="graph", refine=True)``); every
pair's status is kept and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentgeo.analysis import (
    converged_points,
    f_measure,
    kmedoids,
    pairwise_geodesics,
    status_counts,
)
from latentgeo.data import LabeledData, mnist
from latentgeo.experiments._checks import check_int
from latentgeo.experiments.common import (
    NOT_A_RESULT,
    DigitsSettings,
    Recipe,
    Resumable,
    Splits,
    command_line,
    converged_note,
    convergence_warning,
    encode_means,
    load_splits,
    train_or_load,
)
from latentgeo.experiments.rundir import RunDir
from latentgeo.experiments.runs import start_run, summary_head
from latentgeo.metrics import as_metric
from latentgeo.viz import plot_latent_space

__all__ = ["PAPER", "TRIPLES", "KMeansSettings", "run_kmeans"]

TRIPLES = ((0, 1, 2), (3, 4, 7), (5, 6, 9))

#: LSO's F-measures (%), Riemannian / linear, mean ± std over 10 subsets.
PAPER = {
    "012": {"geodesic": (94.28, 1.14), "euclidean": (77.57, 0.87)},
    "347": {"geodesic": (89.54, 1.61), "euclidean": (77.80, 0.91)},
    "569": {"geodesic": (81.13, 2.52), "euclidean": (64.93, 0.96)},
}

PAPER_RECIPE = Recipe(
    hidden=(32, 64),
    activation="tanh",
    output_activation="sigmoid",
    beta=1.0,
    obs_std=0.1,
    lr=1e-3,
    batch_size=64,
    max_epochs=300,
    patience=10,
    weight_decay=1e-5,
    centres=64,
    zeta=1e-2,
    a=2.0,
    bandwidth="mean_dist",
    rbf_codes="mean",
)

#: The ``cpu`` budget's recipe.
CPU_RECIPE = replace(PAPER_RECIPE, lr=2e-3, patience=4, min_delta=0.5)

_BUDGETS: dict[str, dict[str, Any]] = {
    "paper": dict(per_digit=1000, subsets=10, points=300, recipe=PAPER_RECIPE),
    "cpu": {},  # the defaults
    "quick": dict(
        per_digit=40,
        subsets=1,
        points=12,
        recipe=PAPER_RECIPE.smoke(centres=8),
        graph_points=40,
        max_iter=5,
        include_all=True,  # a smoke test clusters whatever came out
    ),
}


@dataclass(frozen=True)
class KMeansSettings(DigitsSettings):
    """Settings of :func:`run_kmeans`; :meth:`for_budget` gives the budgets."""

    budgets: ClassVar[dict[str, dict[str, Any]]] = _BUDGETS

    subsets: int = 5
    points: int = 60
    recipe: Recipe = CPU_RECIPE
    graph_points: int = 300
    graph_k: int = 12
    max_repeats: int = 4
    max_iter: int = 200
    restarts: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "points", 3, " (k-medoids with k = 3 clusters)")
        for name in ("subsets", "graph_points", "graph_k", "max_repeats"):
            check_int(self, name, 1)
        for name in ("max_iter", "restarts"):
            check_int(self, name, 1)


def _triple_data(s: KMeansSettings, triple: tuple[int, ...]) -> Splits:
    """``per_digit`` random images of each digit (seeded), and the validation part."""
    if s.data == "digits":
        return load_splits("digits", triple)
    fit_, val = mnist(split="fit", classes=triple), mnist(split="val", classes=triple)
    gen = torch.Generator().manual_seed(s.seed)
    keep = torch.cat(
        [
            (fit_.y == c)
            .nonzero()
            .squeeze(-1)[torch.randperm(int((fit_.y == c).sum()), generator=gen)[: s.per_digit]]
            for c in triple
        ]
    )
    return Splits(LabeledData(fit_.x[keep], fit_.y[keep]), val, val)


def _subset_table(
    store: Resumable,
    name: str,
    metric: Any,
    codes: Tensor,
    idx: Tensor,
    graph: Tensor,
    s: KMeansSettings,
) -> dict[str, Any]:
    table = store.read(f"tables/{name}.json")
    if table is not None:
        return table
    t0 = time.perf_counter()
    res = pairwise_geodesics(
        metric,
        codes[idx],
        # rounds of max_repeats (a point at most that many times per solve): once needed
        # by the graph method, whose results no longer depend on the batching
        max_repeats=s.max_repeats,
        method="graph",
        points=graph,
        k=s.graph_k,
        refine=True,
        max_iter=s.max_iter,
    )
    table = {
        "index": idx.tolist(),
        "geodesic": res.distances.tolist(),
        "status": [str(st) for st in res.status],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    store.write(f"tables/{name}.json", table)
    return table


def _converged_matrix(status: list[str], n: int) -> Tensor:
    """``(N, N)`` bool from the statuses of the pairs ``i < j`` (``triu_indices`` order)."""
    ok = torch.eye(n, dtype=torch.bool)
    i, j = torch.triu_indices(n, n, offset=1)
    flags = torch.tensor([st == "converged" for st in status], dtype=torch.bool)
    ok[i, j] = ok[j, i] = flags
    return ok


def _cluster(
    dist: Tensor, labels: Tensor, s: KMeansSettings, k: int, converged: Tensor
) -> tuple[float, int]:
    """F-measure of k-medoids (k = 3) on ``dist`` over the points it was fitted on (those
    whose geodesics among themselves all converged, unless ``include_all``), and their
    number; ``nan`` when fewer than 3 are left."""
    gen = torch.Generator().manual_seed(s.seed + k)
    used = (
        converged_points(converged)
        if not s.include_all
        else torch.ones_like(labels, dtype=torch.bool)
    )
    if int(used.sum()) < 3:
        return float("nan"), int(used.sum())
    res = kmedoids(
        dist, 3, num_restarts=s.restarts, generator=gen, converged=converged,
        include_all=s.include_all,
    )  # fmt: skip
    return f_measure(labels[used], res.labels[used]), int(used.sum())


def _triple(
    store: Resumable, run: RunDir, s: KMeansSettings, triple: tuple[int, ...], progress: bool
) -> dict[str, Any]:
    name = "".join(map(str, triple))
    splits = _triple_data(s, triple)
    vae, training = train_or_load(
        store, f"rbf_{name}", "rbf", s.recipe, splits, latent_dim=2, seed=s.seed
    )
    x, y = splits.fit
    codes = encode_means(vae, x)
    metric = as_metric(vae.decoder)
    gen = torch.Generator().manual_seed(s.seed)
    perm = torch.randperm(x.shape[0], generator=gen)
    graph = codes[perm[: s.graph_points]].contiguous()
    geo_f, euc_f, converged, total, seconds = [], [], 0, 0, training["seconds"]
    statuses: list[str] = []
    points_used: list[int] = []
    for k in tqdm(range(s.subsets), desc=f"digits {name}", disable=not progress, leave=False):
        idx = perm[k * s.points : (k + 1) * s.points]
        if idx.numel() < s.points:
            raise ValueError(
                f"{s.subsets} subsets of {s.points} points need {s.subsets * s.points} images "
                f"of digits {triple}, only {x.shape[0]} are there"
            )
        table = _subset_table(store, f"{name}_s{k:02d}", metric, codes, idx, graph, s)
        ok = [st == "converged" for st in table["status"]]
        converged, total, seconds = converged + sum(ok), total + len(ok), seconds + table["seconds"]
        statuses += table["status"]
        geo = torch.tensor(table["geodesic"], dtype=torch.float64)
        euc = torch.cdist(codes[idx].double(), codes[idx].double())
        mask = _converged_matrix(table["status"], idx.numel())
        # both sides cluster the same points: those whose geodesics all converged
        (g_f, n_used), (e_f, _) = (_cluster(d, y[idx], s, k, mask) for d in (geo, euc))
        geo_f.append(g_f)
        euc_f.append(e_f)
        points_used.append(n_used)
    run.save_figure(
        f"latent_{name}.png",
        plot_latent_space(
            decoder=vae.decoder,
            background="uncertainty",
            codes=codes,
            labels=y,
            resolution=60,
            title=f"digits {triple}: RBF-VAE codes, decoder σ",
        ),
    )
    return {
        "geodesic": _stats(geo_f),
        "euclidean": _stats(euc_f),
        "converged": converged,
        "num_pairs": total,
        "status_counts": status_counts(statuses),
        "points_used": points_used,
        "points": s.points,
        "training": training,
        "compute_seconds": round(seconds, 2),
    }


def _stats(values: list[float]) -> dict[str, Any]:
    """Mean and std over the subsets with a clustering (``nan`` ones left out)."""
    ok = [v for v in values if np.isfinite(v)]
    mean = float(np.mean(ok)) if ok else float("nan")
    return {"mean": mean, "std": float(np.std(ok)) if ok else float("nan"), "values": values}


def run_kmeans(
    out: str | Path, s: KMeansSettings, *, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Geodesic vs Euclidean k-medoids (k = 3) on digit triples, F-measure per subset.

    Resumable: each triple's model (``models/``) and each subset's geodesic
    distance table (``tables/``) are files in ``out.parts/``; a rerun with the same settings
    reads them back.

    Returns:
        The summary (also in ``out/summary.json``).
    """
    started = start_run(out, s, force=force)
    run, store = started.run, started.store
    results = {"".join(map(str, t)): _triple(store, run, s, t, progress) for t in TRIPLES}
    rows = [
        [name, k, f"{g:.4f}", f"{e:.4f}"]
        for name, r in results.items()
        for k, (g, e) in enumerate(
            zip(r["geodesic"]["values"], r["euclidean"]["values"], strict=True)
        )
    ]
    run.write_csv("f_measure.csv", ["digits", "subset", "geodesic", "euclidean"], rows)
    summary = _summary(s, results)
    return started.finish(summary, s)


def _summary(s: KMeansSettings, results: dict[str, Any]) -> dict[str, Any]:
    quick = s.budget == "quick"
    conv = sum(r["converged"] for r in results.values())
    total = sum(r["num_pairs"] for r in results.values())
    lines = [NOT_A_RESULT] if quick else []
    lines.append(
        f"kmeans: {s.data}, {s.subsets} subsets x {s.points} points per triple, k-medoids "
        f"(k = 3) on geodesic and on Euclidean distances; budget {s.budget}, seed {s.seed}; "
        f"geodesics {converged_note(conv, total)}"
    )
    lines.append(
        "F over the points whose geodesics among themselves all converged (both sides the "
        "same points)"
        if not s.include_all
        else "F over all points, geodesics converged or not"
    )
    lines.append("digits  geodesic F        Euclidean F       geodesics          (LSO, MNIST)")
    for name, r in results.items():
        g, e, p = r["geodesic"], r["euclidean"], PAPER[name]
        lines.append(
            f"{name}     {100 * g['mean']:.1f} +- {100 * g['std']:.1f} %   "
            f"{100 * e['mean']:.1f} +- {100 * e['std']:.1f} %   "
            f"{converged_note(r['converged'], r['num_pairs'])}, points used "
            f"{sum(r['points_used'])}/{s.points * len(r['points_used'])}   "
            f"({p['geodesic'][0]:.1f} / {p['euclidean'][0]:.1f} %)"
        )
    compute = sum(r["compute_seconds"] for r in results.values())
    lines.append(f"compute: {compute:.0f} s in training and geodesics (all invocations)")
    warning = convergence_warning(conv, total)
    lines += [warning] if warning else []
    return {
        **summary_head("kmeans (Arvanitidis et al. 2018)", s),
        "f_measure": results,
        "converged": conv,
        "num_pairs": total,
        "include_all": s.include_all,
        "warning": warning,
        "compute_seconds": round(compute, 2),
        "paper": PAPER,
        "command": command_line("kmeans", s),
        "report": lines,
    }
