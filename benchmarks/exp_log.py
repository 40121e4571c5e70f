"""Exponential and logarithm maps on MLP decoders: cost ratios, accuracy, and geomstats.

Not a test. Three parts, all measured in this run:

1. Throughput: a random MLP 2 → 64 → 64 → 784 (tanh); ``--n-exp`` exponential
   maps in ONE batched call (dopri5 and RK4, default tolerance).
2. The log map's cost, at d = 2 (MLP 2 → 64 → 64 → 784), d = 16 and d = 50
   (MLP d → 256 → 256 → 784, tanh): ``--log-pairs`` pairs (8 at d = 50)
   ``z1 = exp_{z0}(v)``; the log map at its default tolerance (relative error
   1e-6 in float64) divided by ``connecting_geodesic`` on the same pairs and by
   one exponential map of the same tolerance (``exp_map`` at its default,
   which is the same 1e-6): the log map's cost in exp-map equivalents; plus the
   exponential maps it shot per pair and its relative error against ``v``.
   All three run once on the pairs first, then ``--repeats`` times in turn
   (once at d = 50); medians of CPU seconds (one thread) are compared, and
   issue 13's goals (≤ 3 ``connecting_geodesic`` at d = 2 and 16, ≤ 20 exp
   maps, 8 pairs at d = 50 under a minute) are printed against them.
3. geomstats 2.8.0 (``PullbackMetric`` on an ``ImmersedSet`` whose immersion
   is the same decoder, PyTorch backend, its default exp solver) computes a few
   exp maps at the same points; the ratio of the times per map and how far
   apart the two answers are.

geomstats needs ``numpy < 2.3``; if it is not importable here, point
``--geomstats-python`` at an interpreter that has it (and this torch), e.g. a
venv made with ``--system-site-packages`` or a ``.pth`` file pointing at this
environment: the geomstats part then runs in that interpreter.

Usage::

    python benchmarks/exp_log.py                         # CPU, one thread, float64
    python benchmarks/exp_log.py --dims 2 16             # skip d = 50
    python benchmarks/exp_log.py --device cuda --threads 0
    python benchmarks/exp_log.py --geomstats-python .venv-geomstats/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")


def make_decoder(dtype: torch.dtype, d: int = 2) -> nn.Module:
    torch.manual_seed(0)
    h = 64 if d == 2 else 256
    net = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 784))
    return net.to(dtype).requires_grad_(False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def geomstats_worker(weights: str, points: str, out: str) -> None:
    """Run geomstats' exp map on the saved decoder and points; write times and results."""
    os.environ.setdefault("GEOMSTATS_BACKEND", "pytorch")
    import geomstats
    import geomstats.backend as gs  # noqa: F401
    from geomstats.geometry.base import ImmersedSet
    from geomstats.geometry.euclidean import Euclidean

    data = torch.load(points)
    decoder = make_decoder(data["z"].dtype)
    decoder.load_state_dict(torch.load(weights))

    class Decoded(ImmersedSet):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(dim=2)

        def immersion(self, point: torch.Tensor) -> torch.Tensor:
            return decoder(point)

        def _define_embedding_space(self) -> Euclidean:
            return Euclidean(dim=784)

    space = Decoded()
    ends, times = [], []
    for z, v in zip(data["z"], data["v"], strict=True):
        start = time.perf_counter()
        end = space.metric.exp(v, z)
        times.append(time.perf_counter() - start)
        ends.append(torch.as_tensor(end).detach().reshape(2))
    torch.save({"times": times, "ends": torch.stack(ends), "version": geomstats.__version__}, out)


