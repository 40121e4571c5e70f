"""Stability of distances over retrainings (Syrota et al. 2024).

Retrain a model R times, measure the same P pairs' distances each time, and
summarise each pair by its coefficient of variation over the retrainings.
Two model families are compared by a paired one-sided t-test on the per-pair
CVs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from latentgeo._options import check_int

__all__ = ["PairedTTest", "coefficient_of_variation", "paired_t_test"]


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
