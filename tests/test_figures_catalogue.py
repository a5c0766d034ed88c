"""The figures catalogue: which products a config requests (a pure function of the config)."""

from __future__ import annotations

import copy

import pytest
import yaml

from synthshare.config import check_config, load_schema
from synthshare.figures.catalogue import claim_settings, figure_targets, requested_products
from tests.conftest import REPO

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")


def load(name: str) -> dict:
    return check_config(yaml.safe_load((REPO / "config" / name).read_text()), SCHEMA, name)


def names(config: dict) -> list[str]:
    return [p.name for p in requested_products(config)]


def test_smoke_config_requests_every_product():
    assert names(load("smoke.yaml")) == [
        "fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig_s1", "fig_s2",
        "ll_vs_epsilon", "ll_vs_parties", "elbo", "coef_vs_truth", "coverage",
    ]


def test_paper_config_requests_every_product():
    assert set(names(load("paper.yaml"))) == set(names(load("smoke.yaml")))


def test_minimal_grid_requests_only_what_it_has():
    config = load("smoke.yaml")
    config.update(epsilons=[1.0], fractions=[0.5], uniform={**config["uniform"], "party_counts": []})
    # No f = 1 models: no skew experiment either (grid.skew_enabled).
    assert names(config) == ["fig1", "fig2", "elbo", "coef_vs_truth", "coverage"]


@pytest.mark.parametrize("change, missing", [
    ({"figures": {"fraction_party": "Bury"}}, {"fig3", "fig4"}),   # Bury is not a smoke party
    ({"fractions": [0.2, 0.5]}, {"fig4", "fig5"}),                 # no f = 1
    ({"epsilons": [1.0, 4.0]}, {"fig_s1", "fig_s2"}),              # no ε = 2
    ({"reference": {"epsilon": 2.0, "fraction": 0.5}}, {"fig_s1", "fig_s2"}),  # Fig 1 is already at ε = 2
    ({"skew": {"fractions": [], "ethnicity": "South Asian", "seed": 13}}, {"fig5"}),
])
def test_a_figure_without_its_inputs_is_not_requested(change, missing):
    base = load("smoke.yaml")
    config = copy.deepcopy(base)
    config.update(change)
    assert set(names(base)) - set(names(config)) == missing


def test_real_data_has_no_truth_table():
    config = load("smoke.yaml")
    config["cohort"] = {**config["cohort"], "source": "file"}
    assert "coef_vs_truth" not in names(config)


def test_targets_are_every_figure_twice_every_table_and_claims():
    config = load("smoke.yaml")
    targets = figure_targets(config)
    assert len(targets) == len(set(targets))
    assert "results/smoke/claims.csv" in targets
    for name in ("fig1", "fig_s3", "fig2", "fig_s4", "fig5", "elbo"):
        assert f"results/smoke/figures/{name}.png" in targets and f"results/smoke/figures/{name}.pdf" in targets
    assert "results/smoke/tables/fig2.csv" in targets and "results/smoke/tables/elbo.csv" not in targets
    assert "results/smoke/tables/coverage.csv" in targets and "results/smoke/tables/coverage_by_party.csv" in targets
    pngs = [t for t in targets if t.endswith(".png")]
    assert len(pngs) == 15
    # a sweep's sub-run: the same products under results/<run>/sd<v>/
    assert figure_targets(config, "smoke/sd0.1") == [t.replace("results/smoke/", "results/smoke/sd0.1/") for t in targets]


def test_catalogue_is_pure():
    config = load("config.yaml")
    before = copy.deepcopy(config)
    assert figure_targets(config) == figure_targets(copy.deepcopy(config))
    assert config == before


def test_claim_settings_follow_the_grid():
    settings = claim_settings(load("paper.yaml"))
    assert settings["fractions"] == [0.1, 0.2, 0.5, 1.0] and settings["epsilons"] == [0.5, 1.0, 2.0, 4.0]
    assert settings["fraction_party"] == "Newcastle" and settings["supplement_epsilon"] == 2.0
    assert settings["skews"] == [0.1, 0.25, 0.5, 0.75, 1.0]