def run_geomstats(
    python: str, decoder: nn.Module, z: torch.Tensor, v: torch.Tensor
) -> dict[str, object] | str:
    with tempfile.TemporaryDirectory() as tmp:
        w, p, o = (str(Path(tmp) / name) for name in ("w.pt", "p.pt", "o.pt"))
        torch.save({k: t.cpu() for k, t in decoder.state_dict().items()}, w)
        torch.save({"z": z.cpu(), "v": v.cpu()}, p)
        cmd = [python, __file__, "--geomstats-worker", w, p, o]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
        return dict(torch.load(o))


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def cost(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """``fn()`` and its cost: CPU seconds of this process on one CPU thread (robust to
    other jobs on the machine), else wall seconds."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        start = time.process_time()
        out = fn()
        return out, time.process_time() - start
    return timed(fn, device)


def log_map_costs(
    d: int, n: int, dtype: torch.dtype, device: torch.device, repeats: int
) -> dict[str, float]:
    """The log map against connecting_geodesic and one exponential map, on n pairs at d.

    All three run once on the same pairs before timing (first-call costs, the memory
    budget's footprint probes), then ``repeats`` times in turn; the medians are compared.
    """
    from latentgeo.solvers import connecting_geodesic, exp_map_result, log_map_result

    decoder = make_decoder(dtype, d).to(device)
    gen = torch.Generator().manual_seed(2)
    z0 = torch.randn(n, d, generator=gen, dtype=dtype).to(device)
    v = 0.5 * torch.randn(n, d, generator=gen, dtype=dtype).to(device)
    z1 = exp_map_result(decoder, z0, v, rtol=1e-11, atol=0.0).point  # v is the answer
    calls: dict[str, Callable[[], Any]] = {
        "cg": lambda: connecting_geodesic(decoder, z0, z1),
        "exp": lambda: exp_map_result(decoder, z0, v),
        "log": lambda: log_map_result(decoder, z0, z1),
    }
    outs = {k: f() for k, f in calls.items()}  # warm-up, on these very pairs
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for k, f in calls.items():
            outs[k], t = cost(f, device)
            times[k].append(t)
    t_cg, t_exp, t_log = (statistics.median(times[k]) for k in ("cg", "exp", "log"))
    cg, log = outs["cg"], outs["log"]
    ok = log.converged
    rel = (log.velocity - v).norm(dim=-1) / v.norm(dim=-1)
    worst = rel[ok].max().item() if bool(ok.any()) else float("nan")
    shots = log.iterations.double()
    maps = log.exp_maps.double() - shots  # the loose ones that measure the Jacobian
    print(
        f"log_map d={d:<2} ({n} pairs, default tolerance, median of {repeats}): {t_log:.2f} s; "
        f"log / connecting_geodesic = {t_log / t_cg:.2f} ({t_cg:.2f} s, converged "
        f"{cg.num_converged}/{n}); log / exp_map = {t_log / t_exp:.2f} exp-map equivalents "
        f"({t_exp:.2f} s); log converged {int(ok.sum())}/{n}, exponential maps (shots) per "
        f"pair {shots.mean().item():.1f} (max {int(shots.max())}) + {maps.mean().item():.1f} loose "
        f"for the Jacobian; max relative error {worst:.1e}"
    )
    return {
        "pairs": n,
        "log_s": t_log,
        "cg_s": t_cg,
        "exp_s": t_exp,
        "log_per_cg": t_log / t_cg,
        "log_per_exp": t_log / t_exp,
        "shots_mean": shots.mean().item(),
        "jacobian_maps_mean": maps.mean().item(),
        "max_rel_error": worst,
    }


def goals(figures: dict[str, object]) -> None:
    """Issue 13's goals for the log map, from this run's figures."""
    for key, fig in figures.items():
        if not key.startswith("log_d") or not isinstance(fig, dict):
            continue
        d = int(key[5:])
        line = f"goal d={d}: log / exp_map {fig['log_per_exp']:.2f} <= 20"
        if d in (2, 16):
            line += f", log / connecting_geodesic {fig['log_per_cg']:.2f} <= 3"
        if d == 50:
            line += f", {fig['pairs']} pairs in {fig['log_s']:.1f} s < 60"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: leave as is)")
    parser.add_argument("--n-exp", type=int, default=1024)
    parser.add_argument("--log-pairs", type=int, default=16, help="pairs at d = 2 and 16")
    parser.add_argument("--dims", type=int, nargs="*", default=[2, 16, 50])
    parser.add_argument("--repeats", type=int, default=3, help="timed log-map runs (1 at d = 50)")
    parser.add_argument("--geomstats-points", type=int, default=2)
    parser.add_argument("--geomstats-python", default=None)
    parser.add_argument("--skip-geomstats", action="store_true")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--geomstats-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.geomstats_worker:
        geomstats_worker(*args.geomstats_worker)
        return

    from latentgeo.solvers import exp_map, exp_map_result

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    decoder = make_decoder(dtype).to(device)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(args.n_exp, 2, generator=gen, dtype=dtype).to(device)
    v = 0.5 * torch.randn(args.n_exp, 2, generator=gen, dtype=dtype).to(device)
    print(
        f"config: MLP 2-64-64-784 tanh, {args.dtype}, device={device}, "
        f"torch {torch.__version__}, threads={torch.get_num_threads()}"
    )
    figures: dict[str, object] = {"device": str(device), "dtype": args.dtype}

    exp_map(decoder, z[:4], v[:4])  # warm-up (tracing, first-call costs)
    sync(device)
    start = time.perf_counter()
    info = exp_map_result(decoder, z, v)
    sync(device)
    t_exp = time.perf_counter() - start
    ok = int(info.converged.sum())
    steps = info.steps.double().mean().item()
    print(
        f"exp_map  (dopri5, rtol/atol default): {args.n_exp} maps in {t_exp:.2f} s = "
        f"{1e3 * t_exp / args.n_exp:.2f} ms/map; converged {ok}/{args.n_exp}; "
        f"mean accepted steps {steps:.1f}"
    )
    figures.update(exp_total_s=t_exp, exp_ms_per_map=1e3 * t_exp / args.n_exp)

    start = time.perf_counter()
    rk = exp_map_result(decoder, z, v, method="rk4")
    sync(device)
    t_rk4 = time.perf_counter() - start
    err = (rk.point - info.point).abs().max().item()
    print(
        f"exp_map  (rk4, steps from step doubling): {args.n_exp} maps in {t_rk4:.2f} s = "
        f"{1e3 * t_rk4 / args.n_exp:.2f} ms/map; converged {int(rk.converged.sum())}; "
        f"steps {int(rk.steps.max())}; max |rk4 - dopri5| = {err:.1e}"
    )
    figures.update(rk4_ms_per_map=1e3 * t_rk4 / args.n_exp)

    for d in args.dims:
        pairs, repeats = (args.log_pairs, args.repeats) if d != 50 else (8, 1)
        figures[f"log_d{d}"] = log_map_costs(d, pairs, dtype, device, repeats)
    goals(figures)

    if not args.skip_geomstats and args.geomstats_points > 0:
        k = args.geomstats_points
        python = args.geomstats_python
        if python is None:
            try:
                import geomstats  # noqa: F401

                python = sys.executable
            except ImportError:
                python = None
        if python is None:
            print("geomstats: not installed here (pass --geomstats-python); skipped")
        else:
            zs = z[:k].double().cpu()
            res = run_geomstats(python, make_decoder(torch.float64), zs, v[:k].double().cpu())
            if isinstance(res, str):
                print(f"geomstats: failed ({res}); skipped")
            else:
                times = res["times"]
                per = sum(times) / len(times)  # type: ignore[arg-type]
                ours = exp_map(make_decoder(torch.float64), zs, v[:k].double().cpu())
                diff = (ours - res["ends"]).abs().max().item()  # type: ignore[operator]
                print(
                    f"geomstats {res['version']} PullbackMetric.exp (default solver), "
                    f"{k} points one at a time: {per:.2f} s/map; latentgeo is "
                    f"{per / (t_exp / args.n_exp):.0f}x faster per exp map; "
                    f"max |latentgeo - geomstats| end point = {diff:.1e}"
                )
                figures.update(geomstats_s_per_map=per, ratio=per / (t_exp / args.n_exp))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
