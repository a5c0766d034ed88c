"""The ranked Welch test against scipy's Welch test on the joint ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from synthshare.figures.welch import ranked_welch


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_matches_scipy_on_joint_ranks(alternative):
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.round(rng.normal(0.1, 1.0, 1000), 1)  # rounding makes ties
        b = np.concatenate([rng.normal(0.0, 3.0, 290), [-1e12] * 10])  # a heavy lower tail
        ranks = stats.rankdata(np.concatenate([a, b]))
        want = stats.ttest_ind(ranks[: a.size], ranks[a.size :], equal_var=False, alternative=alternative)
        statistic, pvalue = ranked_welch(a, b, alternative)
        np.testing.assert_allclose([statistic, pvalue], [want.statistic, want.pvalue], rtol=1e-10)


def test_one_sided_direction_and_nan_draws():
    rng = np.random.default_rng(1)
    combined = rng.normal(-0.5, 0.1, 2000)
    local = rng.normal(-0.7, 0.3, 200)
    assert ranked_welch(combined, local, "greater")[1] < 1e-6
    assert ranked_welch(combined, local, "less")[1] > 0.999
    with_nan = np.concatenate([local, [np.nan] * 5])
    assert ranked_welch(combined, with_nan, "greater") == ranked_welch(combined, local, "greater")


def test_constant_samples_give_nan():
    statistic, pvalue = ranked_welch(np.zeros(5), np.zeros(7))
    assert np.isnan(statistic) and np.isnan(pvalue)
