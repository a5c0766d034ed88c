"""Box statistics, significance stars, the off-scale rule and the ranked Welch comparison."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from synthshare.figures.boxplots import COMBINED, LOCAL, DrawnBox, find_offscale
from synthshare.figures.stats import box_stats, compare, significance_stars


def test_box_is_quartiles_and_whiskers_within_one_and_a_half_iqr():
    values = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 30, -20])
    box = box_stats(values)
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    assert (box["q1"], box["med"], box["q3"]) == (q1, med, q3)
    iqr = q3 - q1
    # Whiskers stop at the furthest sample inside 1.5 IQR: 9 and 1 here, not 30 or -20.
    assert box["whishi"] == values[values <= q3 + 1.5 * iqr].max() == 9
    assert box["whislo"] == values[values >= q1 - 1.5 * iqr].min() == 1
    assert box["fliers"].size == 0 and box["n"] == 11


def test_box_rejects_empty_or_nan():
    with pytest.raises(ValueError, match="non-empty"):
        box_stats(np.array([]))
    with pytest.raises(ValueError, match="finite"):
        box_stats(np.array([1.0, np.nan]))


@pytest.mark.parametrize("p, stars", [(0.0005, "***"), (0.001, "***"), (0.004, "**"), (0.05, "*"), (0.2, "ns"), (np.nan, "")])
def test_stars(p, stars):
    assert significance_stars(p) == stars


def _drawn(medians, spread=0.01):
    out = []
    for i, m in enumerate(medians):
        stats = {"med": m, "q1": m - spread, "q3": m + spread, "whislo": m - 3 * spread, "whishi": m + 3 * spread}
        out.append(DrawnBox(str(i), LOCAL if i % 2 == 0 else COMBINED, float(i), stats))
    return out


def test_far_low_box_is_off_scale():
    drawn = _drawn([-3.65, -0.60, -0.58, -0.57, -0.55])
    assert find_offscale(drawn, reference=-0.50) == [0]


def test_spread_out_boxes_are_not_clipped():
    assert find_offscale(_drawn([-0.9, -0.8, -0.7, -0.6, -0.5])) == []


def test_at_most_two_boxes_are_clipped_and_only_when_it_helps():
    rest = [-0.60, -0.59, -0.58, -0.57, -0.56, -0.55, -0.54, -0.53]
    assert find_offscale(_drawn([-5.0, -4.0] + rest)) == [0, 1]
    assert find_offscale(_drawn([-5.0, -4.9, -4.8, -0.5])) == []  # most boxes are low: nothing to clip


def test_no_more_than_one_box_in_five_is_an_outlier():
    # Fig 3's case: both local boxes far below both combined boxes is the message, not an outlier.
    assert find_offscale(_drawn([-0.74, -0.70, -0.53, -0.52])) == []
    assert find_offscale(_drawn([-5.0, -4.0, -0.6, -0.55, -0.5])) == []


def test_compare_is_welch_on_joint_ranks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.1, 1, 300), rng.normal(0, 2, 50)
    ranks = sps.rankdata(np.concatenate([a, b]))
    expected = sps.ttest_ind(ranks[:300], ranks[300:], equal_var=False, alternative="greater")
    result = compare(a, b, "greater")
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-10)
    assert (result.n_a, result.n_b) == (300, 50) and result.median_a == np.median(a)
    two = compare(a, b, "two-sided")
    assert two.pvalue == pytest.approx(min(1.0, 2 * min(expected.pvalue, 1 - expected.pvalue)), rel=1e-8)


def test_compare_needs_two_values_a_side():
    with pytest.raises(ValueError, match="at least 2"):
        compare(np.array([1.0]), np.array([1.0, 2.0]))
