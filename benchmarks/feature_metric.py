"""Geodesics under ``FeatureMetric(VAE, CNN)`` against the VAE's own metric, under the budget.

The decoder is the transposed-convolution VAE of ``real_decoders.py`` (d = 16,
28×28 outputs, RBF precision: a Gaussian decoder, so the feature metric has
its stochastic diagonal term); the feature map is a small CNN classifier with
random weights (1×28×28 → 16×14×14 → 32×7×7 → ``--features`` logits, ELU).

Printed, with the budget in force (``latentgeo.current_memory_budget``):

* ``connecting_geodesic`` at default settings on the same ``--pairs`` pairs in
  one call, under the decoder's expected metric (``plain``) and under the
  feature metric with the chosen ``--diagonal`` (``exact``: one reverse-mode
  product of the CNN per feature; ``hutchinson``: ``--probes`` products):
  CPU and wall seconds, their ratio to ``plain``, the peak memory of the call
  (resident set size above the level before it, sampled every 5 ms, on the
  CPU; ``torch.cuda.max_memory_allocated`` on CUDA), median iterations, CPU
  milliseconds per pair-iteration (the call's CPU time over the iterations of
  all pairs: the cost of an iteration, apart from how many there are) and
  status counts;
* with both diagonals, Hutchinson's geodesics against the exact ones: the
  relative error of their estimated lengths, and how much longer their curves
  are under the exact metric;
* the products per point of the diagonal term for each method, and the
  largest relative difference of ``metric_tensor`` between the exact diagonal
  by reverse mode (``c`` products) and by forward mode (one JVP per decoder
  output, 784) on a few points.

Run: ``python benchmarks/feature_metric.py [--pairs 32] [--features 32]
[--diagonal exact|hutchinson] [--probes 4] [--device cuda] [--budget BYTES]
[--quick] [--out FILE]``; ``--quick`` runs tiny sizes in seconds.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_decoders import PeakMemory, conv_decoder, timed

import latentgeo
from latentgeo.curves import curve_length
from latentgeo.metrics import FeatureMetric, Metric, as_metric
from latentgeo.metrics.feature_diagonal import exact_feature_diagonal
from latentgeo.solvers import GeodesicResult, connecting_geodesic


def cnn_classifier(features: int = 32) -> nn.Sequential:
    """Two strided convolutions and a linear layer, 1×28×28 → ``features`` (random weights)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1),  # 14 × 14
        nn.ELU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),  # 7 × 7
        nn.ELU(),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, features),
    ).eval()


