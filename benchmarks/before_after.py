"""The same workloads timed on two revisions of latentgeo, alternating, in one run.

Not a test. Each revision is exported with ``git archive`` into a temporary
folder and timed in its own subprocess (one thread, float64), ``--rounds``
times in alternation, so that the load of the machine falls on both alike; the
script prints the median seconds of each workload per revision and their ratio.

Workloads (APIs both revisions share):

* ``metric d=2`` / ``metric d=50``: ``metric_tensor`` of 512 points of a tanh
  MLP ``d → 256 → 256 → 784``;
* ``geodesics``: ``connecting_geodesic`` of 16 pairs on the ``d = 2`` MLP;
* ``exp hand-written``: 64 exponential maps under a hand-written MLP decoder
  (its own ``forward`` calling ``torch.tanh`` on ``F.linear``), the case the
  shared forward-mode rules were for.

Usage::

    python benchmarks/before_after.py 683177b^ HEAD
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = r"""
import json, sys, time
import torch
from torch import nn
import torch.nn.functional as F
torch.set_num_threads(1)
import latentgeo
from latentgeo.metrics import as_metric
from latentgeo.solvers import connecting_geodesic, exp_map

def mlp(d):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(),
                         nn.Linear(256, 784)).double()

class HandWritten(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w1, self.w2, self.w3 = (nn.Parameter(torch.randn(o, i, dtype=torch.float64) / i**0.5)
                                     for i, o in ((2, 64), (64, 64), (64, 784)))
    def forward(self, z):
        h = torch.tanh(F.linear(z, self.w1))
        h = torch.tanh(F.linear(h, self.w2))
        return F.linear(h, self.w3)

def best(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times)

g = torch.Generator().manual_seed(1)
out = {}
for d in (2, 50):
    metric = as_metric(mlp(d))
    z = torch.randn(512, d, generator=g, dtype=torch.float64)
    out[f"metric d={d}"] = best(lambda: metric.metric_tensor(z))
metric = as_metric(mlp(2))
z0 = torch.randn(16, 2, generator=g, dtype=torch.float64)
z1 = torch.randn(16, 2, generator=g, dtype=torch.float64)
out["geodesics"] = best(lambda: connecting_geodesic(metric, z0, z1), repeat=1)
hand = as_metric(HandWritten())
zs = torch.randn(64, 2, generator=g, dtype=torch.float64)
vs = 0.5 * torch.randn(64, 2, generator=g, dtype=torch.float64)
out["exp hand-written"] = best(lambda: exp_map(hand, zs, vs), repeat=1)
print(json.dumps(out))
"""


def export(rev: str, into: Path) -> Path:
    """The package of revision ``rev`` in ``into`` (``git archive``)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", rev, "latentgeo"], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", help="git revision (e.g. 683177b^)")
    parser.add_argument("after", nargs="?", default="HEAD", help="git revision (default: HEAD)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per revision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {
            rev: export(rev, Path(tmp) / str(i)) for i, rev in enumerate([args.before, args.after])
        }
        results: dict[str, list[dict[str, float]]] = {rev: [] for rev in trees}
        for _ in range(args.rounds):
            for rev, tree in trees.items():
                run = subprocess.run(
                    [sys.executable, "-c", WORKLOADS], cwd=tree, env={"PYTHONPATH": str(tree)},
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                results[rev].append(json.loads(run.stdout.strip().splitlines()[-1]))
    before, after = (results[r] for r in (args.before, args.after))
    print(f"{'workload':<20} {args.before:>12} {args.after:>12}  after/before")
    print(f"(median seconds of {args.rounds} alternating runs, 1 thread, float64)")
    for name in before[0]:
        b = statistics.median(r[name] for r in before)
        a = statistics.median(r[name] for r in after)
        print(f"{name:<20} {b:>12.4f} {a:>12.4f}  {a / b:>11.2f}x")


if __name__ == "__main__":
    main()
