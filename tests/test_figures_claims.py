"""The claims table: a row for every claim, "not tested" rows for claims outside the grid,
and verdicts that follow fabricated effects in both directions (tests/figures_fixture.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from synthshare.config import check_config, load_schema
from synthshare.figures.catalogue import claim_settings
from synthshare.figures.claims import CLAIMS, COLUMNS, evaluate_claims
from tests.conftest import REPO
from tests.figures_fixture import Effects, fabricate_run

EIGHT_PARTIES = ["Barts", "Bristol", "Croydon", "Leeds", "Newcastle", "Oxford", "Sheffield", "Stoke"]



@pytest.fixture(scope="module")
def smoke_config() -> dict:
    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    return check_config(yaml.safe_load((REPO / "config/smoke.yaml").read_text()), schema)


def claims_for(config: dict, root, effects: Effects = Effects(), edit=None) -> pd.DataFrame:
    inputs = fabricate_run(root / "results", config, effects=effects)
    if edit is not None:
        edit(inputs["ll"])
    claims = evaluate_claims(inputs["ll"], claim_settings(config))
    return claims.set_index("claim_id")


def test_every_claim_has_a_row_with_the_columns(smoke_config, tmp_path):
    claims = claims_for(smoke_config, tmp_path)
    assert list(claims.index) == [c.claim_id for c in CLAIMS]
    assert list(claims.reset_index().columns) == list(COLUMNS)
    assert claims.loc["fraction_party_combined_beats_local", "claim"].startswith("Newcastle")


def test_paper_direction_holds(smoke_config, tmp_path):
    # Four skew levels x two seeds: Spearman's test has power at n = 8 (at n = 4 it cannot reach 0.05).
    config = {**smoke_config, "skew": {**smoke_config["skew"], "fractions": [0.1, 0.25, 0.5, 1.0]}}
    holds = claims_for(config, tmp_path)["holds"]
    for claim in ("most_parties_benefit", "gain_grows_as_data_shrinks", "fraction_party_combined_beats_local",
                  "fraction_party_without_ethnicity_beats_local", "correction_grows_with_skew", "larger_epsilon_helps",
                  "all_parties_benefit_at_eps2"):
        assert holds[claim] is True, claim
    # The fixture's combined fits rise monotonically: no early peak for the good party.
    assert holds["good_party_peaks_early"] is False


def test_opposite_direction_does_not_hold(smoke_config, tmp_path):
    claims = claims_for(smoke_config, tmp_path, Effects(data_size=-1, epsilon=-1, skew=-1))
    for claim in ("gain_grows_as_data_shrinks", "correction_grows_with_skew", "larger_epsilon_helps"):
        assert claims.loc[claim, "holds"] is False, claim
    assert claims.loc["correction_grows_with_skew", "value"] > 0  # Spearman rho points the other way
    no_sharing = claims_for(smoke_config, tmp_path / "b", Effects(sharing=-1))
    for claim in ("most_parties_benefit", "fraction_party_combined_beats_local", "all_parties_benefit_at_eps2"):
        assert no_sharing.loc[claim, "holds"] is False, claim


def test_claims_outside_the_grid_say_so(smoke_config, tmp_path):
    config = {**smoke_config, "epsilons": [1.0], "fractions": [0.5],
              "uniform": {**smoke_config["uniform"], "party_counts": []}}
    claims = claims_for(config, tmp_path)
    untested = ["gain_saturates_after_five", "gain_grows_as_data_shrinks", "fraction_party_combined_beats_local",
                "fraction_party_without_ethnicity_beats_local", "correction_grows_with_skew", "larger_epsilon_helps",
                "all_parties_benefit_at_eps2"]
    for claim in untested:
        assert claims.loc[claim, "detail"].startswith("not tested in this run"), claim
        assert claims.loc[claim, "holds"] is None and np.isnan(claims.loc[claim, "pvalue"])
    assert claims.loc["most_parties_benefit", "holds"] is True


def test_saturation_with_eight_parties(smoke_config, tmp_path):
    config = {**smoke_config, "parties": EIGHT_PARTIES, "epsilons": [1.0], "fractions": [0.5],
              "uniform": {**smoke_config["uniform"], "party_counts": []}}
    claims = claims_for(config, tmp_path)
    # Fixture gains follow 1 - exp(-j/1.5): about 96 % of the gain by step 5 of 7.
    assert claims.loc["gain_saturates_after_five", "value"] == pytest.approx(0.96, abs=0.03)
    assert claims.loc["gain_saturates_after_five", "holds"] is True


def test_good_party_peaking_early_is_found(smoke_config, tmp_path):
    def peak_then_drop(path):
        ll = pd.read_parquet(path)
        best = "Croydon"  # the fixture's best local fit among the smoke parties (last in CENTRES order)
        rows = (ll["party"] == best) & (ll["scenario"] == "centres")
        ll.loc[rows & (ll["step"] == 1), "ll"] += 0.05
        ll.loc[rows & (ll["step"] >= 3), "ll"] -= 0.05
        ll.to_parquet(path)

    claims = claims_for(smoke_config, tmp_path, edit=peak_then_drop)
    assert claims.loc["good_party_peaks_early", "value"] == 1
    assert claims.loc["good_party_peaks_early", "holds"] is True
    assert "Croydon" in claims.loc["good_party_peaks_early", "detail"]


def _coverage_csv(path, synthetic: float, real: float, terms: int = 20):
    """A coverage table (tables/coverage.csv's columns) with every slope term at the given coverage."""
    from synthshare.analysis.coverage import binomial_interval

    rows = []
    for source, value, epsilon in (("synthetic", synthetic, 1.0), ("real", real, float("nan"))):
        for step in (1, 5):
            for t in range(terms):
                k = int(round(value * 40))
                low, high = binomial_interval(np.array([k]), np.array([40]))
                rows.append({"scenario": "centres", "fraction": 0.5, "source": source, "epsilon": epsilon, "step": step,
                             "term": f"x[{t}]", "intervals": 40, "data_sets": 10, "covered": k, "coverage": k / 40,
                             "coverage_low": low[0], "coverage_high": high[0], "nominal": 0.95, "mean_width": 0.3,
                             "median_width": 0.3, "mean_error": 0.0})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_coverage_claims(smoke_config, tmp_path):
    inputs = fabricate_run(tmp_path / "results", smoke_config)
    settings = claim_settings(smoke_config)
    untested = evaluate_claims(inputs["ll"], settings).set_index("claim_id")
    assert untested.loc["synthetic_intervals_cover", "holds"] is None
    assert untested.loc["synthetic_intervals_cover", "detail"].startswith("not tested in this run")
    table = _coverage_csv(tmp_path / "coverage.csv", synthetic=0.40, real=0.95)
    claims = evaluate_claims(inputs["ll"], settings, table).set_index("claim_id")
    assert claims.loc["synthetic_intervals_cover", "holds"] is False
    assert claims.loc["synthetic_intervals_cover", "value"] == pytest.approx(0.40)
    assert "20 terms significantly below 0.95" in claims.loc["synthetic_intervals_cover", "detail"]
    assert claims.loc["real_intervals_cover", "holds"] is True
    # one data set behind the intervals (real-data sharing at the last step): not testable
    frame = pd.read_csv(table)
    frame.loc[frame["source"] == "real", "data_sets"] = 1
    frame.to_csv(table, index=False)
    claims = evaluate_claims(inputs["ll"], settings, table).set_index("claim_id")
    assert claims.loc["real_intervals_cover", "holds"] is None
    assert claims.loc["real_intervals_cover", "detail"].startswith("not testable: 1 distinct data set(s)")
