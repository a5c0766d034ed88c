"""The coverage estimand: the analysis model's population-level coefficients under the
simulator (synthshare.analysis.estimand), exact and checked against large samples."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

from synthshare.analysis.estimand import estimand_record, population_estimand, population_table, projection
from synthshare.cohort.simulated import simulate_cohort
from synthshare.errors import InputError
from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design
from synthshare.glm.irls import PoissonBatchSolver
from synthshare.variables import FEATURES

SEED = 20240716
CHI2_999 = float(stats.chi2.ppf(0.999, 22))
"""A Wald χ² of 22 terms above this (48.3) rejects "the fit converges to this value" at 0.1 %."""


def variant(parameters: dict, sd: float = 0.0, specified: bool = False) -> dict:
    """Parameters with heterogeneity ``sd``; ``specified``: one centre factor and the
    ethnicity effect everywhere, so that the main-effects model is the simulator."""
    changed = copy.deepcopy(parameters)
    changed["heterogeneity"] = {"sd": sd}
    if specified:
        for spec in changed["centres"].values():
            spec["positive_factor"] = 1.0
            spec.pop("ethnicity_effect", None)
    return changed


def wald(cohort, target: dict[str, float]) -> tuple[np.ndarray, float]:
    """z per term and the Wald χ² (HC1 diagonal) of the pooled cohort's fit against ``target``."""
    design = Design.build()
    fit = PoissonBatchSolver(design, kernel="numpy").fit(count_cells(cohort.frame)[None])
    z = (fit.coef[0] - np.array([target[n] for n in design.names])) / np.sqrt(fit.var[0])
    return z, float((z**2).sum())


def test_correctly_specified_estimand_is_the_simulators_truth(cohort_parameters):
    parameters = variant(cohort_parameters, specified=True)
    cohort = simulate_cohort(parameters, scale=1.0, seed=SEED)
    estimand = population_estimand(parameters, cohort.truth)
    truth = cohort.truth["coefficients"]
    assert list(estimand) == list(Design.build().names)
    np.testing.assert_allclose([estimand[k] for k in truth], list(truth.values()), rtol=0, atol=1e-12)


def test_default_cohort_estimand_differs_where_the_model_is_misspecified(cohort_parameters):
    """The default simulator has centre factors (no centre term in the model) and no
    ethnicity effect in Newcastle: the projection moves the terms correlated with the
    centre, but not age and sex, which are independent of everything and multiplicative."""
    cohort = simulate_cohort(cohort_parameters, scale=1.0, seed=SEED)
    estimand = population_estimand(cohort_parameters, cohort.truth)
    truth = cohort.truth["coefficients"]
    for term, value in truth.items():
        if term.startswith(("age_group", "sex")):
            assert estimand[term] == pytest.approx(value, abs=1e-12), term
    # the urban, diverse centres have the larger positive factors and lean to the 4th
    # quartile and to minorities: those terms absorb part of the centre factor
    assert estimand["deprivation[4th]"] > truth["deprivation[4th]"] + 0.02
    assert estimand["ethnicity[South Asian]"] > truth["ethnicity[South Asian]"]


def test_large_sample_converges_to_the_estimand_not_the_truth(cohort_parameters):
    """The pooled fit on a 233k-record cohort (scale 4) is consistent with the exact
    estimand and rejects the simulator's coefficients."""
    cohort = simulate_cohort(cohort_parameters, scale=4.0, seed=7)
    z, chi2 = wald(cohort, population_estimand(cohort_parameters, cohort.truth))
    assert np.abs(z).max() < 4 and chi2 < CHI2_999, (np.round(z, 2), chi2)
    _, against_truth = wald(cohort, cohort.truth["coefficients"])
    assert against_truth > CHI2_999


def test_heterogeneous_estimand(cohort_parameters):
    """With sd > 0: each centre's own projection is its generating coefficients (its
    rate is log-linear), the pooled one is neither a centre's nor the homogeneous one,
    and a large sample converges to it."""
    parameters = variant(cohort_parameters, sd=0.1)
    cohort = simulate_cohort(parameters, scale=4.0, seed=7)
    centres = cohort.truth["heterogeneity"]["centre_coefficients"]
    for centre in ("Barts", "Newcastle"):
        own = population_estimand(parameters, cohort.truth, centres=[centre])
        np.testing.assert_allclose([own[k] for k in centres[centre]], list(centres[centre].values()), rtol=0, atol=1e-10)
    pooled = population_estimand(parameters, cohort.truth)
    homogeneous = simulate_cohort(cohort_parameters, scale=4.0, seed=7)
    flat = population_estimand(cohort_parameters, homogeneous.truth)
    terms = [t for t in pooled if t != "Intercept"]
    assert max(abs(pooled[t] - flat[t]) for t in terms) > 0.01
    assert all(max(abs(pooled[t] - c[t]) for t in terms) > 0.01 for c in centres.values())
    z, chi2 = wald(cohort, pooled)
    assert np.abs(z).max() < 4 and chi2 < CHI2_999, (np.round(z, 2), chi2)


