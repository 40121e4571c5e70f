"""Cost of the metric relative to a plain forward pass (and to StochMan's nnj Jacobian).

MLP decoders d -> 64 -> 64 -> 784 (tanh), N points, one thread by default:

* forward pass,
* ``squared_norm`` (one forward-mode JVP),
* ``metric_tensor`` (forward-mode Jacobian under vmap, then JᵀJ),
* StochMan 0.3.0's ``nnj`` Jacobian (and JᵀJ), if the ``bench`` extra is installed.

Every ratio is to the forward pass measured in the same run.

Run: ``python benchmarks/metric_cost.py [--device cuda] [--points 1024] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from latentgeo.metrics import PullbackMetric

try:  # benchmark-only dependency (the `bench` extra)
    from stochman import nnj
except ImportError:  # pragma: no cover - depends on the environment
    nnj = None


def timeit(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Fastest wall time of ``fn`` in seconds over ``repeats`` calls (after two warm-ups).

    The minimum, not the median: on a shared machine other processes only ever
    add time, so the fastest run is the best estimate of the intrinsic cost.
    """
    for _ in range(2):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def build_mlp(d: int) -> nn.Sequential:
    """The benchmark decoder d -> 64 -> 64 -> 784 with tanh."""
    return nn.Sequential(
        nn.Linear(d, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 784)
    )


def build_nnj(model: nn.Sequential) -> nn.Module:
    """The same network as StochMan nnj layers (same weights)."""
    assert nnj is not None
    layers: list[nn.Module] = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            lin = nnj.Linear(layer.in_features, layer.out_features)
            lin.load_state_dict(layer.state_dict())
            layers.append(lin)
        else:
            layers.append(nnj.Tanh())
    return nnj.Sequential(*layers).to(next(model.parameters()).device)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8, 32])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    print(
        f"metric_cost: N={args.points}, MLP d->64->64->784 tanh, float32, device={device}, "
        f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
        f"stochman={'yes' if nnj is not None else 'not installed'}"
    )
    header = f"{'d':>3} {'forward':>10} {'sq_norm':>9} {'metric':>9} {'nnj J':>9} {'nnj JᵀJ':>9}"
    print(header + "   (forward in ms, others as ratio to forward)")
    for d in args.dims:
        row = measure(d, args.points, device, args.repeats)
        t_fwd = row["forward"]
        print(
            f"{d:>3} {1e3 * t_fwd:>8.3f}ms {row['sq_norm'] / t_fwd:>8.2f}x "
            f"{row['metric'] / t_fwd:>8.2f}x {row['nnj_j'] / t_fwd:>8.2f}x "
            f"{row['nnj_g'] / t_fwd:>8.2f}x"
        )


def measure(d: int, points: int, device: torch.device, repeats: int) -> dict[str, float]:
    """Fastest seconds of each operation for latent dimension ``d``."""
    model = build_mlp(d).to(device).eval()
    metric = PullbackMetric(model)
    z = torch.randn(points, d, device=device)
    v = torch.randn(points, d, device=device)
    row = {"nnj_j": float("nan"), "nnj_g": float("nan")}
    with torch.no_grad():
        row["forward"] = timeit(lambda: model(z), device, repeats)
        row["sq_norm"] = timeit(lambda: metric._squared_norm(z, v), device, repeats)
        row["metric"] = timeit(lambda: metric._metric_tensor(z), device, repeats)
        if nnj is not None:
            stoch = build_nnj(model)
            row["nnj_j"] = timeit(lambda: stoch(z, jacobian=True), device, repeats)

            def nnj_metric() -> torch.Tensor:
                _, jac = stoch(z, jacobian=True)
                return jac.mT @ jac

            row["nnj_g"] = timeit(nnj_metric, device, repeats)
    return row


if __name__ == "__main__":
    main()
