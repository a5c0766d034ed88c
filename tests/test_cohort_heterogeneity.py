"""Centre-specific relative risks in the simulated cohort (issue 16): off by default, a
stream of their own, and the records follow each centre's recorded coefficients."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from synthshare.cohort.simulated import (
    centre_coefficients,
    centre_deviations,
    deviation_terms,
    simulate_cohort,
)
from synthshare.errors import InputError
from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design
from synthshare.glm.irls import PoissonBatchSolver
from synthshare.variables import COLUMNS, FEATURES, OUTCOME
from tests.script_jobs import load_script, script_job

SEED = 20240716


def with_sd(parameters: dict, sd: float | None) -> dict:
    """A copy of the parameters with ``heterogeneity.sd`` set (None: the key removed)."""
    changed = copy.deepcopy(parameters)
    changed.pop("heterogeneity", None)
    if sd is not None:
        changed["heterogeneity"] = {"sd": sd}
    return changed


def test_default_file_is_homogeneous(cohort_parameters):
    assert cohort_parameters["heterogeneity"] == {"sd": 0.0}


def test_sd_zero_is_the_cohort_without_the_option(cohort_parameters):
    without = simulate_cohort(with_sd(cohort_parameters, None), scale=0.25, seed=SEED)
    zero = simulate_cohort(with_sd(cohort_parameters, 0.0), scale=0.25, seed=SEED)
    assert zero.frame.equals(without.frame)
    assert json.dumps(zero.truth, sort_keys=True) == json.dumps(without.truth, sort_keys=True)
    assert "heterogeneity" not in zero.truth


def test_deviations_change_only_the_outcome(cohort_parameters):
    """Features come from the centres' own streams, the outcome's uniforms from theirs:
    only the rates, hence some outcomes, move."""
    zero = simulate_cohort(with_sd(cohort_parameters, 0.0), scale=0.5, seed=SEED)
    spread = simulate_cohort(with_sd(cohort_parameters, 0.1), scale=0.5, seed=SEED)
    features = [c for c in COLUMNS if c != OUTCOME]
    assert spread.frame[features].equals(zero.frame[features])
    changed = (spread.frame[OUTCOME] != zero.frame[OUTCOME]).mean()
    assert 0.0 < changed < 0.1
    assert spread.truth["deprivation_cut_points"] == zero.truth["deprivation_cut_points"]
    block = spread.truth["heterogeneity"]
    assert block["sd"] == 0.1
    assert set(block["deviations"]) == set(cohort_parameters["centres"])
    assert all(list(d) == deviation_terms() for d in block["deviations"].values())
    assert len(deviation_terms()) == 21


def test_deviation_streams(cohort_parameters):
    names = list(cohort_parameters["centres"])
    small, large = centre_deviations(names, 0.1, SEED), centre_deviations(names, 0.3, SEED)
    z = np.array([[small[c][t] / 0.1 for t in deviation_terms()] for c in names])
    # the same standard normals at every sd: a sweep is nested
    np.testing.assert_allclose([[large[c][t] for t in deviation_terms()] for c in names], 0.3 * z, rtol=1e-14)
    # a centre's deviations do not depend on the other centres listed
    assert centre_deviations(["Leeds"], 0.1, SEED)["Leeds"] == small["Leeds"]
    assert centre_deviations(names, 0.1, SEED + 1)["Leeds"] != small["Leeds"]
    assert len({tuple(row) for row in z}) == len(names)
    # 336 iid N(0, 1): mean within ±0.2 (4.6 SE), SD within ±15 % (3.9 SE)
    assert abs(z.mean()) < 0.2 and 0.85 < z.std() < 1.15


def test_records_follow_the_centre_coefficients(cohort_parameters):
    """The recorded per-centre coefficients are what generated that centre's records:
    the centre's own Poisson fit is within 4 SE of them (22 terms)."""
    parameters = with_sd(cohort_parameters, 0.1)
    cohort = simulate_cohort(parameters, scale=3.0, seed=SEED + 2)
    design = Design.build()
    for centre in ("Leeds", "Newcastle"):
        truth = cohort.truth["heterogeneity"]["centre_coefficients"][centre]
        expected = centre_coefficients(parameters, centre, cohort.truth["intercept_without_centre_factor"],
                                       cohort.truth["heterogeneity"]["deviations"][centre])
        assert truth == expected
        counts = count_cells(cohort.frame[cohort.frame["assessment_center"] == centre])
        fit = PoissonBatchSolver(design, kernel="numpy").fit(counts[None])
        z = (fit.coef[0] - np.array([truth[n] for n in design.names])) / np.sqrt(fit.var[0])
        # a rare level without positives (Newcastle's few Chinese records) has no finite MLE
        estimable = fit.present[0] & ~fit.zero_positive[0]
        assert estimable.sum() >= 20
        assert np.abs(z[estimable]).max() < 4, (centre, dict(zip(design.names, np.round(z, 2))))
    # Newcastle's minorities carry no elevated risk: its ethnicity terms are the deviations
    newcastle = cohort.truth["heterogeneity"]["centre_coefficients"]["Newcastle"]
    deviations = cohort.truth["heterogeneity"]["deviations"]["Newcastle"]
    assert all(newcastle[t] == deviations[t] for t in deviation_terms() if t.startswith("ethnicity["))


