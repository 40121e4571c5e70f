"""Neural geodesics started from the straight line or from the spline method's geodesics.

Not a test. ``connecting_geodesic(method="neural", init=...)`` for ``"line"`` (Chen
et al.'s start) and ``"spline"`` (the networks fitted to the spline solver's
geodesics, then the same L-BFGS and the same stationarity test), each in a fresh
process so that its peak memory is its own, on:

* ``sphere``: 8 random pairs of the stereographic sphere (exact distances), float64;
* ``silu50`` / ``tanh50``: 6 random pairs of an MLP decoder 50 → 256 → 256 → 784
  (SiLU / tanh, PyTorch's default initialisation from seed 0), float64; the
  reference is the spline method at ``tol=1e-10``, ``refine_tol=1e-9``;
* ``conv``: 4 pairs of a transposed-convolution decoder, d = 16, float64 (``--quick``
  leaves it out).

Printed per case and start: CPU seconds of the call, converged k/n, the neural
iterations per pair, the worst relative length error of the converged pairs, and
the process's peak resident memory (``ru_maxrss``, the interpreter and torch
included). The networks' initial weights come from ``--seed``.

Run: ``python benchmarks/neural_init.py [--cases sphere silu50 tanh50 conv] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from torch import nn

CASES = ("sphere", "silu50", "tanh50", "conv")


def _problem(case: str) -> tuple[object, torch.Tensor, torch.Tensor]:
    """The metric or decoder and ``(z0, z1)`` of a case, float64, from fixed seeds."""
    from latentgeo.testing import StereographicSphere

    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    if case == "sphere":
        z0, z1 = (torch.randn(8, 2, generator=gen, dtype=torch.float64) for _ in range(2))
        return StereographicSphere(), z0, z1
    if case == "conv":
        decoder: nn.Module = nn.Sequential(
            nn.Linear(16, 64 * 7 * 7), nn.SiLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1),
        )  # fmt: skip
        z0, z1 = (torch.randn(4, 16, generator=gen, dtype=torch.float64) for _ in range(2))
        return decoder.double().eval(), z0, z1
    act = nn.SiLU if case == "silu50" else nn.Tanh
    decoder = nn.Sequential(
        nn.Linear(50, 256), act(), nn.Linear(256, 256), act(), nn.Linear(256, 784)
    )
    z0, z1 = (torch.randn(6, 50, generator=gen, dtype=torch.float64) for _ in range(2))
    return decoder.double().eval(), z0, z1


def _child(case: str, init: str, seed: int) -> dict[str, object]:
    """One call in this process: its figures (``init="reference"``: the lengths to compare)."""
    from latentgeo.solvers import connecting_geodesic
    from latentgeo.testing import StereographicSphere

    torch.set_num_threads(1)
    metric, z0, z1 = _problem(case)
    if init == "reference":
        if isinstance(metric, StereographicSphere):
            return {"lengths": metric.distance(z0, z1).tolist()}
        ref = connecting_geodesic(metric, z0, z1, tol=1e-10, refine_tol=1e-9, max_knots=256)
        return {"lengths": ref.length.tolist(), "converged": int(ref.converged.sum())}
    gen = torch.Generator().manual_seed(seed)
    start = time.process_time()
    result = connecting_geodesic(metric, z0, z1, method="neural", init=init, generator=gen)
    return {
        "cpu_s": time.process_time() - start,
        "lengths": result.length.tolist(),
        "converged": result.converged.tolist(),
        "iterations": result.iterations.tolist(),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run(case: str, init: str, seed: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, init, "--seed", str(seed)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child, args.seed)))
        return
    print(f"torch {torch.__version__}, one thread per process, float64, seed {args.seed}\n")
    print("| case | start | CPU s | converged | iterations | worst rel. error | peak MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for case in args.cases:
        exact = torch.tensor(_run(case, "reference", args.seed)["lengths"], dtype=torch.float64)
        for init in ("line", "spline"):
            r = _run(case, init, args.seed)
            ok = torch.tensor(r["converged"])
            err = (torch.tensor(r["lengths"], dtype=torch.float64) - exact).abs() / exact
            worst = f"{err[ok].max().item():.1e}" if ok.any() else "-"
            print(
                f"| {case} | {init} | {r['cpu_s']:.2f} | {int(ok.sum())}/{len(ok)} | "
                f"{r['iterations']} | {worst} | {r['peak_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
