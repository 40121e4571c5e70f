"""Geodesics and metrics on decoders of realistic size, under the memory budget.

Two decoders with random weights of realistic scale (PyTorch's default
initialisation from a fixed seed, so that every run solves the same problems;
the RBF precision with centres spread like latent codes):

* ``conv``: a VAE decoder with d = 16 latents, a transposed-convolution mean
  16 → 32·7·7 → 32×14×14 → 1×28×28 (ELU), and an RBF precision (64 centres,
  784 outputs); its metric is the Gaussian expected metric.
* ``mlp``: d = 50, 50 → 256 → 256 → 784 (tanh), deterministic.

Printed, with the budget in force (``latentgeo.current_memory_budget``):

* connecting geodesics at default settings, 1, 10 and 50 pairs per call: CPU
  and wall seconds per pair, status counts, and the peak memory of the call
  (resident set size above the level before it, sampled every 5 ms, on the
  CPU; ``torch.cuda.max_memory_allocated`` on CUDA);
* ``metric_tensor`` of the MLP on N points ÷ a forward pass, and ÷ a
  hand-written exact Jacobian of the same MLP (no autograd: the chain rule as
  three batched products) and ÷ that Jacobian followed by ``JᵀJ``, all in the
  same run, with the largest difference of the two metrics;
* ``metric_tensor`` per point of both decoders in chunks of 8–128 MiB and in
  one chunk (``chunks``): the measurement behind ``CPU_CHUNK_BYTES``;
* the conv VAE's ``metric_tensor`` and energy with its ``32 → 32`` transposed
  convolution channels-last and in the plain layout (``layout``);
* ``scalar_curvature`` of both decoders: seconds and peak memory (``curvature``).

Run: ``python benchmarks/real_decoders.py [--device cuda] [--budget BYTES]
[--quick] [--out FILE] [--only conv mlp cost chunks layout curvature] [--sizes 1,50] [--total 20]``;
``--quick`` runs tiny sizes in seconds (the test suite smoke-runs it).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

import latentgeo
import latentgeo.memory
from latentgeo import _chunked
from latentgeo.geometry import scalar_curvature
from latentgeo.metrics import as_metric
from latentgeo.metrics.forward import transposed
from latentgeo.models import GaussianDecoder, RBFPrecision
from latentgeo.solvers import connecting_geodesic


def conv_decoder(d: int = 16, seed: int = 0) -> GaussianDecoder:
    """The transposed-convolution VAE decoder with an RBF precision (random weights, the
    same for a given ``seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _conv_decoder(d)


def _conv_decoder(d: int) -> GaussianDecoder:
    mean = nn.Sequential(
        nn.Linear(d, 32 * 7 * 7),
        nn.ELU(),
        nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),  # 14 × 14
        nn.ELU(),
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 28 × 28
        nn.Flatten(),
    )
    rbf = RBFPrecision(d, 784, num_centres=64)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        rbf.centres.copy_(torch.randn(64, d, generator=gen))
        rbf.bandwidths.fill_(0.5 / (0.5 * d**0.5) ** 2)  # λ = ½ (a · mean distance)⁻²
        rbf.raw_weight.copy_(torch.randn(784, 64, generator=gen))
    return GaussianDecoder(mean, rbf).eval()


