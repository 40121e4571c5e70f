"""Costs of latentgeo.geometry relative to the operations they are built on.

Not a test. Prints its configuration (torch version, threads, device, dtype)
and these ratios, each pair timed alternately in this run (fastest of
``--repeat`` runs kept):

* parallel transport along ``exp_z(v)`` (geodesic and vectors integrated
  together) / the exponential map alone, same points, same tolerances
  (goal ≤ 3×): on MLP decoders 2 → 64 → 64 → 784 and 16 → 64 → 64 → 784 and on
  the sphere;
* sectional curvature at d = 16 / one ``metric_tensor`` at the same points
  (goal ≤ 50×): an MLP decoder 16 → 64 → 64 → 784;
* a Fréchet mean (``method="log"``) of S sets of N points, and a LAND fit
  (mixture of 2, exact volume) on ring data under the local PCA metric: seconds,
  and in units of one exponential map of the same batch size.

Usage::

    python benchmarks/geometry.py                   # CPU, one thread, float64
    python benchmarks/geometry.py --device cuda --threads 0 --points 1024
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from latentgeo.data import ring
from latentgeo.geometry import fit_land, frechet_mean, parallel_transport, sectional_curvature
from latentgeo.metrics import LocalPCAMetric, Metric, as_metric
from latentgeo.solvers import exp_map
from latentgeo.testing import StereographicSphere


def mlp(d: int, dtype: torch.dtype, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(d, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                        nn.Linear(64, 784))  # fmt: skip
    return net.to(device=device, dtype=dtype).requires_grad_(False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def alternate(
    fns: dict[str, Callable[[], object]], repeat: int, device: torch.device
) -> dict[str, float]:
    """Fastest time of each function, run alternately ``repeat`` times (after one warm-up each)."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()
    for _ in range(repeat):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def transport_vs_exp(name: str, metric: Metric, z: torch.Tensor, repeat: int) -> None:
    gen = torch.Generator(device="cpu").manual_seed(1)
    # |v| about √2 whatever d (at d = 16, |v| ≈ 4 sent a geodesic of the tanh MLP into
    # saturation, where one pair at max_steps, alone for 6000 steps, was all the timing)
    v = (2 / z.shape[1]) ** 0.5 * torch.randn(z.shape, generator=gen, dtype=z.dtype).to(z.device)
    w = torch.randn(z.shape, generator=gen, dtype=z.dtype).to(z.device)
    times = alternate({
        "exp": lambda: exp_map(metric, z, v),
        "transport": lambda: parallel_transport(metric, z, v, w),
    }, repeat, z.device)  # fmt: skip
    ratio = times["transport"] / times["exp"]
    print(f"transport / exp map [{name}, {z.shape[0]} points]: {times['transport']:.3f} s / "
          f"{times['exp']:.3f} s = {ratio:.2f}x (goal <= 3x)")  # fmt: skip


def curvature_vs_tensor(args: argparse.Namespace, dtype: torch.dtype, device: torch.device) -> None:
    metric = as_metric(mlp(16, dtype, device))
    z = torch.randn(args.points, 16, dtype=dtype, device=device)
    u, v = torch.randn(2, args.points, 16, dtype=dtype, device=device)
    times = alternate({
        "G": lambda: metric.metric_tensor(z),
        "K": lambda: sectional_curvature(metric, z, u, v),
    }, args.repeat, device)  # fmt: skip
    print(
        f"sectional curvature / metric_tensor [MLP 16 -> 784, {args.points} points]: "
        f"{times['K']:.3f} s / {times['G']:.4f} s = {times['K'] / times['G']:.1f}x (goal <= 50x)"
    )


def mean_and_land(args: argparse.Namespace, dtype: torch.dtype, device: torch.device) -> None:
    sphere = as_metric(StereographicSphere())
    sets = torch.randn(args.sets, 1, 2, dtype=dtype, device=device)
    points = sets + 0.3 * torch.randn(args.sets, args.set_size, 2, dtype=dtype, device=device)
    start = time.perf_counter()
    res = frechet_mean(sphere, points, log_options={"init": "straight"})
    mean_s = time.perf_counter() - start
    flat = points.reshape(-1, 2)
    exp_s = alternate({"exp": lambda: exp_map(sphere, flat, 0.1 * flat)}, 1, device)["exp"]
    ok = sum(s == "converged" for s in res.status)
    print(
        f"Fréchet mean [sphere, {args.sets} sets x {args.set_size} points, log maps]: "
        f"{mean_s:.2f} s = {mean_s / exp_s:.0f} exp maps of {flat.shape[0]} points; "
        f"{ok}/{args.sets} converged, median {int(res.iterations.median())} iterations"
    )
    x = ring(args.land_points, noise=0.1, seed=0, dtype=dtype).x.to(device)
    metric = LocalPCAMetric(x, sigma=0.2, rho=1e-2)
    start = time.perf_counter()
    fit = fit_land(metric, x, num_components=2, max_iter=args.land_iter, num_samples=64)
    land_s = time.perf_counter() - start
    exp_s = alternate({"exp": lambda: exp_map(metric, x, 0.1 * x)}, 1, device)["exp"]
    print(
        f"LAND mixture fit [ring, {x.shape[0]} points, 2 components, 64 samples, "
        f"{fit.iterations} EM iterations, {fit.status[0]}]: {land_s:.1f} s = "
        f"{land_s / exp_s:.0f} exp maps of {x.shape[0]} points"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sets", type=int, default=16)
    parser.add_argument("--set-size", type=int, default=8)
    parser.add_argument("--land-points", type=int, default=100)
    parser.add_argument("--land-iter", type=int, default=5)
    parser.add_argument("--only", choices=["transport", "curvature", "means"], default=None,
                        help="run one part only")  # fmt: skip
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
        f"{args.dtype}, {args.points} points, fastest of {args.repeat} alternating runs"
    )
    torch.manual_seed(0)  # the same points in every run (the exp map's cost depends on them)
    z = 0.5 * torch.randn(args.points, 2, dtype=dtype, device=device)
    if args.only in (None, "transport"):
        transport_vs_exp("MLP 2 -> 784", as_metric(mlp(2, dtype, device)), z, args.repeat)
        transport_vs_exp("sphere", as_metric(StereographicSphere()), z, args.repeat)
        z16 = 0.5 * torch.randn(args.points, 16, dtype=dtype, device=device)
        transport_vs_exp("MLP 16 -> 784", as_metric(mlp(16, dtype, device)), z16, args.repeat)
    if args.only in (None, "curvature"):
        curvature_vs_tensor(args, dtype, device)
    if args.only in (None, "means"):
        mean_and_land(args, dtype, device)


if __name__ == "__main__":
    main()
