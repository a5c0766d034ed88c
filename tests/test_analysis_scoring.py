"""Scoring: the cell-table log-likelihood equals the per-record Poisson log-likelihood."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design, most_frequent_levels
from synthshare.analysis.scoring import EvaluationSet, draw_coefficients
from synthshare.variables import FEATURE_LEVELS, OUTCOME
from tests.test_glm_fit import random_frame


def per_record_loglik(frame, design, coef):
    """(1/n) Σ_i [y_i η_i − exp(η_i) − ln y_i!] with η_i built row by row."""
    eta = np.full(len(frame), coef[0])
    for f, feature in enumerate(design.features):
        for row, level in enumerate(frame[feature]):
            term = design.term_index[f][FEATURE_LEVELS[feature].index(level)]
            if term >= 0:
                eta[row] += coef[term]
    y = frame[OUTCOME].to_numpy(float)
    return float(np.mean(y * eta - np.exp(eta) - gammaln(y + 1)))


def test_cell_loglik_equals_per_record_computation():
    rng = np.random.default_rng(0)
    test = random_frame(rng, 700)
    for design in (Design.build(most_frequent_levels(test)), Design.build().without("ethnicity")):
        evaluation = EvaluationSet(count_cells(test, design.features), design)
        coefs = rng.normal(0, 0.5, size=(5, design.size))
        coefs[:, 0] -= 1.5
        coefs[2, 3] = 0.0  # an absent term: predicted as the reference
        got = evaluation.loglik(coefs)
        want = [per_record_loglik(test, design, c) for c in coefs]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_extreme_coefficients_keep_their_sign():
    test = random_frame(np.random.default_rng(1), 300)
    design = Design.build()
    evaluation = EvaluationSet(count_cells(test), design)
    coef = np.zeros(design.size)
    coef[0] = -1.6
    coef[design.names.index("sex[Male]")] = 25.0  # exp(23.4) per male record: a very bad draw
    want = per_record_loglik(test, design, coef)
    np.testing.assert_allclose(evaluation.loglik(coef), want, rtol=1e-12)
    assert want < -1e8


def test_draws_follow_the_pooled_normal_and_the_seed():
    mean = np.array([[0.5, -1.0, 0.0]])
    var = np.array([[0.04, 1.0, np.nan]])
    present = np.array([[True, True, False]])
    a = draw_coefficients(mean, var, present, 20000, np.random.default_rng(7))
    b = draw_coefficients(mean, var, present, 20000, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1, 20000, 3)
    np.testing.assert_allclose(a[0, :, :2].mean(axis=0), mean[0, :2], atol=0.03)
    np.testing.assert_allclose(a[0, :, :2].std(axis=0), np.sqrt(var[0, :2]), rtol=0.03)
    assert (a[0, :, 2] == 0).all()
