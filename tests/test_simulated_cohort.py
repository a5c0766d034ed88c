"""The simulated cohort meets the published targets of shared/reference/cohort.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthshare.cohort.simulated import simulate_cohort
from synthshare.variables import CENTRES, COLUMNS, FEATURE_LEVELS

SEED = 20240716


@pytest.fixture(scope="module")
def cohort(cohort_parameters):
    return simulate_cohort(cohort_parameters, scale=1.0, seed=SEED)


def test_columns_and_levels(cohort):
    frame = cohort.frame
    assert list(frame.columns) == list(COLUMNS)
    for feature, levels in FEATURE_LEVELS.items():
        assert set(frame[feature]) <= set(levels)
    assert frame["covid_test_result"].dtype == bool
    assert set(frame["assessment_center"]) == set(CENTRES)


def test_centre_sizes(cohort, cohort_parameters):
    sizes = cohort.frame.groupby("assessment_center").size()
    assert sizes.sum() == 58_253
    assert sizes.min() == 1_867 and sizes.max() == 5_922 and sizes["Newcastle"] == 5_922
    assert np.median(sizes) == 3_729
    for name, spec in cohort_parameters["centres"].items():
        assert sizes[name] == spec["records"]


def test_white_british_shares(cohort, cohort_parameters):
    frame = cohort.frame
    white = frame["ethnicity"].eq("White British")
    assert abs(white.mean() - 0.8828) <= 0.005
    by_centre = white.groupby(frame["assessment_center"]).mean()
    assert abs(by_centre["Newcastle"] - 0.9654) <= 0.005
    for name, spec in cohort_parameters["centres"].items():
        assert abs(by_centre[name] - spec["white_british"]) <= 0.015, name


def test_positive_share_and_published_gradients(cohort):
    frame = cohort.frame
    assert abs(frame["covid_test_result"].mean() - 0.20) <= 0.02
    # Published direction: younger people test positive more often.
    midpoints = {"[40, 45)": 42.5, "[45, 50)": 47.5, "[50, 55)": 52.5, "[55, 60)": 57.5, "[60, 65)": 62.5, "[65, 70)": 67.5, "[70, 200)": 72.5}
    age = frame["age_group"].map(midpoints)
    assert age[frame["covid_test_result"]].mean() < age[~frame["covid_test_result"]].mean()
    assert 55.5 <= age.mean() <= 58.0  # published tested mean age 56.7
    education = frame["education"].value_counts(normalize=True)
    assert abs(education["College or University degree"] - 0.306) < 0.02


def test_deprivation_quartiles_are_cohort_wide(cohort):
    shares = cohort.frame["deprivation"].value_counts(normalize=True)
    assert np.allclose(shares.to_numpy(), 0.25, atol=0.001)
    by_centre = pd.crosstab(cohort.frame["assessment_center"], cohort.frame["deprivation"], normalize="index")
    assert by_centre.loc["Barts", "4th"] > 0.35 and by_centre.loc["Oxford", "1st"] > 0.4


def test_truth_recovered_by_a_large_fit(cohort):
    """The truth is what a Poisson fit of the pooled cohort estimates, up to centre effects."""
    import statsmodels.api as sm

    frame = cohort.frame
    ordered = pd.DataFrame({f: pd.Categorical(frame[f], categories=levels) for f, levels in FEATURE_LEVELS.items()})
    design = pd.get_dummies(ordered, drop_first=True, dtype=float)  # drops the first-listed level
    design.insert(0, "Intercept", 1.0)
    fit = sm.GLM(frame["covid_test_result"].astype(float), design, family=sm.families.Poisson()).fit()
    truth = cohort.truth["coefficients"]
    for term in ["ethnicity_South Asian", "ethnicity_Black", "deprivation_4th", "education_None of the above", "age_group_[70, 200)"]:
        feature, level = term.split("_", 1) if not term.startswith("age_group") else ("age_group", term[len("age_group_"):])
        estimate = fit.params[term]
        assert abs(estimate - truth[f"{feature}[{level}]"]) < 4 * fit.bse[term] + 0.1, term


def test_same_seed_same_cohort_other_seed_differs(cohort_parameters):
    a = simulate_cohort(cohort_parameters, scale=0.05, seed=1).frame
    b = simulate_cohort(cohort_parameters, scale=0.05, seed=1).frame
    c = simulate_cohort(cohort_parameters, scale=0.05, seed=2).frame
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_scale_shrinks_every_centre(cohort_parameters):
    small = simulate_cohort(cohort_parameters, scale=0.1, seed=SEED).frame
    sizes = small.groupby("assessment_center").size()
    for name, spec in cohort_parameters["centres"].items():
        assert sizes[name] == max(20, round(spec["records"] * 0.1))
