"""Arvanitidis et al. (2018): geodesic vs Euclidean k-means on digit triples.

``latentgeo reproduce kmeans`` runs :func:`run_kmeans`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentgeo.analysis import f_measure, kmedoids, pairwise_geodesic_distances
from latentgeo.experiments._checks import (
    DATA_SETS,
    check_choice,
    check_int,
    check_layers,
    check_number,
    check_seed,
)
from latentgeo.experiments.common import (
    encode_means,
    finish_run,
    graph_options,
    load_data,
    train_vae,
)
from latentgeo.experiments.rundir import RunDir
from latentgeo.metrics import Metric, as_metric
from latentgeo.models import VAE
from latentgeo.viz import plot_latent_space

__all__ = ["TRIPLES", "KMeansSettings", "run_kmeans"]


TRIPLES = ((0, 1, 2), (3, 4, 7), (5, 6, 9))


@dataclass(frozen=True)
class KMeansSettings:
    """Settings of :func:`run_kmeans` (LSO: MNIST, 1000 points per digit, 10 subsets)."""

    data: str = "digits"
    subsets: int = 10
    points: int = 54
    epochs: int = 100
    hidden: tuple[int, ...] = (64, 32)
    centres: int = 64
    a: float = 2.0
    refine: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self, "data", DATA_SETS)
        check_int(self, "subsets", 1)
        check_int(self, "points", 3, " (k-means with k = 3 clusters)")
        for name in ("epochs", "centres"):
            check_int(self, name, 1)
        check_number(self, "a")
        check_layers(self, "hidden")
        check_seed(self)

    @classmethod
    def quick(cls, **kw: Any) -> KMeansSettings:
        """Minutes, not hours."""
        base: dict[str, Any] = dict(subsets=2, points=30, epochs=30, centres=32)
        base.update(kw)
        return cls(**base)


def _kmeans_triple(
    triple: tuple[int, ...], s: KMeansSettings, progress: bool
) -> tuple[list[float], list[float], VAE, Tensor, Tensor]:
    from sklearn.cluster import KMeans

    x, y = load_data(s.data, triple)
    vae = train_vae(
        "rbf",
        x,
        latent_dim=2,
        seed=s.seed,
        epochs=s.epochs,
        hidden=s.hidden,
        centres=s.centres,
        a=s.a,
    )
    codes = encode_means(vae, x)
    metric: Metric = as_metric(vae.decoder)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    geo_f, euc_f = [], []
    for k in range(s.subsets):
        idx = perm[k * s.points : (k + 1) * s.points]
        if idx.numel() < 3:
            break
        dist = pairwise_geodesic_distances(
            metric,
            codes[idx],
            progress=progress,
            chunk_size=512,
            **graph_options(codes, s.refine, 30),
        )
        gen = torch.Generator().manual_seed(s.seed + k)
        geo = kmedoids(dist, 3, generator=gen)
        euc = KMeans(3, n_init=10, random_state=s.seed + k).fit_predict(codes[idx].numpy())
        geo_f.append(f_measure(y[idx], geo.labels))
        euc_f.append(f_measure(y[idx], euc))
    return geo_f, euc_f, vae, codes, y


def run_kmeans(
    out: str | Path, s: KMeansSettings, *, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Geodesic vs Euclidean k-means (k = 3) on digit triples, F-measure per subset.

    One RBF-precision VAE (d = 2) per triple; the triple's points are split
    into ``subsets`` random subsets of ``points`` points, each clustered with
    geodesic k-means (medoids, geodesic distances) and with Euclidean k-means
    on the codes.

    Returns:
        The summary (also in ``out/summary.json``).
    """
    run = RunDir(out, force=force)
    start = time.perf_counter()
    rows, results = [], {}
    bar = tqdm(TRIPLES, desc="digit triples", disable=not progress, leave=False)
    for triple in bar:
        geo_f, euc_f, vae, codes, y = _kmeans_triple(triple, s, progress=False)
        name = "".join(map(str, triple))
        results[name] = {
            "geodesic": {"mean": float(np.mean(geo_f)), "std": float(np.std(geo_f))},
            "euclidean": {"mean": float(np.mean(euc_f)), "std": float(np.std(euc_f))},
        }
        rows += [
            [name, k, f"{g:.4f}", f"{e:.4f}"]
            for k, (g, e) in enumerate(zip(geo_f, euc_f, strict=True))
        ]
        fig = plot_latent_space(
            decoder=vae.decoder,
            background="uncertainty",
            codes=codes,
            labels=y,
            resolution=60,
            title=f"digits {triple}",
        )
        run.save_figure(f"latent_{name}.png", fig)
    run.write_csv("f_measure.csv", ["digits", "subset", "geodesic", "euclidean"], rows)
    paper = {"012": (94.28, 77.57), "347": (89.54, 77.80), "569": (81.13, 64.93)}
    summary: dict[str, Any] = {
        "experiment": "kmeans (Arvanitidis et al. 2018)",
        "f_measure": results,
        "paper": {k: {"geodesic": v[0] / 100, "euclidean": v[1] / 100} for k, v in paper.items()},
    }
    summary["report"] = ["digits  geodesic         euclidean        (paper, MNIST)"] + [
        f"{name}     {100 * r['geodesic']['mean']:.1f} ± {100 * r['geodesic']['std']:.1f} %"
        f"   {100 * r['euclidean']['mean']:.1f} ± {100 * r['euclidean']['std']:.1f} %"
        f"   ({paper[name][0]:.1f} / {paper[name][1]:.1f} %)"
        for name, r in results.items()
    ]
    return finish_run(run, summary, start, s)
