"""What the paper experiments share: data loading, training, codes, run folders.

Each seed paper's experiment is its own module (:mod:`.ensembles_cv`,
:mod:`.relative_improvement`, :mod:`.kmeans`); the command line adaptors live
in :mod:`latentgeo.cli`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from latentgeo.data import LabeledData, digits, mnist
from latentgeo.experiments.rundir import RunDir
from latentgeo.models import VAE, calibrate_rbf, fit, make_ensemble_vae, make_rbf_vae

__all__ = ["encode_means", "finish_run", "graph_options", "load_data", "split_indices", "train_vae"]


def load_data(data: str, classes: tuple[int, ...] | None) -> LabeledData:
    """The data set ``data`` (``"digits"`` or ``"mnist"``) restricted to ``classes``."""
    if data == "digits":
        return digits(classes=classes)
    if data == "mnist":
        x, y = mnist(classes=classes)
        return LabeledData(x.reshape(x.shape[0], -1), y)
    raise ValueError(f"data must be 'digits' or 'mnist', got {data!r}")


def split_indices(n: int, test_fraction: float, seed: int = 19821) -> tuple[Tensor, Tensor]:
    """A seeded ``(train, test)`` split of ``range(n)`` (at least 2 test points)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(2, round(test_fraction * n))
    return perm[n_test:], perm[:n_test]


def train_vae(
    kind: str,
    x: Tensor,
    *,
    latent_dim: int,
    seed: int,
    epochs: int,
    hidden: tuple[int, ...],
    members: int = 10,
    centres: int = 10,
    a: float = 1.0,
    progress: bool = False,
) -> VAE:
    """An ensemble or RBF-precision VAE trained on ``x``, in eval mode."""
    opts: dict[str, Any] = dict(hidden=hidden, output_activation="sigmoid", seed=seed)
    if kind == "ensemble":
        vae = make_ensemble_vae(x.shape[1], latent_dim, num_members=members, **opts)
    else:
        vae = make_rbf_vae(x.shape[1], latent_dim, num_centres=centres, a=a, **opts)
    fit(vae, x, epochs=epochs, batch_size=64, lr=2e-3, seed=seed, progress=progress)
    if kind == "rbf":
        calibrate_rbf(vae, x, seed=seed, progress=progress)
    return vae.eval()


def encode_means(vae: VAE, x: Tensor) -> Tensor:
    """The encoder means of ``x`` (no gradients)."""
    with torch.no_grad():
        return vae.encode(x).mean


def graph_options(codes: Tensor, refine: bool, max_iter: int, k: int = 10) -> dict[str, Any]:
    """``connecting_geodesic`` options of the graph method through ``codes``."""
    opts: dict[str, Any] = dict(method="graph", points=codes, k=k, refine=refine)
    if refine:
        opts.update(estimator="metric", max_iter=max_iter, max_knots=16)
    return opts


def finish_run(run: RunDir, summary: dict[str, Any], start: float, settings: Any) -> dict[str, Any]:
    """Add settings, timing and file list to ``summary`` and write ``summary.json``."""
    summary["settings"] = asdict(settings)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["environment"] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    summary["files"] = [p.name for p in run.written] + ["summary.json"]
    run.write_summary(summary)
    return summary