def mlp_decoder(d: int = 50, seed: int = 0) -> nn.Sequential:
    """The MLP d → 256 → 256 → 784 (tanh), random weights (the same for a given ``seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(d, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 784)
        ).eval()


def exact_jacobian(net: nn.Sequential, z: Tensor) -> Tensor:
    """``Jᵀ (N, d, 784)`` of the MLP by the chain rule written out (no autograd): the
    tangents of the d basis directions as rows, each layer one 2-D product."""
    l1, _, l2, _, l3 = net
    n, d = z.shape
    h1 = torch.tanh(torch.addmm(l1.bias, z, l1.weight.T))
    h2 = torch.tanh(torch.addmm(l2.bias, h1, l2.weight.T))
    t1 = l1.weight.T[None] * (1 - h1 * h1)[:, None, :]  # (N, d, 256)
    t2 = (t1.reshape(n * d, -1) @ l2.weight.T).reshape(n, d, -1) * (1 - h2 * h2)[:, None, :]
    return (t2.reshape(n * d, -1) @ l3.weight.T).reshape(n, d, -1)


def exact_gram(net: nn.Sequential, z: Tensor) -> Tensor:
    """``G = JᵀJ (N, d, d)`` of the MLP written out the cheapest way we know by hand (no
    autograd): the tangents up to the last hidden layer, ``A (N, d, 256)``, then
    ``A (W₃ᵀW₃) Aᵀ``, so that the 784-wide Jacobian is never formed."""
    l1, _, l2, _, l3 = net
    n, d = z.shape
    h1 = torch.tanh(torch.addmm(l1.bias, z, l1.weight.T))
    h2 = torch.tanh(torch.addmm(l2.bias, h1, l2.weight.T))
    t1 = l1.weight.T[None] * (1 - h1 * h1)[:, None, :]
    t2 = (t1.reshape(n * d, -1) @ l2.weight.T).reshape(n, d, -1) * (1 - h2 * h2)[:, None, :]
    gram = l3.weight.T @ l3.weight
    return (t2.reshape(n * d, -1) @ gram).reshape(n, d, -1) @ t2.mT


class PeakMemory:
    """Peak memory of a block: RSS above its start (sampled), or CUDA's allocator peak."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    @contextmanager
    def measure(self) -> Iterator[None]:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            start = torch.cuda.memory_allocated(self.device)
            yield
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated(self.device) - start
            return
        start = _rss()
        top = [start]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.005):
                top[0] = max(top[0], _rss())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.peak = max(top[0], _rss()) - start


def _rss() -> int:
    """Resident set size now, in bytes (psutil, else /proc/self/statm)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[object, float, float]:
    """``fn()``, its CPU seconds and wall seconds."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def geodesic_rows(
    name: str, decoder: nn.Module, d: int, sizes: list[int], total: int, opts: dict[str, object],
    device: torch.device, dtype: torch.dtype, emit: Callable[[str], None],
) -> None:  # fmt: skip
    """Time per pair at ``sizes`` pairs per call, ``total`` pairs each (same pairs)."""
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(total, d, generator=gen, dtype=dtype).to(device)
    z1 = torch.randn(total, d, generator=gen, dtype=dtype).to(device)
    metric = as_metric(decoder)
    connecting_geodesic(metric, z0[:1], z1[:1], **opts)  # warm-up: tracing, footprints
    for size in sizes:
        peak, cpu, wall, status, iters = 0, 0.0, 0.0, Counter[str](), []
        for start in range(0, total, size):
            rows = slice(start, start + size)
            meter = PeakMemory(device)
            with meter.measure():
                res, c, w = timed(lambda r=rows: connecting_geodesic(metric, z0[r], z1[r], **opts),
                                  device)  # fmt: skip
            peak, cpu, wall = max(peak, meter.peak), cpu + c, wall + w
            status.update(str(s.value) for s in res.status)  # type: ignore[attr-defined]
            iters += res.iterations.tolist()  # type: ignore[attr-defined]
        states = " ".join(f"{k}:{v}" for k, v in sorted(status.items()))
        emit(
            f"| {name} | {size} | {total} | {cpu / total:.3f} | {wall / total:.3f} | "
            f"{peak / 2**20:.0f} | {sorted(iters)[len(iters) // 2]} | {states} |"
        )


def metric_cost(
    n: int, repeats: int, device: torch.device, dtype: torch.dtype, emit: Callable[[str], None]
) -> None:
    """``metric_tensor`` of the d = 50 MLP against a forward pass and the exact Jacobian."""
    net = mlp_decoder().to(device, dtype)
    metric = as_metric(net)
    z = torch.randn(n, 50, dtype=dtype, device=device)
    with torch.no_grad():
        g = metric.metric_tensor(z)
        jt = exact_jacobian(net, z)
        exact = jt @ jt.mT
        err = float((g - exact).abs().max() / exact.abs().max())
        err_gram = float((exact_gram(net, z) - exact).abs().max() / exact.abs().max())
        cases = {
            "forward": lambda: net(z),
            "metric_tensor": lambda: metric.metric_tensor(z),
            "exact J": lambda: exact_jacobian(net, z),
            "exact J then JᵀJ": lambda: (lambda jt: jt @ jt.mT)(exact_jacobian(net, z)),
            "exact G via W₃ᵀW₃": lambda: exact_gram(net, z),
        }
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(repeats):  # alternating, fastest kept
            for key, fn in cases.items():
                best[key] = min(best[key], timed(fn, device)[2])
    emit(f"metric_tensor, MLP 50→256→256→784, N = {n} points, {dtype}, fastest of {repeats}:")
    emit("")
    emit("| computation | time [ms] | ÷ forward | metric_tensor ÷ it |")
    emit("|---|---|---|---|")
    for key, t in best.items():
        emit(f"| {key} | {1e3 * t:.2f} | {t / best['forward']:.1f}× | "
             f"{best['metric_tensor'] / t:.2f}× |")  # fmt: skip
    emit("")
    emit(f"largest relative difference, metric_tensor vs exact JᵀJ: {err:.1e}; "
         f"exact G via W₃ᵀW₃ vs exact JᵀJ: {err_gram:.1e}")  # fmt: skip


