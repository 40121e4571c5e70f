"""Stability of distances over retrainings (Syrota et al. 2024).

Retrain a model R times, measure the same P pairs' distances each time, and
summarise each pair by its coefficient of variation over the retrainings.
Two model families are compared by a paired one-sided t-test on the per-pair
CVs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from latentgeo._options import check_int
from latentgeo.analysis.counts import converged_note, convergence_warning, status_counts
from latentgeo.solvers import Status

__all__ = [
    "PairedTTest",
    "RetrainingComparison",
    "coefficient_of_variation",
    "compare_retrainings",
    "paired_t_test",
]


def _as_numpy(x: Tensor | np.ndarray, name: str) -> np.ndarray:
    arr = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, Tensor) else np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def coefficient_of_variation(distances: Tensor | np.ndarray, *, ddof: int = 1) -> np.ndarray:
    """Per-pair coefficient of variation ``std / mean`` over retrainings.

    Args:
        distances: shape ``(R, P)``: distance of pair ``p`` under retrained model ``r``.
        ddof: delta degrees of freedom of the standard deviation (1: the sample
            standard deviation, as pandas and the paper's code use).

    Returns:
        Array of shape ``(P,)``.

    Raises:
        ValueError: fewer than ``ddof + 1`` retrainings, or not a 2-d table.

    Example:
        >>> coefficient_of_variation(np.array([[1.0, 10.0], [3.0, 10.0]]))
        array([0.70710678, 0.        ])
    """
    check_int(ddof, "ddof", minimum=0)
    arr = _as_numpy(distances, "distances")
    if arr.ndim != 2:
        raise ValueError(f"distances must have shape (R, P), got {arr.shape}")
    if arr.shape[0] <= ddof:
        raise ValueError(
            f"distances needs more than ddof={ddof} retrainings (rows), got {arr.shape[0]}"
        )
    return np.asarray(arr.std(axis=0, ddof=ddof) / arr.mean(axis=0))


@dataclass(frozen=True)
class PairedTTest:
    """A paired t-test of ``a − b``.

    Attributes:
        statistic: the t statistic, ``mean(a − b) / SE``.
        pvalue: its p-value under ``alternative``.
        df: degrees of freedom, ``P − 1``.
        alternative: ``"less"``, ``"greater"`` or ``"two-sided"``.
        mean_difference: ``mean(a − b)``.
    """

    statistic: float
    pvalue: float
    df: int
    alternative: str
    mean_difference: float


def paired_t_test(
    a: Tensor | np.ndarray,
    b: Tensor | np.ndarray,
    *,
    alternative: Literal["less", "greater", "two-sided"] = "less",
) -> PairedTTest:
    """Paired Student t-test of ``a`` against ``b`` (``scipy.stats.ttest_rel``).

    For Syrota et al.'s comparison pass ``a = cv_ensemble``, ``b = cv_rbf``:
    ``alternative="less"`` tests whether ensemble CVs are lower; the paper
    reports the same statistic (t ≈ −16 on MNIST) with ``alternative="greater"``
    (p ≈ 1).

    Args:
        a: shape ``(P,)``.
        b: shape ``(P,)``.
        alternative: the alternative hypothesis on ``mean(a − b)``.

    Returns:
        A :class:`PairedTTest`.

    Example:
        >>> r = paired_t_test(np.array([0.05, 0.06, 0.04]), np.array([0.2, 0.3, 0.25]))
        >>> round(r.statistic, 3), r.df
        (-7.559, 2)
    """
    xa, xb = _as_numpy(a, "a").reshape(-1), _as_numpy(b, "b").reshape(-1)
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must have the same length, got {xa.shape[0]} and {xb.shape[0]}")
    if xa.shape[0] < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {xa.shape[0]}")
    res = stats.ttest_rel(xa, xb, alternative=alternative)
    return PairedTTest(
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        df=int(xa.shape[0] - 1),
        alternative=alternative,
        mean_difference=float((xa - xb).mean()),
    )


@dataclass(frozen=True)
class RetrainingComparison:
    """Two model families compared by the per-pair CVs of their distances over retrainings.

    A pair enters the CVs and the test only if its geodesic converged under
    every retraining of both families (unless ``include_all``); the counts
    say how many did.

    Attributes:
        cv_a: CV of every pair under family ``a``, ``(P,)`` (``nan`` where not usable).
        cv_b: the same for ``b``.
        used: which pairs entered the test, ``(P,)`` bool.
        converged_a: converged (pair, retraining) solves of ``a`` (out of ``R · P``).
        converged_b: the same for ``b``.
        total: ``R · P``, solves per family.
        test: the paired t-test of ``cv_a − cv_b`` over the used pairs
            (``None`` with fewer than 2 of them).
        include_all: whether non-converged pairs were used as well.
        converged_pairs: pairs whose solves converged under every retraining of
            both families (what the test uses without ``include_all``).
        status_a: ``(R, P)`` the :class:`~latentgeo.solvers.Status` of every solve of
            ``a`` when statuses were given (``None`` when only booleans were).
        status_b: the same for ``b``.
    """

    cv_a: np.ndarray
    cv_b: np.ndarray
    used: np.ndarray
    converged_a: int
    converged_b: int
    total: int
    test: PairedTTest | None
    include_all: bool
    converged_pairs: int = 0
    status_a: list[list[Status]] | None = field(default=None, repr=False)
    status_b: list[list[Status]] | None = field(default=None, repr=False)

    @property
    def num_used(self) -> int:
        """How many pairs entered the test."""
        return int(self.used.sum())

    @property
    def num_pairs(self) -> int:
        """P, the pairs measured under every retraining."""
        return int(self.used.shape[0])

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Solves per status value of ``"a"`` and ``"b"`` (empty where no statuses were given)."""
        return {
            name: status_counts(st for row in table for st in row) if table else {}
            for name, table in (("a", self.status_a), ("b", self.status_b))
        }

    @property
    def converged_note(self) -> str:
        """``"converged k/n pairs"``: pairs converged under every retraining of both."""
        return converged_note(self.converged_pairs, self.num_pairs)

    @property
    def warning(self) -> str | None:
        """A ``WARNING:`` line when fewer than 90 % of the solves of a family, or of the
        pairs under every retraining, converged (``None`` otherwise)."""
        lines = [
            convergence_warning(self.converged_a, self.total, "solves of a"),
            convergence_warning(self.converged_b, self.total, "solves of b"),
            convergence_warning(self.converged_pairs, self.num_pairs, "pairs (everywhere)"),
        ]
        found = [line for line in lines if line]
        return "; ".join(found) if found else None

    @property
    def converged_fraction(self) -> float:
        """Share of all solves (both families) that converged."""
        return (self.converged_a + self.converged_b) / (2 * self.total) if self.total else 0.0


def compare_retrainings(
    distances_a: Tensor | np.ndarray,
    distances_b: Tensor | np.ndarray,
    converged_a: Tensor | np.ndarray | None = None,
    converged_b: Tensor | np.ndarray | None = None,
    *,
    alternative: Literal["less", "greater", "two-sided"] = "less",
    include_all: bool = False,
) -> RetrainingComparison:
    """Per-pair CVs of two families' distances and their paired t-test, over converged pairs.

    Syrota et al.'s comparison: ``a`` the ensemble, ``b`` the RBF baseline,
    ``alternative="less"``: are ensemble CVs lower?

    Args:
        distances_a: ``(R, P)`` distances of ``P`` pairs under ``R`` retrainings of ``a``.
        distances_b: ``(R, P)`` the same for ``b``.
        converged_a: ``(R, P)``: whether each solve converged, as booleans or as
            :class:`~latentgeo.solvers.Status` values (or their strings, kept in the
            result's ``status_a``); ``None``: all did.
        converged_b: ``(R, P)`` the same for ``b``.
        alternative: the alternative hypothesis on ``mean(cv_a − cv_b)``.
        include_all: use every pair, converged or not (the counts still say how many did).
            Pairs with a non-finite distance, or a mean distance of 0 in either family
            (equal points: no coefficient of variation), are never used.

    Returns:
        A :class:`RetrainingComparison`.

    Example:
        >>> a = np.array([[1.0, 2.0, 3.0], [1.1, 2.1, 3.0], [0.9, 1.9, 3.3]])
        >>> b = np.array([[1.0, 2.0, 3.0], [1.5, 3.0, 2.0], [0.5, 1.0, 4.0]])
        >>> ok = np.ones((3, 3), dtype=bool)
        >>> ok[1, 2] = False  # pair 2 did not converge under retraining 1 of a
        >>> res = compare_retrainings(a, b, ok, None)
        >>> res.used.tolist(), res.converged_a, res.converged_b, res.total
        ([True, True, False], 8, 9, 9)
    """
    xa, xb = _as_numpy(distances_a, "distances_a"), _as_numpy(distances_b, "distances_b")
    if xa.ndim != 2 or xa.shape != xb.shape:
        raise ValueError(
            f"distances_a and distances_b must have the same shape (R, P), got "
            f"{xa.shape} and {xb.shape}"
        )
    (ok_a, st_a), (ok_b, st_b) = (
        _converged(name, ok, x)
        for name, ok, x in (("converged_a", converged_a, xa), ("converged_b", converged_b, xb))
    )
    usable = np.isfinite(xa).all(0) & np.isfinite(xb).all(0)
    with np.errstate(invalid="ignore"):  # a CV needs a positive mean (0: a pair of equal points)
        usable &= (xa.mean(0) > 0) & (xb.mean(0) > 0)
    everywhere = usable & ok_a.all(0) & ok_b.all(0)
    used = usable if include_all else everywhere
    cv_a, cv_b = np.full(xa.shape[1], np.nan), np.full(xb.shape[1], np.nan)
    if used.any():
        cv_a[used] = coefficient_of_variation(xa[:, used])
        cv_b[used] = coefficient_of_variation(xb[:, used])
    test = (
        paired_t_test(cv_a[used], cv_b[used], alternative=alternative) if used.sum() >= 2 else None
    )
    return RetrainingComparison(
        cv_a=cv_a,
        cv_b=cv_b,
        used=used,
        converged_a=int(ok_a.sum()),
        converged_b=int(ok_b.sum()),
        total=int(xa.size),
        test=test,
        include_all=include_all,
        converged_pairs=int(everywhere.sum()),
        status_a=st_a,
        status_b=st_b,
    )


def _converged(name: str, ok: Any, x: np.ndarray) -> tuple[np.ndarray, list[list[Status]] | None]:
    """``(R, P)`` converged flags (and finite distances) and the statuses, if given."""
    if ok is None:
        return np.isfinite(x), None
    raw = ok.detach().cpu().numpy() if isinstance(ok, Tensor) else np.asarray(ok)
    if raw.shape != x.shape:
        raise ValueError(f"{name} must have shape {x.shape}, got {raw.shape}")
    if raw.dtype == bool:
        return raw & np.isfinite(x), None
    try:
        status = [[Status(v) for v in row] for row in raw.tolist()]
    except ValueError as err:
        raise ValueError(
            f"{name} must hold booleans or latentgeo.solvers.Status values, got {raw.dtype}"
        ) from err
    flags = np.array([[st is Status.CONVERGED for st in row] for row in status], dtype=bool)
    return flags.reshape(x.shape) & np.isfinite(x), status