def test_variant_and_centre_subsets(cohort_parameters):
    cohort = simulate_cohort(cohort_parameters, scale=1.0, seed=SEED)
    record = estimand_record(cohort_parameters, cohort.truth)
    features = tuple(f for f in FEATURES if f != "ethnicity")
    assert list(record["no_ethnicity"]) == list(Design.build(None, features).names)
    table = population_table(cohort_parameters, cohort.truth)
    # expected records = the cohort's size; expected positives = its positive share
    assert table[..., 0].sum() == pytest.approx(len(cohort.frame), rel=1e-12)
    assert table[..., 1].sum() / table[..., 0].sum() == pytest.approx(0.20, abs=0.01)
    # the variant is the projection of the same table without ethnicity
    assert record["no_ethnicity"] == projection(table, features)
    parts = population_table(cohort_parameters, cohort.truth, ["Leeds"]) + population_table(
        cohort_parameters, cohort.truth, [c for c in cohort_parameters["centres"] if c != "Leeds"])
    np.testing.assert_allclose(parts, table, rtol=1e-12)
    with pytest.raises(InputError, match="centres \\['Cardiff'\\] not in the cohort parameters"):
        population_table(cohort_parameters, cohort.truth, ["Cardiff"])


def test_truth_from_other_parameters_stops(cohort_parameters):
    cohort = simulate_cohort(cohort_parameters, scale=0.25, seed=SEED)
    with pytest.raises(InputError, match="no 'heterogeneity' block, but the cohort parameters have heterogeneity.sd = 0.1"):
        population_estimand(variant(cohort_parameters, sd=0.1), cohort.truth)
    spread = simulate_cohort(variant(cohort_parameters, sd=0.1), scale=0.25, seed=SEED)
    with pytest.raises(InputError, match="heterogeneity.sd = 0.1, cohort parameters 0.05"):
        population_estimand(variant(cohort_parameters, sd=0.05), spread.truth)


def test_projection_checks_the_score():
    """A table the GLM cannot fit (no positives) stops instead of returning noise."""
    table = np.zeros((7, 2, 8, 4, 5, 2))
    table[..., 0] = 1.0
    with pytest.raises(RuntimeError, match="did not fit"):
        projection(table)


def test_mixture_estimands(cohort_parameters):
    """The coverage figure's estimands: a mixture of centres' populations weighted by records.

    One centre alone is that centre's projection; all centres by their sizes the pooled
    population's; the totals do not matter; and another coding is the same model."""
    from synthshare.analysis.estimand import centre_tables, mixture_estimands
    from synthshare.cohort.simulated import centre_sizes
    from synthshare.variables import FEATURE_LEVELS

    parameters = variant(cohort_parameters, sd=0.1)
    cohort = simulate_cohort(parameters, scale=1.0, seed=SEED)
    centres = ["Barts", "Leeds", "Newcastle"]
    unit = centre_tables(parameters, cohort.truth, centres)
    first = Design.build()
    alone = mixture_estimands(unit, np.array([[0.0, 7.0, 0.0]]), first)[0]
    leeds = population_estimand(parameters, cohort.truth, centres=["Leeds"])
    np.testing.assert_allclose(alone, [leeds[n] for n in first.names], atol=1e-10)

    sizes = centre_sizes(parameters, 1.0)
    weights = np.array([[sizes[c] for c in centres]], float)
    pooled = population_estimand(parameters, cohort.truth, centres=centres)
    both = mixture_estimands(unit, np.concatenate([weights, 3.5 * weights]), first)
    np.testing.assert_allclose(both[0], [pooled[n] for n in first.names], atol=1e-10)
    np.testing.assert_allclose(both[1], both[0], atol=1e-12)

    # the party's coding: β'_f[l] = β_f[l] − β_f[r], intercept + Σ_f β_f[r]
    reference = {"deprivation": "3rd", "ethnicity": "South Asian", "age_group": "[60, 65)"}
    coded = Design.build(reference)
    recoded = mixture_estimands(unit, weights, coded)[0]
    beta = dict(zip(first.names, both[0]))
    level = {f: {lv: (0.0 if i == 0 else beta[f"{f}[{lv}]"]) for i, lv in enumerate(FEATURE_LEVELS[f])} for f in FEATURES}
    expected = {"Intercept": beta["Intercept"] + sum(level[f][reference[f]] for f in reference)}
    for name in coded.names[1:]:
        feature, lv = name[:-1].split("[", 1)
        expected[name] = level[feature][lv] - level[feature][reference.get(feature, FEATURE_LEVELS[feature][0])]
    np.testing.assert_allclose(recoded, [expected[n] for n in coded.names], atol=1e-9)
