"""Distance matrices on Dask: throughput of 1 and 2 workers against the in-process call.

Problem: an MLP decoder 2 → 64 → 64 → 784 (tanh, first layer ×4, as in
``benchmarks/geodesics.py``), ``--points`` latent points z ~ N(0, I) (seeded),
all pairs i < j, default solver (``method="spline"``), float64.

For each worker count W in (1, 2) the embedded ``LocalCluster`` of W
processes that ``distance_matrix`` starts without a client (one torch thread
each, loopback, ``WORKER_CONFIG``) is started and warmed (one small job, so the
workers have imported torch and loaded the checkpoint); then, alternately,
``--repeats`` times:

* in process: ``pairwise_geodesic_distances(decoder, z, chunk_size=tile)``
  (torch threads 1), the reference;
* on the cluster: ``distance_matrix(checkpoint, z, tile=tile, client=client)``
  (same pairs, same batches).

The fastest run of each is kept. Printed: pairs per second, the engine's
overhead with 1 worker (``t_dask / t_in_process − 1``; the target is < 10 %
at tiles of ≥ 256 pairs), in wall-clock time and in CPU time (all processes
of the run: this one, which holds the scheduler, and the workers; on a
shared machine the load inflates wall-clock times, much less CPU times), the
speed-up with 2 workers, and the largest difference between the matrices.
Cluster start-up (seconds, once per job without a ``client``) is printed
apart.

Then the sparse mode's error: on ``--sparse-points`` points, the dense matrix
against ``neighbours=k`` for a few k (relative error of the off-diagonal
entries: median, 95th percentile, max; it is ≥ 0 up to the solver's
tolerance, an approximation from above).

Run: ``python benchmarks/distributed.py [--points 64] [--tile 256] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file's name would hide
# the `distributed` package (here and in the worker processes, which inherit sys.path).
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import torch  # noqa: E402

from latentgeo.analysis import distance_matrix, pairwise_geodesic_distances  # noqa: E402
from latentgeo.analysis.distributed.cluster import connect  # noqa: E402
from latentgeo.models import MLP, save  # noqa: E402


def make_decoder(dtype: torch.dtype) -> MLP:
    torch.manual_seed(0)
    net = MLP(2, 784, hidden=(64, 64))
    with torch.no_grad():
        first = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
        first.weight.mul_(4.0)
    return net.to(dtype)


def timed(fn: Any, client: Any = None) -> tuple[float, float, Any]:
    """Wall-clock seconds, CPU seconds (this process, plus the workers' when a client is
    given: on a shared machine CPU time is what the load does not inflate) and the result."""

    def cpu() -> float:
        workers = 0.0 if client is None else sum(client.run(time.process_time).values())
        return time.process_time() + workers

    cpu0, start = cpu(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    return wall, cpu() - cpu0, out


def compare(
    workers: int, args: argparse.Namespace, ckpt: Path, decoder: MLP, z: torch.Tensor
) -> dict[str, float]:
    start = time.perf_counter()
    with connect(workers=workers) as client:  # the embedded cluster distance_matrix starts
        startup = time.perf_counter() - start
        distance_matrix(ckpt, z[:3], tile=args.tile, client=client)  # warm: imports, checkpoint
        best = {"local": math.inf, "dask": math.inf, "cpu_local": math.inf, "cpu_dask": math.inf}
        diff = 0.0
        for _ in range(args.repeats):
            t_local, c_local, ref = timed(
                lambda: pairwise_geodesic_distances(decoder, z, chunk_size=args.tile)
            )
            t_dask, c_dask, res = timed(
                lambda: distance_matrix(ckpt, z, tile=args.tile, client=client), client
            )
            for key, value in zip(best, (t_local, t_dask, c_local, c_dask), strict=True):
                best[key] = min(best[key], value)
            diff = max(diff, float((res.matrix - ref).abs().max()))
            print(
                f"  W={workers}: in process {t_local:7.2f} s ({c_local:6.2f} s CPU), "
                f"dask {t_dask:7.2f} s ({c_dask:6.2f} s CPU, all processes)"
            )
    return {"startup": startup, "diff": diff, **best}


def sparse_error(args: argparse.Namespace, ckpt: Path, z: torch.Tensor) -> None:
    with connect(workers=2) as client:
        dense = distance_matrix(ckpt, z, tile=args.tile, client=client)
        off = ~torch.eye(z.shape[0], dtype=torch.bool)
        print(f"\nsparse mode, N = {z.shape[0]} ({dense.num_pairs} pairs dense):")
        print("  k   geodesics  rel. error: median     p95     max   (min)")
        for k in args.neighbours:
            res = distance_matrix(ckpt, z, neighbours=k, tile=args.tile, client=client)
            rel = ((res.matrix - dense.matrix)[off] / dense.matrix[off]).double()
            q = torch.quantile(rel, torch.tensor([0.5, 0.95], dtype=rel.dtype)).tolist()
            print(
                f"  {k:<3} {res.num_pairs:9d}  {q[0]:18.4f}  {q[1]:6.4f}  {float(rel.max()):6.4f}"
                f"  ({float(rel.min()):.1e})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=64, help="N (N(N-1)/2 pairs)")
    parser.add_argument("--tile", type=int, default=256, help="pairs per tile / chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--sparse-points", type=int, default=40)
    parser.add_argument("--neighbours", type=int, nargs="*", default=[5, 10, 20])
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    decoder = make_decoder(dtype)
    z = torch.randn(args.points, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    pairs = args.points * (args.points - 1) // 2
    print(
        f"latentgeo distance_matrix on Dask | {time.strftime('%Y-%m-%d')} | "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f} | torch {torch.__version__}, threads 1 (here and per worker),"
        f" device cpu, {args.dtype}\nMLP 2-64-64-784 (tanh, first layer x4), N = {args.points}"
        f" ({pairs} pairs), tile = chunk = {args.tile} pairs, method spline, "
        f"best of {args.repeats} alternating runs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save(decoder, Path(tmp) / "decoder.pt")
        rows = {w: compare(w, args, ckpt, decoder, z) for w in (1, 2)}
        print(
            "\nworkers  in-process [pairs/s]  dask [pairs/s]  time ratio  CPU ratio"
            "  start-up [s]  max |diff|"
        )
        for w, r in rows.items():
            print(
                f"{w:7d}  {pairs / r['local']:21.1f}  {pairs / r['dask']:14.1f}  "
                f"{r['dask'] / r['local']:10.3f}  {r['cpu_dask'] / r['cpu_local']:9.3f}  "
                f"{r['startup']:12.1f}  {r['diff']:.1e}"
            )
        print(
            f"overhead with 1 worker: {100 * (rows[1]['dask'] / rows[1]['local'] - 1):+.1f} % "
            f"wall-clock, {100 * (rows[1]['cpu_dask'] / rows[1]['cpu_local'] - 1):+.1f} % CPU; "
            f"speed-up with 2 workers: {rows[2]['local'] / rows[2]['dask']:.2f}x"
        )
        gen = torch.Generator().manual_seed(1)
        zs = torch.randn(args.sparse_points, 2, dtype=dtype, generator=gen)
        sparse_error(args, ckpt, zs)


if __name__ == "__main__":
    main()