@pytest.mark.parametrize("sd", [-0.1, float("nan"), "0.1", True])
def test_bad_sd_stops(cohort_parameters, sd):
    with pytest.raises(InputError, match=r"heterogeneity\.sd = .*expected a finite number >= 0"):
        simulate_cohort(with_sd(cohort_parameters, sd), scale=0.1, seed=SEED)


def test_too_large_sd_names_it(cohort_parameters):
    with pytest.raises(InputError, match=r"positive probability of .* > 1.*heterogeneity\.sd"):
        simulate_cohort(with_sd(cohort_parameters, 1.0), scale=0.25, seed=SEED)


def test_script_writes_the_estimand_only_with_heterogeneity(cohort_parameters, tmp_path):
    """truth.json of a homogeneous cohort keeps its keys (and bytes); with sd > 0 it holds
    the centre coefficients and the pooled-population estimand of both variants."""
    script = load_script("make_simulated_cohort")
    written = {}
    for sd in (0.0, 0.1):
        folder = tmp_path / f"sd{sd}"
        folder.mkdir()
        (folder / "cohort.yaml").write_text(yaml.safe_dump(with_sd(cohort_parameters, sd)))
        outputs = {"cohort": folder / "cohort.parquet", "truth": folder / "truth.json", "flow": folder / "flow.csv"}
        script.main(script_job({"parameters": folder / "cohort.yaml"}, {"settings": {"scale": 0.25, "seed": SEED},
                                                                       "overrides": {}},
                               outputs, folder / "log.txt"))
        written[sd] = json.loads(outputs["truth"].read_text())
    assert "estimand" not in written[0.0] and "heterogeneity" not in written[0.0]
    estimand = written[0.1]["estimand"]
    assert set(estimand["full"]) == set(Design.build().names)
    assert set(estimand["no_ethnicity"]) == set(Design.build(None, [f for f in FEATURES if f != "ethnicity"]).names)
    assert set(written[0.1]["heterogeneity"]["centre_coefficients"]) == set(cohort_parameters["centres"])


def test_a_sweep_sub_run_is_the_cohort_of_its_overridden_parameters(cohort_parameters, tmp_path):
    """The cohort rule of a heterogeneity sweep's sub-run (synthshare.sweep) draws exactly
    the cohort of a parameter file with the replaced keys, and truth.json says what was replaced."""
    script = load_script("make_simulated_cohort")
    base, edited = tmp_path / "base", tmp_path / "edited"
    overrides = {"heterogeneity": {"sd": 0.2}, "positive_share": 0.1}
    changed = {**with_sd(cohort_parameters, 0.2), "positive_share": 0.1}
    truths = {}
    for folder, parameters, params in ((base, cohort_parameters, overrides), (edited, changed, {})):
        folder.mkdir()
        (folder / "cohort.yaml").write_text(yaml.safe_dump(parameters))
        outputs = {"cohort": folder / "cohort.parquet", "truth": folder / "truth.json", "flow": folder / "flow.csv"}
        script.main(script_job({"parameters": folder / "cohort.yaml"}, {"settings": {"scale": 0.25, "seed": SEED},
                                                                       "overrides": params},
                               outputs, folder / "log.txt"))
        truths[folder] = json.loads(outputs["truth"].read_text())
    assert (base / "cohort.parquet").read_bytes() == (edited / "cohort.parquet").read_bytes()
    assert truths[base].pop("parameter_overrides") == overrides
    assert truths[base] == truths[edited]
