"""The generator stage under Snakemake: data -> fit_generators_centres -> collect_ledger.

config/smoke.yaml cut to one (ε, f, seed) and no uniform or skew experiments, so the
data stage and exactly one generator job run; the files must meet docs/architecture.md.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthshare.generator.ledger import COLUMNS as LEDGER_COLUMNS
from synthshare.generator.ledger import within_stated_error
from synthshare.variables import COLUMNS, FEATURE_LEVELS, OUTCOME
from tests.conftest import copy_workflow, run_cut_smoke

SNAKEFILE = '''
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generate.smk"


rule generate_only:
    input:
        rules.generate.input,
    default_target: True
'''


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    def cut(config: dict) -> None:
        config.update(seeds=[123], epsilons=[1.0], fractions=[0.5])
        config["uniform"]["party_counts"] = []
        config["skew"]["fractions"] = []

    workdir = copy_workflow(tmp_path_factory.mktemp("generate"))
    config = run_cut_smoke(workdir, "generate_test", SNAKEFILE, cut)
    return workdir, config


@pytest.mark.slow
def test_workflow_writes_synthetic_sets_and_the_ledger(generated):
    workdir, config = generated
    results = workdir / "results" / config["run"]
    parties = config["parties"]
    ledger = pd.read_csv(results / "privacy/ledger.csv")
    assert list(ledger.columns) == list(LEDGER_COLUMNS)
    assert sorted(ledger["party"]) == sorted(parties) and (ledger["epsilon_target"] == 1.0).all()
    for row in ledger.to_dict("records"):
        assert within_stated_error(row) == {"fourier": True, "pld": True}
        assert row["delta"] <= config["generator"]["delta"] * 1.01
        assert json.loads(row["versions"])["d3p"] == "0.2.0"
    sets = config["generator"]["synthetic_sets"]
    for party in parties:
        folder = results / f"generator/centres/eps1/f0.5/seed123/{party}"
        local = pd.read_parquet(results / f"data/local/centres/f0.5/{party}.parquet")
        synthetic = pd.read_parquet(folder / "synthetic.parquet")
        assert list(synthetic.columns) == list(COLUMNS) + ["set"]
        assert synthetic.groupby("set").size().to_dict() == {k: len(local) for k in range(sets)}
        assert synthetic[OUTCOME].dtype == bool and (synthetic["assessment_center"] == party).all()
        for feature, levels in FEATURE_LEVELS.items():
            assert set(synthetic[feature]) <= set(levels)
        elbo = pd.read_csv(folder / "elbo.csv")
        assert elbo["epoch"].tolist() == list(range(1, config["generator"]["epochs"] + 1))
        assert np.isfinite(elbo["elbo"]).all()
        record = json.loads((folder / "privacy.json").read_text())
        assert record["N"] == len(local) and record["party"] == party
    # σ came from the one calibration job of ε = 1, and every party's record says so
    # exactly (the ledger CSV rounds to 10 digits; privacy.json keeps every bit).
    noise = json.loads((results / "privacy/noise/eps1.json").read_text())
    assert noise["epsilon"] == 1.0
    for party in parties:
        record = json.loads((results / f"generator/centres/eps1/f0.5/seed123/{party}/privacy.json").read_text())
        assert (record["sigma"], record["epsilon_pld"]) == (noise["sigma"], noise["epsilon_pld"])
    log = (results / "logs/generate/centres_eps1_f0.5_seed123.log").read_text()
    assert "ELBO/record" in log and "100%" in log  # the progress bar with the running ELBO
    assert (results / "benchmarks/generate/centres_eps1_f0.5_seed123.tsv").exists()
