"""``latentgeo demo``: geodesics go around the hole of a ring; straight lines do not.

On :func:`latentgeo.data.ring` data it trains two VAEs with 2-d latents, the two
models of the seed papers whose uncertainty grows off the data:

* an RBF-precision VAE (Arvanitidis et al. 2018): the expected metric
  ``J_μᵀJ_μ + J_σᵀJ_σ`` of a Gaussian decoder whose σ grows off the data.
  Its geodesics: ``method="graph"`` (shortest paths on a k-NN graph of the
  codes under the metric, then energy refinement with L-BFGS);
* an ensemble-decoder VAE (Syrota et al. 2024). Its expected metric, the mean
  of the members' pull-backs, only sees where the members' *Jacobians*
  differ, not where their outputs disagree; on the ring the members agree
  well enough inside the hole that energy refinement (even with the paper's
  decorrelated estimator) pulls curves into it. Its curves are therefore the
  graph geodesics (shortest paths through the codes under the expected
  metric, spline-fitted, ``refine=False``; set ``ensemble_refine=True`` to
  refine them with the decorrelated energy), and its lengths are measured
  with the paper's decorrelated estimator (one member drawn per curve point,
  ``estimator="sampled"``), straight lines alike.

It picks pairs of codes on opposite sides of the ring, solves all geodesics
of a model in one batched call, compares them with straight lines, and writes
``summary.json``, ``distances.csv`` and one figure per model.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentgeo.analysis import nearest_neighbour_spacing, off_data_fraction, straight_line_length
from latentgeo.curves import CubicSpline, curve_length
from latentgeo.data import ring
from latentgeo.experiments._checks import (
    check_int,
    check_layers,
    check_number,
    check_seed,
)
from latentgeo.experiments.rundir import RunDir
from latentgeo.metrics import Metric, as_metric
from latentgeo.models import VAE, calibrate_rbf, fit, make_ensemble_vae, make_rbf_vae
from latentgeo.solvers import GeodesicResult, connecting_geodesic
from latentgeo.viz import plot_latent_space

__all__ = ["DemoSettings", "pairs_across_ring", "run_demo"]

MODELS = ("rbf", "ensemble")


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo depends on (written into ``summary.json``)."""

    seed: int = 0
    num_data: int = 1000
    noise: float = 0.05
    epochs: int = 60
    rbf_epochs: int = 300
    batch_size: int = 100
    lr: float = 3e-3
    hidden: tuple[int, ...] = (32, 32)
    num_members: int = 8
    num_centres: int = 64
    num_pairs: int = 12
    graph_points: int = 250
    graph_k: int = 10
    max_iter_rbf: int = 60
    max_knots: int = 16
    ensemble_refine: bool = False
    max_iter_ensemble: int = 150
    sampled_points: int = 256
    length_draws: int = 8
    curve_points: int = 64
    resolution: int = 90

    def __post_init__(self) -> None:
        check_seed(self)
        for name in ("epochs", "rbf_epochs", "batch_size", "num_members", "num_centres"):
            check_int(self, name, 1)
        for name in ("num_pairs", "graph_k", "max_iter_rbf", "max_knots", "max_iter_ensemble"):
            check_int(self, name, 1)
        for name in ("sampled_points", "curve_points", "resolution"):
            check_int(self, name, 2)
        check_int(self, "length_draws", 1)
        check_int(self, "graph_points", self.graph_k + 1, " (more than graph_k)")
        check_int(self, "num_data", self.graph_k + 1, " (more than graph_k)")
        check_number(self, "noise", positive=False)
        check_number(self, "lr")
        check_layers(self, "hidden")

    @classmethod
    def quick(cls, seed: int = 0) -> DemoSettings:
        """Tiny settings for CI and a first look (seconds)."""
        return cls(
            seed=seed,
            num_data=400,
            epochs=20,
            rbf_epochs=100,
            num_members=4,
            num_centres=32,
            num_pairs=4,
            graph_points=120,
            max_iter_rbf=15,
            max_knots=8,
            max_iter_ensemble=40,
            length_draws=2,
            resolution=40,
        )


