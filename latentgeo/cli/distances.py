"""``latentgeo distances``: a geodesic distance matrix on Dask workers, resumable."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from latentgeo.cli.common import (
    UsageError,
    add_command,
    add_output_options,
    format_table,
    positive_float,
    positive_int,
    show_progress,
)

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  latentgeo distances --model vae.pt --points z.npy --out runs/dist
  latentgeo distances --model vae.pt --points z.npy --out runs/dist --workers 8 --tile 512
  latentgeo distances --model vae.pt --points z.npy --out runs/knn --neighbours 10
  latentgeo distances --model vae.pt --points z.npy --out /shared/dist --scheduler tcp://head:8786

Interrupt with Ctrl-C at any time: finished tiles stay in --out, and the same
command resumes (a different configuration in the same folder is refused).
"""


def add_parser(sub: Any) -> None:
    """Add ``distances`` to the subcommands ``sub``."""
    p = add_command(
        sub,
        "distances",
        help="geodesic distance matrix of many latent points, on Dask workers, resumable",
        description="Solve the geodesics between all pairs of --points (i < j) under the "
        "decoder of --model, one Dask task per tile of pairs, on an embedded local cluster or "
        "the one at --scheduler; write each finished tile into --out, then distances.npy and "
        "summary.json.",
        epilog=EPILOG,
    )
    p.add_argument("--model", required=True, help="latentgeo checkpoint (decoder or VAE)")
    p.add_argument("--points", required=True, help=".npy file of latent points, shape (N, d)")
    p.add_argument("--out", required=True, help="output folder (tiles, manifest, results)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    p.add_argument("--workers", type=positive_int, help="local worker processes (default: cores)")
    p.add_argument("--neighbours", type=positive_int, help="sparse mode: geodesics to k neighbours")
    p.add_argument("--tile", type=positive_int, default=256, help="pairs per task (default: 256)")
    p.add_argument("--method", default="spline", help="geodesic solver (default: spline)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default: the checkpoint's")
    p.add_argument("--device", default="cpu", help="device of the workers (default: cpu)")
    p.add_argument("--timeout", type=positive_float, default=10.0, help="scheduler timeout [s]")
    add_output_options(p)
    p.set_defaults(run=run)


def _load_points(path: str) -> Any:
    import numpy as np

    if not Path(path).is_file():
        raise UsageError(f"--points: no file at {path}")
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"--points: {path} is not a readable .npy array: {err}") from None
    if not isinstance(points, np.ndarray):  # an .npz archive of several arrays
        points.close()
        raise UsageError(f"--points: {path} is an .npz archive; save the one array with np.save")
    if points.ndim != 2 or points.shape[0] < 2:
        raise UsageError(f"--points: {path} must hold N >= 2 points as an (N, d) array, "
                         f"got shape {points.shape}")  # fmt: skip
    if points.dtype.kind not in "fiu":
        raise UsageError(f"--points: {path} must hold real numbers, got dtype {points.dtype}")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(bad)[:5])
        raise UsageError(f"--points: {path} holds NaN or Inf values in {int(bad.sum())} of "
                         f"{points.shape[0]} rows (first: {rows})")  # fmt: skip
    return points


class _Bar:
    """Tiles done / total, pairs per second and ETA on stderr, only when it is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            done = p.tiles_done + p.tiles_failed - 1
            self.bar = tqdm(total=p.tiles_total, initial=done, unit="tile", file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix_str(f"{p.pairs_per_second:.1f} pairs/s, ETA {p.eta_seconds:.0f} s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    tiles = summary["tiles"]
    rows = [["pairs", "converged", "not converged", "tiles", "computed", "resumed", "failed tiles"]]
    rows.append(
        [str(summary[k]) for k in ("num_pairs", "converged", "not_converged")]
        + [str(tiles[k]) for k in ("total", "computed", "resumed", "failed")]
    )
    print(format_table(rows))
    print("statuses: " + ", ".join(f"{k} {n}" for k, n in summary["status_counts"].items()))
    if summary.get("warning"):
        print(summary["warning"])
    print(f"\n{summary['seconds']:.0f} s; files in {out}/: distances.npy, summary.json, tiles/")


def run(args: argparse.Namespace) -> int:
    """Compute (or resume) the distance matrix with parsed arguments; returns the exit code."""
    import numpy as np
    import torch

    from latentgeo._atomic import atomic_path, write_json
    from latentgeo.analysis.distributed import plan_job, run_job

    if not Path(args.model).is_file():
        raise UsageError(f"--model: no checkpoint at {args.model}")
    points = _load_points(args.points)
    dtype = None if args.dtype is None else getattr(torch, args.dtype)
    start = time.perf_counter()
    try:
        job = plan_job(
            args.model, points, tile=args.tile, out=args.out, neighbours=args.neighbours,
            method=args.method, dtype=dtype, device=args.device,
        )  # fmt: skip
    except (ValueError, TypeError, FileNotFoundError) as err:  # CheckpointError is a ValueError
        raise UsageError(str(err)) from None
    logging.getLogger("distributed").setLevel(logging.ERROR)  # the bar and summary say enough
    bar = _Bar(show_progress(args))
    try:
        result = run_job(
            job, scheduler=args.scheduler, workers=args.workers, timeout=args.timeout,
            progress=bar,
        )  # fmt: skip
    except (ConnectionError, ImportError, ValueError) as err:  # refused before any tile
        raise UsageError(str(err)) from None
    finally:
        bar.close()
    out = Path(args.out)
    with atomic_path(out / "distances.npy") as tmp:
        np.save(tmp, result.matrix.numpy())
    summary = {**result.summary(), "seconds": time.perf_counter() - start, "config": job.config}
    write_json(out / "summary.json", summary)
    _print_summary(summary, out)
    return 0
