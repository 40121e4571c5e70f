"""Exponential and logarithm maps on an MLP decoder: time per map, and geomstats for comparison.

Not a test. Decoder: a random MLP 2 → 64 → 64 → 784 (tanh). latentgeo computes
``--n-exp`` exponential maps and ``--n-log`` logarithm maps, each in ONE batched
call. geomstats 2.8.0 (``PullbackMetric`` on an ``ImmersedSet`` whose immersion
is the same decoder, PyTorch backend, its default exp solver) computes a few
exp maps at the same points, and the script prints the ratio of the times per
map, both measured in this run, plus how far apart the two answers are.

geomstats needs ``numpy < 2.3``; if it is not importable here, point
``--geomstats-python`` at an interpreter that has it (and this torch), e.g. a
venv made with ``--system-site-packages`` or a ``.pth`` file pointing at this
environment: the geomstats part then runs in that interpreter.

Usage::

    python benchmarks/exp_log.py                         # CPU, one thread, float64
    python benchmarks/exp_log.py --device cuda --threads 0
    python benchmarks/exp_log.py --geomstats-python .venv-geomstats/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def make_decoder(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 784)
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: leave as is)")
    parser.add_argument("--n-exp", type=int, default=1024)
    parser.add_argument("--n-log", type=int, default=256)
    parser.add_argument("--log-init", default="straight", choices=["straight", "energy"])
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

    from latentgeo.solvers import exp_map, exp_map_result, log_map_result

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
    rk = exp_map(decoder, z, v, method="rk4", steps=32)
    sync(device)
    t_rk4 = time.perf_counter() - start
    err = (rk - info.point).abs().max().item()
    print(
        f"exp_map  (rk4, 32 steps):            {args.n_exp} maps in {t_rk4:.2f} s = "
        f"{1e3 * t_rk4 / args.n_exp:.2f} ms/map; max |rk4 - dopri5| = {err:.1e}"
    )
    figures.update(rk4_ms_per_map=1e3 * t_rk4 / args.n_exp)

    nl = min(args.n_log, args.n_exp)
    z0, v0, z1 = z[:nl], v[:nl], info.point[:nl]
    start = time.perf_counter()
    log = log_map_result(decoder, z0, z1, init=args.log_init)
    sync(device)
    t_log = time.perf_counter() - start
    ok = int(log.converged.sum())
    good = log.converged
    err = (log.velocity[good] - v0[good]).norm(dim=-1).max().item() if ok else float("nan")
    statuses = {k: log.status.count(k) for k in sorted(set(log.status))}
    print(
        f"log_map  (init={args.log_init}, RK4 32 steps, Newton): {nl} maps in {t_log:.2f} s = "
        f"{1e3 * t_log / nl:.2f} ms/map; converged {ok}/{nl} {statuses}; "
        f"iterations mean {log.iterations.double().mean().item():.1f}; "
        f"max |log(exp v) - v| over converged pairs = {err:.1e}"
    )
    figures.update(log_total_s=t_log, log_ms_per_map=1e3 * t_log / nl, log_converged=ok)

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
