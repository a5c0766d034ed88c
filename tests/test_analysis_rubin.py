"""Rubin's rules against a direct, term-by-term computation of the study's formula."""

from __future__ import annotations

import numpy as np

from synthshare.analysis.rubin import pool_rubin


def direct(coef, var, present):
    """Loop version: per term, the K_t fits that have it (method.md, Analysis)."""
    P = coef.shape[1]
    mean, total = np.zeros(P), np.full(P, np.nan)
    for p in range(P):
        w = [coef[k, p] for k in range(coef.shape[0]) if present[k, p] and np.isfinite(var[k, p])]
        v = [var[k, p] for k in range(coef.shape[0]) if present[k, p] and np.isfinite(var[k, p])]
        K = len(w)
        if K == 0:
            continue
        wbar = sum(w) / K
        b = sum((x - wbar) ** 2 for x in w) / (K - 1) if K > 1 else 0.0
        vbar = sum(v) / K
        t = (1 + 1 / K) * b - vbar
        if t < 0:
            t = (1 + 1 / K) * b + vbar
        mean[p], total[p] = wbar, t
    return mean, total


def test_matches_direct_formula_with_fallback_and_missing_terms():
    rng = np.random.default_rng(0)
    K, P = 7, 6
    coef = rng.normal(size=(4, K, P))
    var = rng.uniform(0.01, 2.0, size=(4, K, P))
    present = rng.random((4, K, P)) > 0.2
    present[0, :, 0] = False            # term absent from every fit
    present[1, :, 1] = False
    present[1, 3, 1] = True             # term in a single fit: its own variance
    var[2, 4, 2] = np.nan               # a rank-deficient fit: left out
    pooled = pool_rubin(coef, var, present)
    for step in range(4):
        mean, total = direct(coef[step], var[step], present[step])
        np.testing.assert_allclose(pooled.mean[step], mean, rtol=1e-12)
        np.testing.assert_allclose(pooled.var[step], total, rtol=1e-12, equal_nan=True)
    assert np.isnan(pooled.var[0, 0]) and pooled.mean[0, 0] == 0 and not pooled.present[0, 0]
    assert pooled.var[1, 1] == var[1, 3, 1]
    # both branches of the study's rule occur
    assert pooled.fallback.any() and (~pooled.fallback & pooled.present).any()


def test_positive_branch_is_the_synthetic_data_rule():
    coef = np.array([[[0.0]], [[2.0]], [[4.0]]]).reshape(1, 3, 1)
    var = np.full((1, 3, 1), 0.5)
    pooled = pool_rubin(coef, var, np.ones((1, 3, 1), bool))
    # b = 4, (1 + 1/3)·4 − 0.5
    np.testing.assert_allclose(pooled.var[0, 0], 4 / 3 * 4 - 0.5)
    assert not pooled.fallback[0, 0]