def geodesic_row(
    name: str, metric: Metric, z0: torch.Tensor, z1: torch.Tensor, opts: dict[str, object],
    device: torch.device,
) -> tuple[float, float, list[str], GeodesicResult]:  # fmt: skip
    """One call on all pairs: CPU s, wall s, the table's cells after the name, the result."""
    connecting_geodesic(metric, z0[:1], z1[:1], **opts)  # warm-up: tracing, footprints
    meter = PeakMemory(device)
    with meter.measure():
        res, cpu, wall = timed(lambda: connecting_geodesic(metric, z0, z1, **opts), device)
    status = Counter(str(s.value) for s in res.status)  # type: ignore[attr-defined]
    iters = sorted(res.iterations.tolist())  # type: ignore[attr-defined]
    states = " ".join(f"{k}:{v}" for k, v in sorted(status.items()))
    per_iter = 1000 * cpu / max(sum(iters), 1)
    median = str(iters[len(iters) // 2])
    cells = [name, f"{meter.peak / 2**20:.0f}", median, f"{per_iter:.0f}", states]
    return cpu, wall, cells, res  # type: ignore[return-value]


def emit_estimate_error(
    exact: Metric, by_exact: GeodesicResult, by_estimate: GeodesicResult,
    emit: Callable[[str], None],
) -> None:  # fmt: skip
    """How far Hutchinson's geodesics are from the exact ones, pair by pair: their
    estimated lengths against the exact geodesics' lengths, and their curves' lengths under
    the exact metric (how much longer than the exact geodesic they are)."""
    both = by_exact.converged & by_estimate.converged
    if not bool(both.any()):
        emit("hutchinson against exact: no pair converged under both")
        return
    true = by_exact.length[both]
    estimated = (by_estimate.length[both] - true).abs() / true
    with torch.no_grad():
        detour = curve_length(exact, by_estimate.curve)[both] / true - 1  # type: ignore[arg-type]
    emit(f"hutchinson against exact, {int(both.sum())} pairs converged under both: "
         f"estimated length off by {float(estimated.median()):.1%} (median), "
         f"{float(estimated.max()):.1%} (largest); its curves are "
         f"{float(detour.median()):+.2%} (median), {float(detour.max()):+.2%} (largest) "
         "longer than the exact geodesics under the exact metric")  # fmt: skip


def diagonal_check(features: int, d: int, n: int) -> float:
    """Largest relative difference of the diagonal ``diag(J_hᵀ J_h)`` by reverse mode and
    by forward mode (one JVP per decoder output) at ``n`` decoded points."""
    decoder, cnn = conv_decoder().double(), cnn_classifier(features).double()
    z = torch.randn(n, d, dtype=torch.float64)

    def flat(x: torch.Tensor) -> torch.Tensor:
        return cnn(x.reshape(-1, 1, 28, 28)).reshape(x.shape[0], -1)

    with torch.no_grad():
        mean = decoder(z).mean.reshape(n, -1)
        rev = exact_feature_diagonal(flat, mean, mode="reverse")
        fwd = exact_feature_diagonal(flat, mean, mode="forward")
    return float((rev - fwd).abs().max() / fwd.abs().max())


def main(argv: list[str] | None = None) -> None:
    """Print the table (and write it to ``--out``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=int, default=None, help="memory budget in bytes")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--diagonal", nargs="+", default=["exact"], choices=["exact", "hutchinson"])
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--out", default=None, help="also write the output to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.budget is not None:
        latentgeo.set_memory_budget(args.budget)
    text = io.StringIO()

    def emit(line: str) -> None:
        print(line, flush=True)
        text.write(line + "\n")

    pairs = 1 if args.quick else args.pairs
    opts: dict[str, object] = {"max_iter": 2} if args.quick else {}
    budget = latentgeo.current_memory_budget(device)
    emit(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {device}, "
         f"{args.dtype}, memory budget {budget / 2**20:.0f} MiB"
         f"{' (set)' if args.budget else ' (default: share of available memory)'}"
         f"{', quick' if args.quick else ''}")  # fmt: skip
    decoder = conv_decoder().to(device, dtype)
    torch.manual_seed(0)
    cnn = cnn_classifier(args.features).to(device, dtype)
    metrics: list[tuple[str, Metric]] = [("plain (expected metric)", as_metric(decoder))]
    for method in args.diagonal:
        probes = args.probes if method == "hutchinson" else None
        metric = FeatureMetric(decoder, cnn, data_shape=(1, 28, 28), diagonal=method, probes=probes)
        metrics.append((f"feature, {method}" + (f" ({probes} probes)" if probes else ""), metric))
    emit(f"decoder: conv VAE d=16 (784 outputs, RBF precision); feature map: CNN classifier, "
         f"{args.features} outputs")  # fmt: skip
    emit(f"products of the CNN per point for diag(J_hᵀJ_h): exact {min(args.features, 784)} "
         f"(one per feature; forward mode would take 784), hutchinson {args.probes}")  # fmt: skip
    emit("exact: the rows of J_h pulled back layer by layer (sequential_rows: the CNN is an "
         "nn.Sequential), reused for J_h J_μ")  # fmt: skip
    emit("hutchinson: the probes, shared by every point (a fixed metric), pulled back the "
         "same way")  # fmt: skip
    emit("")
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(pairs, 16, generator=gen, dtype=dtype).to(device)
    z1 = torch.randn(pairs, 16, generator=gen, dtype=dtype).to(device)
    emit(f"connecting_geodesic({'max_iter=2' if args.quick else 'defaults'}), {pairs} pairs "
         "in one call:")  # fmt: skip
    emit("")
    emit("| metric | CPU s | wall s | CPU ÷ plain | wall ÷ plain | peak MiB | median iters "
         "| CPU ms / pair-iteration | status |")  # fmt: skip
    emit("|---|---|---|---|---|---|---|---|---|")
    base: tuple[float, float] | None = None
    results: dict[str, GeodesicResult] = {}
    for (name, metric), method in zip(metrics, ["plain", *args.diagonal], strict=True):
        cpu, wall, cells, results[method] = geodesic_row(name, metric, z0, z1, opts, device)
        base = base or (cpu, wall)
        emit(f"| {cells[0]} | {cpu:.2f} | {wall:.2f} | {cpu / base[0]:.2f}× | "
             f"{wall / base[1]:.2f}× | {' | '.join(cells[1:])} |")  # fmt: skip
    emit("")
    if {"exact", "hutchinson"} <= results.keys():
        exact_metric = metrics[1 + args.diagonal.index("exact")][1]
        emit_estimate_error(exact_metric, results["exact"], results["hutchinson"], emit)
    err = diagonal_check(args.features, 16, 3)
    emit(f"diag(J_hᵀJ_h), reverse ({args.features} products) vs forward (784), float64, "
         f"3 points: largest relative difference {err:.1e}")  # fmt: skip
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    emit(f"process peak RSS: {maxrss / 2**20:.0f} MiB")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
