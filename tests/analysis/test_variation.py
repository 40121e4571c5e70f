"""Coefficient of variation and the paired t-test against SciPy on fixed numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from latentgeo.analysis import coefficient_of_variation, compare_retrainings, paired_t_test

# distances of 4 pairs under 5 retrained models (rows)
DIST = np.array(
    [
        [1.00, 2.0, 3.0, 10.0],
        [1.10, 2.5, 3.0, 12.0],
        [0.90, 1.5, 3.0, 8.0],
        [1.05, 2.2, 3.0, 11.0],
        [0.95, 1.8, 3.0, 9.0],
    ]
)


def test_cv_is_sample_std_over_mean() -> None:
    cv = coefficient_of_variation(DIST)
    expected = DIST.std(axis=0, ddof=1) / DIST.mean(axis=0)
    np.testing.assert_allclose(cv, expected, rtol=1e-14)
    np.testing.assert_allclose(cv, stats.variation(DIST, axis=0, ddof=1), rtol=1e-14)
    assert cv[2] == 0.0
    np.testing.assert_allclose(cv[0], 0.0790569415, rtol=1e-9)


def test_cv_accepts_tensors_and_checks_shape() -> None:
    np.testing.assert_allclose(
        coefficient_of_variation(torch.tensor(DIST)), coefficient_of_variation(DIST)
    )
    with pytest.raises(ValueError, match=r"\(R, P\)"):
        coefficient_of_variation(DIST[0])
    with pytest.raises(ValueError, match="retrainings"):
        coefficient_of_variation(DIST[:1])


@pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
def test_paired_t_test_matches_scipy(alternative: str) -> None:
    a = np.array([0.05, 0.07, 0.06, 0.09, 0.055, 0.08])
    b = np.array([0.20, 0.15, 0.40, 0.12, 0.300, 0.25])
    res = paired_t_test(a, b, alternative=alternative)  # type: ignore[arg-type]
    ref = stats.ttest_rel(a, b, alternative=alternative)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.df == 5
    assert res.mean_difference == pytest.approx((a - b).mean())
    # the hand formula: mean difference over its standard error
    diff = a - b
    assert res.statistic == pytest.approx(diff.mean() / (diff.std(ddof=1) / np.sqrt(6)))


def test_paper_convention_lower_ensemble_cv_gives_negative_t() -> None:
    ens = np.array([0.05, 0.06, 0.055, 0.07])
    rbf = np.array([0.2, 0.35, 0.15, 0.4])
    greater = paired_t_test(ens, rbf, alternative="greater")
    less = paired_t_test(ens, rbf, alternative="less")
    assert greater.statistic < 0 and greater.pvalue > 0.95  # as in Syrota et al., Table 1
    assert less.pvalue < 0.05


def test_t_test_input_checks() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_t_test(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2"):
        paired_t_test(np.zeros(1), np.zeros(1))


def test_compare_retrainings_uses_only_pairs_converged_everywhere() -> None:
    rng = np.random.default_rng(0)
    a = 1.0 + 0.05 * rng.standard_normal((6, 8))
    b = 1.0 + 0.30 * np.abs(rng.standard_normal((6, 8)))
    ok_a = np.ones((6, 8), dtype=bool)
    ok_b = np.ones((6, 8), dtype=bool)
    ok_a[2, 1] = False  # pair 1 failed once under a
    ok_b[5, 6] = False  # pair 6 failed once under b
    res = compare_retrainings(a, b, ok_a, ok_b)
    assert res.converged_a == 47 and res.converged_b == 47 and res.total == 48
    assert res.used.tolist() == [True, False, True, True, True, True, False, True]
    assert res.num_used == 6 and not res.include_all
    keep = res.used
    ref = stats.ttest_rel(
        stats.variation(a[:, keep], axis=0, ddof=1),
        stats.variation(b[:, keep], axis=0, ddof=1),
        alternative="less",
    )
    assert res.test is not None
    assert res.test.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.test.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert np.isnan(res.cv_a[1]) and np.isnan(res.cv_b[6])
    every = compare_retrainings(a, b, ok_a, ok_b, include_all=True)
    assert every.num_used == 8 and every.converged_a == 47  # the counts stay honest
    assert res.converged_fraction == pytest.approx(94 / 96)


def test_compare_retrainings_counts_nonfinite_distances_as_failed() -> None:
    a = np.array([[1.0, 2.0, 3.0], [1.2, np.inf, 3.1]])
    b = np.array([[1.0, 2.0, 3.0], [1.5, 2.5, 3.5]])
    res = compare_retrainings(a, b)
    assert res.converged_a == 5 and res.used.tolist() == [True, False, True]
    assert compare_retrainings(a, b, include_all=True).num_used == 2  # inf is never used
    few = compare_retrainings(a[:, :1], b[:, :1])
    assert few.test is None and few.num_used == 1
    with pytest.raises(ValueError, match="same shape"):
        compare_retrainings(a, b[:, :2])
    with pytest.raises(ValueError, match="converged_b"):
        compare_retrainings(a, b, None, np.ones((3, 3), dtype=bool))


@pytest.mark.parametrize("include_all", [False, True])
def test_compare_retrainings_leaves_out_a_pair_of_equal_points(include_all: bool) -> None:
    """A pair at distance 0 in every retraining has no CV: it made the whole t-test NaN
    (an audit); now it is not used, and the test is that of the other pairs."""
    rng = np.random.default_rng(0)
    a = 1.0 + 0.1 * rng.standard_normal((5, 6))
    b = 1.0 + 0.3 * rng.standard_normal((5, 6))
    a[:, 2] = b[:, 2] = 0.0
    res = compare_retrainings(a, b, include_all=include_all)
    assert res.used.tolist() == [True, True, False, True, True, True]
    keep = [0, 1, 3, 4, 5]
    ref = compare_retrainings(a[:, keep], b[:, keep], include_all=include_all)
    assert res.test is not None and ref.test is not None
    assert np.isfinite(res.test.statistic) and res.test.statistic == ref.test.statistic