def pairs_across_ring(angles: Tensor, num_pairs: int) -> tuple[Tensor, Tensor]:
    """Indices of data points at angles ``θ_p`` and ``θ_p + π``, ``θ_p = π p / P + π / (2P)``.

    Args:
        angles: the data's angles ``(N,)`` (the labels of :func:`~latentgeo.data.ring`).
        num_pairs: P.

    Returns:
        ``(i, j)``, each of shape ``(P,)``: the nearest data points to both angles.

    Example:
        >>> theta = torch.linspace(0, 2 * math.pi, 9)[:-1]
        >>> pairs_across_ring(theta, 2)
        (tensor([1, 3]), tensor([5, 7]))
    """
    target = (torch.arange(num_pairs, dtype=torch.float64) + 0.5) * math.pi / num_pairs
    a = angles.to(torch.float64)

    def nearest(t: Tensor) -> Tensor:
        gap = torch.atan2(torch.sin(a[:, None] - t[None]), torch.cos(a[:, None] - t[None]))
        return gap.abs().argmin(0)

    return nearest(target), nearest(target + math.pi)


def _train(kind: str, x: Tensor, s: DemoSettings, progress: bool) -> VAE:
    common: dict[str, Any] = dict(
        epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=s.seed, progress=progress
    )
    if kind == "ensemble":
        vae = make_ensemble_vae(
            x.shape[1], 2, num_members=s.num_members, hidden=s.hidden, seed=s.seed
        )
        fit(vae, x, **common)
    else:
        vae = make_rbf_vae(x.shape[1], 2, num_centres=s.num_centres, hidden=s.hidden, seed=s.seed)
        fit(vae, x, **common)
        calibrate_rbf(vae, x, epochs=s.rbf_epochs, seed=s.seed, progress=progress)
    return vae.eval()