def chunk_rows(
    n: int, repeats: int, device: torch.device, dtype: torch.dtype, emit: Callable[[str], None]
) -> None:
    """``metric_tensor`` per point of both decoders in chunks of a given size in bytes (by
    the footprint latentgeo measures), alternating, median of ``repeats``: what
    ``latentgeo.memory.CPU_CHUNK_BYTES`` is chosen from."""
    caps = [8, 16, 32, 128]
    emit(f"metric_tensor per point [µs] by chunk size (N = {n} points, median of {repeats}):")
    emit("")
    emit("| decoder | " + " | ".join(f"{c} MiB" for c in caps) + " | one chunk |")
    emit("|---|" + "---|" * (len(caps) + 1))
    for name, dec, d in [("conv VAE d=16", conv_decoder(), 16), ("MLP d=50", mlp_decoder(), 50)]:
        metric = as_metric(dec.to(device, dtype))
        z = torch.randn(n, d, dtype=dtype, device=device)
        with torch.no_grad():
            metric.metric_tensor(z)  # measures the footprint
            owner, prefix = metric.footprint_owner()
            key = ((prefix, "metric_tensor"), d, dtype, device, False)  # False: no_grad
            known = _chunked.footprint(owner, key)
            assert known is not None
            sizes = [max(1, int(c * 2**20 // known.per_point)) for c in caps] + [n]
            times: dict[int, list[float]] = {s: [] for s in sizes}
            for _ in range(repeats):
                for size in sizes:
                    metric.chunk_size = size
                    run = metric.metric_tensor
                    times[size].append(timed(lambda r=run, v=z: r(v), device)[1])
        cells = [f"{1e6 * sorted(t)[len(t) // 2] / n:.0f} ({s})" for s, t in times.items()]
        emit(f"| {name} | " + " | ".join(cells) + " |")
    emit("")
    emit(f"(points per chunk in brackets; latentgeo's cap on the CPU: "
         f"{latentgeo.memory.CPU_CHUNK_BYTES / 2**20:.0f} MiB)")  # fmt: skip


def layout_rows(
    n: int, repeats: int, device: torch.device, dtype: torch.dtype, emit: Callable[[str], None]
) -> None:
    """The conv VAE's ``metric_tensor`` and energy (chords and their gradient) per point with
    its ``32 → 32`` transposed convolution run channels-last (latentgeo's default on the
    CPU) and in the plain layout (``transposed.CHANNELS_LAST = False``), alternating."""
    metric = as_metric(conv_decoder().to(device, dtype))
    z = torch.randn(n, 16, dtype=dtype, device=device)
    pos = z.reshape(-1, 16, 16)

    def energy() -> None:
        p = pos.detach().requires_grad_(True)
        torch.autograd.grad(metric.chords(p).sum(), p)

    def tensor() -> None:
        with torch.no_grad():
            metric.metric_tensor(z)

    runs = {"metric_tensor": tensor, "energy and gradient": energy}
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(repeats):
        for last in (True, False):
            transposed.CHANNELS_LAST = last
            for name, fn in runs.items():
                times.setdefault((name, last), []).append(timed(fn, device)[1])
    transposed.CHANNELS_LAST = True
    emit(f"conv VAE per point [µs], N = {n} points, median of {repeats}, by the layout of "
         "its 32 → 32 transposed convolution:")  # fmt: skip
    emit("")
    emit("| computation | channels-last (default) | plain layout | plain ÷ channels-last |")
    emit("|---|---|---|---|")
    for name in runs:
        last, plain = (sorted(times[name, v])[repeats // 2] / n for v in (True, False))
        emit(f"| {name} | {1e6 * last:.0f} | {1e6 * plain:.0f} | {plain / last:.2f}× |")


def curvature_rows(
    n: int, device: torch.device, dtype: torch.dtype, emit: Callable[[str], None]
) -> None:
    """``scalar_curvature`` of ``n`` points of both decoders (``d(d − 1)/2`` planes a point,
    chunked by the memory budget): seconds and peak memory of the call."""
    emit(f"scalar_curvature of {n} points (planes chunked by the memory budget):")
    emit("")
    emit("| decoder | planes | CPU s/point | wall s/point | peak MiB |")
    emit("|---|---|---|---|---|")
    for name, dec, d in [("conv VAE d=16", conv_decoder(), 16), ("MLP d=50", mlp_decoder(), 50)]:
        metric = as_metric(dec.to(device, dtype))
        z = torch.randn(n, d, dtype=dtype, device=device)
        meter = PeakMemory(device)
        with meter.measure():
            _, cpu, wall = timed(lambda m=metric, v=z: scalar_curvature(m, v), device)
        emit(f"| {name} | {n * d * (d - 1) // 2} | {cpu / n:.2f} | {wall / n:.2f} | "
             f"{meter.peak / 2**20:.0f} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Print the tables (and write them to ``--out``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=int, default=None, help="memory budget in bytes")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument(
        "--only",
        choices=["conv", "mlp", "cost", "chunks", "layout", "curvature"],
        nargs="*",
        default=None,
    )
    parser.add_argument("--out", default=None, help="also write the output to this file")
    parser.add_argument(
        "--sizes", type=lambda s: [int(v) for v in s.split(",")], default=None,
        help="pairs per call, comma-separated (default 1,10,50)",
    )  # fmt: skip
    parser.add_argument("--total", type=int, default=None, help="pairs per row (default 50)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.budget is not None:
        latentgeo.set_memory_budget(args.budget)
    text = io.StringIO()

    def emit(line: str) -> None:
        print(line, flush=True)
        text.write(line + "\n")

    only = set(args.only or ["conv", "mlp", "cost", "chunks", "layout", "curvature"])
    budget = latentgeo.current_memory_budget(device)
    emit(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {device}, "
         f"{args.dtype}, memory budget {budget / 2**20:.0f} MiB"
         f"{' (set)' if args.budget else ' (default: share of available memory)'}"
         f"{', quick' if args.quick else ''}")  # fmt: skip
    emit("")
    sizes, total = ([1, 2, 4], 4) if args.quick else ([1, 10, 50], 50)
    sizes, total = args.sizes or sizes, args.total or total
    opts: dict[str, object] = {"max_iter": 5} if args.quick else {}
    emit(f"connecting_geodesic({'max_iter=5' if args.quick else 'defaults'}), {total} pairs "
         "split into calls of the given size; per pair: CPU and wall seconds:")  # fmt: skip
    emit("")
    emit("| decoder | pairs/call | pairs | CPU s/pair | wall s/pair | peak MiB | "
         "median iters | status |")  # fmt: skip
    emit("|---|---|---|---|---|---|---|---|")
    if "conv" in only:
        dec = conv_decoder().to(device, dtype)
        geodesic_rows("conv VAE d=16", dec, 16, sizes, total, opts, device, dtype, emit)
    if "mlp" in only:
        mlp = mlp_decoder().to(device, dtype)
        geodesic_rows("MLP d=50", mlp, 50, sizes, total, opts, device, dtype, emit)
    emit("")
    if "cost" in only:
        metric_cost(64 if args.quick else 1024, 3 if args.quick else 20, device, dtype, emit)
    if "chunks" in only:
        emit("")
        chunk_rows(64 if args.quick else 512, 1 if args.quick else 7, device, dtype, emit)
    if "layout" in only:
        emit("")
        layout_rows(64 if args.quick else 512, 1 if args.quick else 7, device, dtype, emit)
    if "curvature" in only:
        emit("")
        curvature_rows(1 if args.quick else 4, device, dtype, emit)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    emit("")
    emit(f"process peak RSS: {maxrss / 2**20:.0f} MiB")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
