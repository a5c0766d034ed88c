"""The whole workflow end to end on config/smoke.yaml: every product, the contracts, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from synthshare.audit.settings import arm_name
from synthshare.config import check_config, load_schema
from synthshare.figures.catalogue import figure_targets
from synthshare.figures.claims import AUDIT_CLAIMS, CLAIMS
from synthshare.grid import model_settings, parties_of
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_config() -> dict:
    raw = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    return check_config(raw, load_schema(REPO / "workflow/schemas/config.schema.yaml"))


def test_every_requested_product_exists_and_figures_are_real_images(smoke_run, smoke_config):
    workdir = smoke_run["workdir"]
    targets = figure_targets(smoke_config)
    assert any(t.endswith("fig5.png") for t in targets) and any(t.endswith("ll_vs_parties.png") for t in targets)
    for target in targets:
        path = workdir / target
        assert path.is_file() and path.stat().st_size > 0, target
        if target.endswith(".png"):
            with Image.open(path) as image:
                width, height = image.size
                pixels = np.asarray(image.convert("L"), dtype=float)
            assert width >= 600 and height >= 400, (target, image.size)
            assert pixels.std() > 5, f"{target} looks blank"


def test_claims_table_has_every_claim(smoke_run):
    claims = pd.read_csv(smoke_run["results"] / "smoke/claims.csv")
    # The smoke config has a (tiny) audit section: its two rows come last.
    assert list(claims["claim_id"]) == [claim.claim_id for claim in CLAIMS + AUDIT_CLAIMS]
    assert claims["claim"].notna().all()


def test_the_tiny_audit_writes_its_tables_figures_and_report_entries(smoke_run, smoke_config):
    """Plumbing only (config/smoke.yaml's audit has no power): every audit output exists."""
    audit = smoke_run["results"] / "smoke/audit"
    summary = pd.read_csv(audit / "summary.csv")
    arms = {arm_name(e) for e in smoke_config["audit"]["epsilons"]} | {"control"}
    assert set(summary["arm"]) == arms and set(summary["group"]) == {"vulnerable", "typical", "all"}
    assert summary["auc"].between(0, 1).all() and (summary["epsilon_lower_bound"] >= 0).all()
    assert set(pd.read_csv(audit / "anonymeter.csv")["evaluator"]) == {"singling_out", "linkability", "inference"}
    assert list(pd.read_csv(audit / "claims.csv")["claim_id"]) == [c.claim_id for c in AUDIT_CLAIMS]
    html = (smoke_run["results"] / "smoke/report.html").read_text(errors="replace")
    for name in ("audit_roc.png", "audit_per_target.png"):
        path = smoke_run["results"] / "smoke/figures" / name
        with Image.open(path) as image:
            assert image.size[0] >= 600 and np.asarray(image.convert("L"), dtype=float).std() > 5, name
        assert name in html, name


def test_report_contains_every_figure_and_the_tables(smoke_run, smoke_config):
    html = (smoke_run["results"] / "smoke/report.html").read_text(errors="replace")
    for target in figure_targets(smoke_config):
        if target.endswith(".png"):
            assert target.rsplit("/", 1)[-1] in html, target
    for name in ("centres.csv", "ledger.csv", "claims.csv"):
        assert name in html, name


def test_ledger_has_one_row_per_model_within_the_target(smoke_run, smoke_config):
    ledger = pd.read_csv(smoke_run["results"] / "smoke/privacy/ledger.csv")
    expected = sum(len(parties_of(smoke_config, s.scenario)) for s in model_settings(smoke_config)) * len(smoke_config["seeds"])
    assert len(ledger) == expected
    assert (ledger["epsilon_fourier"] <= ledger["epsilon_target"] + ledger["epsilon_fourier_error"]).all()
    assert (ledger["epsilon_pld"] <= ledger["epsilon_target"] + ledger["epsilon_pld_error"]).all()
    assert (ledger["delta"] >= ledger["delta_accountant"]).all()


def test_tidy_table_contract(smoke_run, smoke_config):
    ll = pd.read_parquet(smoke_run["results"] / "smoke/analysis/ll.parquet")
    assert list(ll.columns)[:11] == ["scenario", "party", "epsilon", "fraction", "skew", "seed", "variant", "order", "step", "draw", "ll"]
    assert set(ll["scenario"]) == {"centres", "uniform2", "skew"} | {f"uniform{m}" for m in smoke_config["uniform"]["party_counts"]}
    local = ll[ll["step"] == 0]
    assert (local["order"] == -1).all()
    centres = ll[(ll["scenario"] == "centres") & (ll["variant"] == "full")]
    last = centres.groupby("party")["step"].max()
    assert (last == len(parties_of(smoke_config, "centres")) - 1).all()
    assert centres["ll"].notna().mean() > 0.99


def test_synthetic_sets_match_the_input_levels(smoke_run, smoke_config):
    results = smoke_run["results"] / "smoke"
    local = pd.read_parquet(results / "data/local/centres/f0.5/Leeds.parquet")
    synthetic = pd.read_parquet(results / "generator/centres/eps1/f0.5/seed123/Leeds/synthetic.parquet")
    assert sorted(synthetic["set"].unique()) == list(range(smoke_config["generator"]["synthetic_sets"]))
    assert (synthetic.groupby("set").size() == len(local)).all()
    for column in local.columns:
        if column != "assessment_center":
            assert set(synthetic[column]) <= set(pd.read_parquet(results / "data/cohort.parquet")[column]), column
    assert synthetic["covid_test_result"].dtype == bool


def test_centres_summary(smoke_run, smoke_config):
    centres = pd.read_csv(smoke_run["results"] / "smoke/data/centres.csv")
    assert list(centres["party"]) == parties_of(smoke_config, "centres")
    truth = json.loads((smoke_run["results"] / "smoke/data/truth.json").read_text())
    assert "ethnicity[South Asian]" in truth["coefficients"]


@pytest.mark.parametrize("script, rule, wildcards, output", [
    ("write_claims.py", "claims", [], "smoke/claims.csv"),
    ("collect_ledger.py", "collect_ledger", [], "smoke/privacy/ledger.csv"),
    ("analyse_scenario.py", "analyse_scenario", ["scenario=uniform2", "epsilon=1", "fraction=0.5", "seed=124"],
     "smoke/analysis/uniform2/eps1/f0.5/seed124/ll.parquet"),
])
def test_a_script_run_standalone_is_the_workflow_job(smoke_run, script, rule, wildcards, output):
    """scripts/_entry.py: `python scripts/X.py --configfile F RULE WILDCARDS` reruns exactly the job."""
    import subprocess
    import sys

    workdir, target = smoke_run["workdir"], smoke_run["results"] / output
    before = target.read_bytes()
    done = subprocess.run([sys.executable, f"scripts/{script}", "--configfile", "config/smoke.yaml", rule, *wildcards],
                          cwd=workdir, env=smoke_run["env"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert target.read_bytes() == before


def test_a_standalone_script_names_a_wrong_rule_or_wildcard(smoke_run):
    import subprocess
    import sys

    workdir = smoke_run["workdir"]
    for args, expected in [(["no_such_rule"], "'no_such_rule' is not a rule of this workflow"),
                           (["analyse_scenario", "scenario=centres"], "missing ['epsilon', 'fraction', 'seed']")]:
        done = subprocess.run([sys.executable, "scripts/analyse_scenario.py", "--configfile", "config/smoke.yaml", *args],
                              cwd=workdir, env=smoke_run["env"], capture_output=True, text=True, timeout=600)
        assert done.returncode != 0 and expected in done.stderr, done.stderr[-2000:]
