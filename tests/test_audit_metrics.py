"""Audit statistics against closed forms and scipy's distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from synthshare.audit.mechanism import gdp_delta, gdp_epsilon, gdp_mu
from synthshare.audit.metrics import (
    auc, auc_interval, clopper_pearson, epsilon_lower_bound, optimal_tpr, permutation_pvalue, roc_points, tpr_at_fpr,
)
from synthshare.errors import InputError


def test_auc_is_the_mann_whitney_u_with_ties():
    rng = np.random.default_rng(0)
    members = rng.integers(0, 6, 40).astype(float)
    others = rng.integers(0, 5, 30).astype(float)
    u = stats.mannwhitneyu(members, others, alternative="two-sided").statistic
    assert auc(members, others) == pytest.approx(u / (40 * 30), abs=1e-12)
    # Brute force ψ = [x > y] + ½[x = y].
    brute = np.mean((members[:, None] > others[None, :]) + 0.5 * (members[:, None] == others[None, :]))
    assert auc(members, others) == pytest.approx(brute, abs=1e-12)


def test_roc_points_and_tpr_at_fpr_by_hand():
    fpr, tpr, thresholds = roc_points([3.0, 2.0, 2.0, 0.0], [2.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(fpr, [0, 0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0, 0.25, 0.75, 0.75, 1.0])
    assert thresholds[0] == math.inf and list(thresholds[1:]) == [3.0, 2.0, 1.0, 0.0]
    assert tpr_at_fpr([3.0, 2.0, 2.0, 0.0], [2.0, 1.0, 0.0, 0.0], 0.1) == 0.25
    assert tpr_at_fpr([3.0, 2.0, 2.0, 0.0], [2.0, 1.0, 0.0, 0.0], 0.5) == 0.75
    # The area under the step ROC with ties as diagonal segments is the AUC.
    trapezoid = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert trapezoid == pytest.approx(auc([3.0, 2.0, 2.0, 0.0], [2.0, 1.0, 0.0, 0.0]))


def test_delong_standard_error_matches_the_closed_form_without_ties():
    """Without ties DeLong's variance equals the U-statistic variance estimate
    (1/(m n))·[... ] computed here by brute force over the placement values."""
    rng = np.random.default_rng(1)
    members, others = rng.normal(0.8, 1, 60), rng.normal(0, 1, 50)
    result = auc_interval(members, others)
    psi = (members[:, None] > others[None, :]).astype(float)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = math.sqrt(v10.var(ddof=1) / 60 + v01.var(ddof=1) / 50)
    assert result.auc == pytest.approx(psi.mean())
    assert result.standard_error == pytest.approx(se, rel=1e-12)
    assert result.lower == pytest.approx(psi.mean() - 1.959963984540054 * se)
    # Coverage: for N(0.8, 1) vs N(0, 1) the true AUC is Φ(0.8/√2).
    assert result.lower < stats.norm.cdf(0.8 / math.sqrt(2)) < result.upper


def test_clopper_pearson_is_the_beta_quantiles_and_inverts_the_binomial_tails():
    for k, n in [(0, 10), (3, 10), (10, 10), (47, 1000)]:
        lower, upper = clopper_pearson(k, n, 0.95)
        assert lower == (0.0 if k == 0 else pytest.approx(stats.beta.ppf(0.025, k, n - k + 1), rel=1e-10))
        assert upper == (1.0 if k == n else pytest.approx(stats.beta.ppf(0.975, k + 1, n - k), rel=1e-10))
        if 0 < k:
            assert stats.binom.sf(k - 1, n, lower) == pytest.approx(0.025, rel=1e-8)  # P(X ≥ k | p_lo)
        if k < n:
            assert stats.binom.cdf(k, n, upper) == pytest.approx(0.025, rel=1e-8)  # P(X ≤ k | p_hi)
    with pytest.raises(InputError):
        clopper_pearson(11, 10)


def test_permutation_pvalue_small_for_separated_groups_and_uniform_under_the_null():
    assert permutation_pvalue([0.9, 0.95, 0.85, 0.92], [0.5, 0.52, 0.48, 0.51, 0.49], 2000) < 0.02
    # Exact: with groups of 2 and 2 there are 6 splits; the observed is the most extreme: p ≈ 1/6.
    assert permutation_pvalue([2.0, 3.0], [0.0, 1.0], 20000, seed=3) == pytest.approx(1 / 6, abs=0.01)
    nulls = [permutation_pvalue(*np.random.default_rng(s).normal(size=(2, 8)), 400, seed=s) for s in range(60)]
    assert 0.3 < np.mean(nulls) < 0.7


def test_epsilon_lower_bound_from_clopper_pearson_on_the_held_out_half():
    # Perfectly separated two-valued scores: threshold 1 on the first half; held out TP = n, FP = 0.
    members, others = np.ones(100), np.zeros(100)
    bound = epsilon_lower_bound(members, others, delta=1e-5, seed=0)
    tpr_lo = stats.beta.ppf(0.025, 50, 1)
    fpr_hi = stats.beta.ppf(0.975, 1, 50)
    assert bound.threshold == 1.0
    assert (bound.true_positives, bound.false_positives, bound.members, bound.others) == (50, 0, 50, 50)
    assert bound.epsilon == pytest.approx(math.log((tpr_lo - 1e-5) / fpr_hi), rel=1e-9)
    # Identical distributions: no evidence of leakage.
    rng = np.random.default_rng(0)
    assert epsilon_lower_bound(rng.normal(size=400), rng.normal(size=400), delta=1e-5).epsilon < 0.5


def test_epsilon_lower_bound_respects_the_true_epsilon_of_a_gaussian_mechanism():
    """Scores from N(μ, 1) vs N(0, 1) are μ-GDP; the bound must stay below ε(δ) of μ-GDP."""
    rng = np.random.default_rng(5)
    mu, delta = 2.0, 1e-5
    bound = epsilon_lower_bound(rng.normal(mu, 1, 5000), rng.normal(0, 1, 5000), delta)
    assert 0.5 < bound.epsilon < gdp_epsilon(mu, delta)


def test_optimal_tpr_is_the_dp_hypothesis_testing_region():
    fpr = np.array([0.0, 0.01, 0.1, 0.5, 1.0])
    bound = optimal_tpr(fpr, 1.0, 1e-5)
    np.testing.assert_allclose(bound[:3], np.minimum(math.e * fpr[:3] + 1e-5, 1 - math.exp(-1) * (1 - 1e-5 - fpr[:3])))
    assert bound[-1] == 1.0 and np.all(np.diff(bound) >= 0)


def test_gdp_conversions():
    assert gdp_mu(1.0, 0.01, 10_000) == pytest.approx(0.01 * 100 * math.sqrt(math.e - 1))
    eps = gdp_epsilon(1.0, 1e-5)
    assert gdp_delta(eps, 1.0) == pytest.approx(1e-5, rel=1e-6)
    # The Gaussian mechanism with σ = 1 and sensitivity 1 is 1-GDP; its exact δ(ε)
    # (Balle & Wang 2018) is the same formula: check one value independently.
    assert gdp_delta(1.0, 1.0) == pytest.approx(stats.norm.cdf(-0.5) - math.e * stats.norm.cdf(-1.5), rel=1e-12)
    assert gdp_mu(0.01, 0.5, 10) == math.inf and gdp_epsilon(math.inf, 1e-5) == math.inf


def test_fit_step_recovers_known_mechanism_parameters_and_bounds_mu():
    from synthshare.audit.mechanism import fit_step

    rng = np.random.default_rng(11)
    n, q, kappa, sigma = 40_000, 0.02, 1.0, 1.5
    drawn = rng.random(n) < q
    x = drawn * kappa + sigma * rng.standard_normal(n)
    fit = fit_step(x, drawn, alpha=0.01)
    assert fit.noise[1] <= sigma <= fit.noise[2]
    assert fit.shift[1] <= kappa <= fit.shift[2]
    assert fit.rate[1] <= q <= fit.rate[2]
    estimate, lower, upper = fit.mu(1000)
    assert lower <= gdp_mu(sigma / kappa, q, 1000) <= upper and lower < estimate < upper
    assert fit.normality_pvalue > 1e-3
    # Twice the shift (clipping at 2C): the interval excludes the stated μ.
    assert fit_step(x + drawn * kappa, drawn).mu(1000)[1] > gdp_mu(sigma, q, 1000)
    with pytest.raises(InputError, match="steps with"):
        fit_step(x[:10], np.zeros(10, bool))
