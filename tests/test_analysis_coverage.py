"""Coverage statistics with known answers (synthshare.analysis.coverage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthshare.analysis.coverage import binomial_interval, coverage_table, interval_quantile, rubin_degrees_of_freedom
from synthshare.analysis.rubin import pool_rubin
from synthshare.errors import InputError

GROUPS = ["party", "step", "epsilon", "fraction"]


def replicates(rng: np.random.Generator, estimates: np.ndarray, var: np.ndarray | float, target: float = 0.3,
               df: np.ndarray | None = None) -> pd.DataFrame:
    """One row per replicate interval of one group and term."""
    frame = pd.DataFrame({"party": "A", "step": 1, "epsilon": 1.0, "fraction": 0.1, "term": "sex[Male]",
                          "mean": estimates, "var": np.broadcast_to(var, estimates.shape), "estimand": target})
    if df is not None:
        frame["df"] = df
    return frame


@pytest.mark.parametrize("method, scipy_method", [("clopper-pearson", "exact"), ("wilson", "wilson")])
def test_binomial_interval_matches_scipy(method, scipy_method):
    cases = [(0, 10), (3, 10), (5, 10), (10, 10), (47, 50), (950, 1000)]
    low, high = binomial_interval(np.array([k for k, _ in cases]), np.array([n for _, n in cases]), 0.95, method)
    for (k, n), lo, hi in zip(cases, low, high):
        expected = stats.binomtest(k, n).proportion_ci(0.95, method=scipy_method)
        assert (lo, hi) == pytest.approx((expected.low, expected.high), abs=1e-10), (k, n)
    # textbook values: k = 5 of 10
    assert binomial_interval(5, 10)[0] == pytest.approx(0.1871, abs=1e-4)
    assert binomial_interval(5, 10, method="wilson")[1] == pytest.approx(0.7634, abs=1e-4)
    assert np.isnan(binomial_interval(0, 0)[0])
    with pytest.raises(InputError, match="method = 'wald'"):
        binomial_interval(1, 2, method="wald")


def test_degrees_of_freedom():
    # K = 5, b = 2, v̄ = 1: (1 + 1/5)·2 = 2.4, 1/r = 1/2.4
    nu = rubin_degrees_of_freedom(np.array([2.0, 2.0, 0.0, 2.0]), np.array([1.0, 1.0, 1.0, 1.0]),
                                  np.array([5, 5, 5, 1]), np.array([False, True, False, False]))
    assert nu[0] == pytest.approx(4 * (1 - 1 / 2.4) ** 2)
    assert nu[1] == pytest.approx(4 * (1 + 1 / 2.4) ** 2)
    assert np.isinf(nu[2]) and np.isinf(nu[3])
    assert interval_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    q = interval_quantile(0.95, np.array([3.0, np.inf]))
    assert q[0] == pytest.approx(3.182446, abs=1e-6) and q[1] == pytest.approx(1.959964, abs=1e-6)


def test_known_variance_covers_nominally_and_too_small_variance_is_detected():
    rng = np.random.default_rng(1)
    sigma, n = 0.2, 4000
    estimates = 0.3 + sigma * rng.standard_normal(n)
    right = coverage_table(replicates(rng, estimates, sigma**2), GROUPS).iloc[0]
    assert right["intervals"] == n
    assert right["coverage_low"] <= 0.95 <= right["coverage_high"]
    assert abs(right["coverage"] - 0.95) < 0.015
    assert right["mean_width"] == pytest.approx(2 * 1.959964 * sigma, rel=1e-6)
    # half the variance: P(|Z| ≤ 1.96/√2) = 0.834
    small = coverage_table(replicates(rng, estimates, sigma**2 / 2), GROUPS).iloc[0]
    assert small["coverage_high"] < 0.95
    expected = 2 * stats.norm.cdf(1.959964 / np.sqrt(2)) - 1
    assert small["coverage_low"] <= expected <= small["coverage_high"]


def test_t_degrees_of_freedom_matter():
    """t₃ errors: the t interval covers nominally, the normal one does not (0.855)."""
    rng = np.random.default_rng(2)
    n, sigma = 4000, 0.1
    estimates = 0.3 + sigma * rng.standard_t(3, n)
    frame = replicates(rng, estimates, sigma**2, df=np.full(n, 3.0))
    with_t = coverage_table(frame, GROUPS, df="df").iloc[0]
    normal = coverage_table(frame, GROUPS).iloc[0]
    assert with_t["coverage_low"] <= 0.95 <= with_t["coverage_high"]
    assert normal["coverage_high"] < 0.95
    expected = 2 * stats.t.cdf(1.959964, 3) - 1
    assert normal["coverage_low"] <= expected <= normal["coverage_high"]


def synthetic_pooled(K: int, replicate: int = 3000, U: float = 0.01, beta: float = 0.3, seed: int = 3) -> pd.DataFrame:
    """Fully synthetic data as Raghunathan et al. (2003) model it: the observed estimate
    θ ~ N(β, U); set k re-draws a population around θ and estimates from it,
    θ_k ~ N(θ, 2U), with within-set variance v_k = U. Rubin's T = (1 + 1/K) b − v̄ is
    then unbiased for Var(w̄) = U(1 + 2/K). Returns the pooled replicates with ν."""
    rng = np.random.default_rng(seed)
    observed = beta + np.sqrt(U) * rng.standard_normal(replicate)
    coef = observed[:, None] + np.sqrt(2 * U) * rng.standard_normal((replicate, K))
    pooled = pool_rubin(coef[..., None], np.full((replicate, K, 1), U), np.ones((replicate, K, 1), bool))
    assert (pooled.count == K).all() and np.allclose(pooled.within, U)
    nu = rubin_degrees_of_freedom(pooled.between, pooled.within, pooled.count, pooled.fallback)[:, 0]
    return replicates(rng, pooled.mean[:, 0], pooled.var[:, 0], target=beta, df=nu)


def test_pooled_synthetic_sets_cover_through_the_studys_rule():
    """Many sets (K = 200): the study's pooled intervals cover nominally (normal and t
    alike); the within-set variance of a stacked analysis (v̄/K) undercovers badly."""
    frame = synthetic_pooled(200)
    for df in (None, "df"):
        row = coverage_table(frame, GROUPS, df=df).iloc[0]
        assert row["coverage_low"] <= 0.95 <= row["coverage_high"], df
    naive = coverage_table(frame.assign(var=0.01 / 200), GROUPS).iloc[0]
    assert naive["coverage_high"] < 0.6


def test_few_sets_bracket_the_nominal_level():
    """K = 20 (the noise in b is large): even where the synthetic-data model holds, normal
    intervals on T undercover (~0.90) and t intervals with Rubin's per-fit ν overcover
    (~0.99): the choice of reference distribution matters at the study's K."""
    frame = synthetic_pooled(20)
    assert coverage_table(frame, GROUPS).iloc[0]["coverage_high"] < 0.95
    assert coverage_table(frame, GROUPS, df="df").iloc[0]["coverage_low"] > 0.95


def test_groups_terms_and_missing_intervals():
    frame = pd.DataFrame({
        "party": ["A", "A", "A", "B", "B"], "step": [0, 0, 0, 0, 0], "epsilon": 1.0, "fraction": 1.0,
        "skew": np.nan, "term": ["t1", "t1", "t2", "t1", "t1"],
        "mean": [0.0, 1.0, 0.0, 0.0, 0.0], "var": [1.0, 0.01, np.nan, 1.0, 1.0], "estimand": 0.0,
    })
    table = coverage_table(frame, GROUPS + ["skew"])
    assert list(table[["party", "term"]].itertuples(index=False, name=None)) == [("A", "t1"), ("B", "t1")]
    assert table["intervals"].tolist() == [2, 2] and table["covered"].tolist() == [1, 2]
    assert table["skew"].isna().all()
    with pytest.raises(InputError, match=r"columns \['estimand'\] missing"):
        coverage_table(frame.drop(columns="estimand"), GROUPS)
    with pytest.raises(InputError, match="negative value"):
        coverage_table(frame.assign(var=-1.0), GROUPS)
    with pytest.raises(InputError, match="level = 1.5"):
        coverage_table(frame, GROUPS, level=1.5)
