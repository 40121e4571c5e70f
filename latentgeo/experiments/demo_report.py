"""Per-pair table, per-model summary and printed report of :mod:`latentgeo.experiments.demo`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from latentgeo.analysis import converged_note, convergence_warning
from latentgeo.solvers import GeodesicResult

__all__ = ["HEADER", "PairLengths", "csv_rows", "model_summary", "report_lines"]

HEADER = [
    "model",
    "pair",
    "index_a",
    "index_b",
    "z0_1",
    "z0_2",
    "z1_1",
    "z1_2",
    "geodesic_length",
    "straight_line_length",
    "relative_improvement",
    "geodesic_metric_length",
    "straight_line_metric_length",
    "off_data_geodesic",
    "off_data_straight_line",
    "converged",
    "status",
]


@dataclass(frozen=True)
class PairLengths:
    """Per pair ``(P,)``: the lengths of the geodesic and the straight line by the
    model's estimator and by the metric, and the shares of their points off the data."""

    geodesic: Tensor
    straight_line: Tensor
    metric_geodesic: Tensor
    metric_straight_line: Tensor
    off_data_geodesic: Tensor
    off_data_straight_line: Tensor

    @property
    def relative_improvement(self) -> Tensor:
        """``(L_line − L_geodesic) / L_line`` per pair."""
        return (self.straight_line - self.geodesic) / self.straight_line


def model_summary(
    res: GeodesicResult, lengths: PairLengths, include_all: bool, extras: dict[str, Any]
) -> dict[str, Any]:
    """One model's entry of ``summary.json``: means over the converged pairs
    (``include_all``: every pair with finite values), the counts and ``extras``."""
    rel = lengths.relative_improvement
    used = torch.isfinite(rel) & (res.converged.to(rel.device) | include_all)

    def mean(v: Tensor) -> float:
        return float(v.to(rel.device)[used].mean()) if bool(used.any()) else float("nan")

    return {
        "geodesic_method": extras["geodesic_method"],
        "mean_geodesic_length": mean(lengths.geodesic),
        "mean_straight_line_length": mean(lengths.straight_line),
        "mean_relative_improvement": mean(rel),
        "off_data_fraction": {
            "geodesic": mean(lengths.off_data_geodesic),
            "straight_line": mean(lengths.off_data_straight_line),
        },
        "length_estimator": extras["length_estimator"],
        "mean_metric_length": {
            "geodesic": mean(lengths.metric_geodesic),
            "straight_line": mean(lengths.metric_straight_line),
        },
        "converged": res.num_converged,
        "num_pairs": res.num_pairs,
        "pairs_used": int(used.sum()),
        "include_all": include_all,
        "warning": convergence_warning(res.num_converged, res.num_pairs),
        "statuses": {st.value: res.status.count(st) for st in sorted(set(res.status))},
        **{k: v for k, v in extras.items() if k not in ("geodesic_method", "length_estimator")},
    }


def csv_rows(
    kind: str,
    pairs: tuple[Tensor, Tensor],
    ends: tuple[Tensor, Tensor],
    res: GeodesicResult,
    lengths: PairLengths,
) -> list[list[Any]]:
    """The rows of ``distances.csv`` for one model (columns :data:`HEADER`): the pairs'
    data indices ``pairs``, their codes ``ends = (z0, z1)``, lengths and statuses."""
    z0, z1 = ends
    per_pair = (
        lengths.geodesic,
        lengths.straight_line,
        lengths.relative_improvement,
        lengths.metric_geodesic,
        lengths.metric_straight_line,
    )
    return [
        [
            kind,
            p,
            int(pairs[0][p]),
            int(pairs[1][p]),
            *(f"{float(v):.6g}" for v in (*z0[p], *z1[p])),
            *(f"{float(v[p]):.6g}" for v in per_pair),
            f"{float(lengths.off_data_geodesic[p]):.4g}",
            f"{float(lengths.off_data_straight_line[p]):.4g}",
            bool(res.converged[p]),
            res.status[p].value,
        ]
        for p in range(res.num_pairs)
    ]


def report_lines(models: dict[str, Any], include_all: bool = False) -> list[str]:
    """The printed summary: per model the means, "converged k/n" beside them, and a
    ``WARNING:`` line where fewer than 90 % of the pairs converged."""
    over = "pairs, converged or not" if include_all else "converged pairs"
    lines = []
    for name, m in models.items():
        lines.append(
            f"{name}: geodesic {m['mean_geodesic_length']:.3f}, straight line "
            f"{m['mean_straight_line_length']:.3f}, improvement "
            f"{100 * m['mean_relative_improvement']:.1f} % (means over {m['pairs_used']} "
            f"{over}); {converged_note(m['converged'], m['num_pairs'])}"
        )
        if m.get("warning"):
            lines.append(f"{m['warning']} ({name})")
    return lines