def _geodesics(
    kind: str, metric: Metric, z0: Tensor, z1: Tensor, codes: Tensor, s: DemoSettings
) -> GeodesicResult:
    step = max(1, codes.shape[0] // s.graph_points)
    graph: dict[str, Any] = dict(method="graph", points=codes[::step].contiguous(), k=s.graph_k)
    if kind == "ensemble":
        gen = torch.Generator().manual_seed(s.seed)
        if not s.ensemble_refine:
            return connecting_geodesic(metric, z0, z1, **graph, refine=False)
        return connecting_geodesic(
            metric,
            z0,
            z1,
            **graph,
            estimator="sampled",
            optimizer="adam",
            num_points=s.sampled_points,
            max_iter=s.max_iter_ensemble,
            generator=gen,
        )
    return connecting_geodesic(
        metric,
        z0,
        z1,
        **graph,
        estimator="metric",
        max_iter=s.max_iter_rbf,
        max_knots=s.max_knots,
    )


def _sampled_length(metric: Metric, curve: Any, s: DemoSettings) -> Tensor:
    gen = torch.Generator().manual_seed(s.seed + 1)
    draws = [
        curve_length(
            metric, curve, estimator="sampled", num_points=s.sampled_points, generator=gen
        ).detach()
        for _ in range(s.length_draws)
    ]
    return torch.stack(draws).mean(0)


def run_demo(
    out: str | Path,
    settings: DemoSettings | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo and write its files into ``out``.

    Args:
        out: output folder.
        settings: :class:`DemoSettings` (default: the full demo).
        force: replace a finished run in ``out``.
        progress: show progress bars.

    Returns:
        The summary (also written to ``out/summary.json``), with ``"files"``
        listing what was written.

    Raises:
        RunExistsError: ``out`` holds a finished run and ``force`` is false.
    """
    s = settings or DemoSettings()
    run = RunDir(out, force=force)
    start = time.perf_counter()
    torch.manual_seed(s.seed)
    x, angles = ring(s.num_data, noise=s.noise, seed=s.seed)
    i, j = pairs_across_ring(angles, s.num_pairs)
    t = torch.linspace(0.0, 1.0, s.curve_points)

    summary: dict[str, Any] = {"models": {}}
    rows: list[list[Any]] = []
    stages = tqdm(total=2 * len(MODELS), desc="demo", disable=not progress, leave=False)
    for kind in MODELS:
        stages.set_postfix_str(f"training {kind}")
        t0 = time.perf_counter()
        vae = _train(kind, x, s, progress)
        train_s = time.perf_counter() - t0
        stages.update()
        stages.set_postfix_str(f"geodesics {kind}")
        with torch.no_grad():
            codes = vae.encode(x).mean
        metric = as_metric(vae.decoder)
        z0, z1 = codes[i], codes[j]
        t0 = time.perf_counter()
        res = _geodesics(kind, metric, z0, z1, codes, s)
        geo_s = time.perf_counter() - t0
        line_curve = CubicSpline(z0, z1)
        metric_geo = res.length.detach()
        metric_line = straight_line_length(metric, z0, z1)
        if kind == "ensemble":
            geo_len = _sampled_length(metric, res.curve, s)
            line_len = _sampled_length(metric, line_curve, s)
            estimator = (
                f"sampled (Syrota et al.; {s.sampled_points} points, {s.length_draws} draws)"
            )
        else:
            geo_len, line_len, estimator = metric_geo, metric_line, "metric (Gauss–Legendre)"
        rel = (line_len - geo_len) / line_len
        points = res.curve(t).detach()
        line_points = line_curve(t).detach()
        spacing = nearest_neighbour_spacing(codes)
        off_geo = off_data_fraction(points, codes, spacing=spacing)
        off_line = off_data_fraction(line_points, codes, spacing=spacing)
        if kind == "rbf":
            method = "graph + L-BFGS energy refinement"
        elif s.ensemble_refine:
            method = "graph + decorrelated-energy refinement (Adam)"
        else:
            method = "graph (k-NN shortest path under the metric, spline fit, no refinement)"
        summary["models"][kind] = {
            "geodesic_method": method,
            "mean_geodesic_length": float(geo_len.mean()),
            "mean_straight_line_length": float(line_len.mean()),
            "mean_relative_improvement": float(rel.mean()),
            "off_data_fraction": {
                "geodesic": float(off_geo.mean()),
                "straight_line": float(off_line.mean()),
            },
            "length_estimator": estimator,
            "mean_metric_length": {
                "geodesic": float(metric_geo.mean()),
                "straight_line": float(metric_line.mean()),
            },
            "converged": int(res.converged.sum()),
            "num_pairs": int(res.num_pairs),
            "code_spacing": spacing,
            "seconds": {"training": round(train_s, 2), "geodesics": round(geo_s, 2)},
        }
        for p in range(res.num_pairs):
            rows.append(
                [
                    kind,
                    p,
                    int(i[p]),
                    int(j[p]),
                    *(f"{float(v):.6g}" for v in (*z0[p], *z1[p])),
                    f"{float(geo_len[p]):.6g}",
                    f"{float(line_len[p]):.6g}",
                    f"{float(rel[p]):.6g}",
                    f"{float(metric_geo[p]):.6g}",
                    f"{float(metric_line[p]):.6g}",
                    f"{float(off_geo[p]):.4g}",
                    f"{float(off_line[p]):.4g}",
                    bool(res.converged[p]),
                    res.status[p],
                ]
            )
        fig = plot_latent_space(
            decoder=vae.decoder,
            background="uncertainty",
            codes=codes,
            curves=points,
            straight=(z0, z1),
            resolution=s.resolution,
            title=f"{kind}: geodesics (red) vs straight lines (dashed)",
        )
        run.save_figure(f"latent_{kind}.png", fig)
        stages.update()
    stages.close()
    run.write_csv(
        "distances.csv",
        [
            "model",
            "pair",
            "index_a",
            "index_b",
            "z0_1",
            "z0_2",
            "z1_1",
            "z1_2",
            "geodesic_length",
            "straight_line_length",
            "relative_improvement",
            "geodesic_metric_length",
            "straight_line_metric_length",
            "off_data_geodesic",
            "off_data_straight_line",
            "converged",
            "status",
        ],
        rows,
    )
    summary["settings"] = asdict(s)
    summary["seed"] = s.seed
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["environment"] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    summary["files"] = [p.name for p in run.written] + ["summary.json"]
    run.write_summary(summary)
    return summary
