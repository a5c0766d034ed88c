"""The heterogeneity sweep: sub-run names, cohort overrides, the DAG it makes (synthshare.sweep)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from synthshare.cohort.simulated import load_parameters, simulate_cohort
from synthshare.errors import InputError
from synthshare.sweep import apply_overrides, cohort_overrides, run_names, sd_of_run, sub_run
from synthshare.variables import OUTCOME
from synthshare.workflow_config import ConfigSources, check_workflow_config
from tests.conftest import REPO, run_snakemake  # noqa: F401 (workflow_dir is a fixture)

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
COHORT_SCHEMA = REPO / "workflow/schemas/cohort_simulated.schema.yaml"


def _config(**heterogeneity):
    return {"run": "het", "heterogeneity": {"sds": [], "positive_share": None, **heterogeneity}}


def test_no_sweep_is_one_run_with_nothing_replaced():
    config = _config()
    assert run_names(config) == ["het"]
    assert cohort_overrides(config, "het") == {}


def test_sub_runs_and_their_overrides():
    config = _config(sds=[0.0, 0.1, 0.25], positive_share=0.1)
    assert run_names(config) == ["het/sd0", "het/sd0.1", "het/sd0.25"]
    assert sub_run("het", 0.1) == "het/sd0.1" and sd_of_run(config, "het/sd0.25") == 0.25
    assert sd_of_run(config, "het") is None and cohort_overrides(config, "het") == {}
    assert cohort_overrides(config, "het/sd0.1") == {"heterogeneity": {"sd": 0.1}, "positive_share": 0.1}
    assert cohort_overrides(_config(sds=[0.2]), "het/sd0.2") == {"heterogeneity": {"sd": 0.2}}


def test_overrides_replace_only_their_keys_and_copy():
    parameters = load_parameters(REPO / "config/cohort_simulated.yaml")
    before = copy.deepcopy(parameters)
    applied = apply_overrides(parameters, {"heterogeneity": {"sd": 0.2}, "positive_share": 0.1})
    assert parameters == before
    assert applied["heterogeneity"] == {"sd": 0.2} and applied["positive_share"] == 0.1
    assert {k: v for k, v in applied.items() if k not in ("heterogeneity", "positive_share")} == \
        {k: v for k, v in before.items() if k not in ("heterogeneity", "positive_share")}


def test_the_shipped_sweep_levels_can_be_simulated():
    """config/heterogeneity.yaml's levels at its share give probabilities <= 1 (the simulator
    refuses otherwise), and its largest SD would not at the parameter file's own share."""
    from synthshare.yaml_strict import load_mapping

    sweep = load_mapping(REPO / "config/heterogeneity.yaml")
    parameters = load_parameters(REPO / "config/cohort_simulated.yaml")
    config = {"run": sweep["run"], "heterogeneity": sweep["heterogeneity"]}
    for run in run_names(config):
        cohort = simulate_cohort(apply_overrides(parameters, cohort_overrides(config, run)), 1.0, sweep["cohort"]["simulated"]["seed"])
        assert cohort.frame[OUTCOME].mean() == pytest.approx(sweep["heterogeneity"]["positive_share"], abs=0.01)
    too_high = apply_overrides(parameters, {"heterogeneity": {"sd": max(sweep["heterogeneity"]["sds"])}})
    with pytest.raises(InputError, match="positive probability of .* > 1"):
        simulate_cohort(too_high, 1.0, sweep["cohort"]["simulated"]["seed"])


def test_a_parameter_file_with_its_own_sd_is_refused_in_a_sweep(tmp_path):
    text = (REPO / "config/cohort_simulated.yaml").read_text().replace("  sd: 0.0", "  sd: 0.1")
    (tmp_path / "params.yaml").write_text(text)
    user = tmp_path / "my.yaml"
    user.write_text(f"run: x\ncohort: {{simulated: {{parameters: {tmp_path / 'params.yaml'}}}}}\nheterogeneity: {{sds: [0.0, 0.1]}}\n")
    sources = ConfigSources([REPO / "config/config.yaml"], [user])
    merged = {**sources.raw[REPO / "config/config.yaml"], **sources.raw[user]}
    with pytest.raises(InputError, match=r"heterogeneity\.sds = \[0\.0, 0\.1\], but .*params\.yaml sets heterogeneity\.sd = 0\.1"):
        check_workflow_config(merged, sources, SCHEMA, COHORT_SCHEMA)


def _dry_run_jobs(workflow_dir: Path, *args: str) -> str:
    process = run_snakemake(workflow_dir, "-n", *args)
    return process.stdout + process.stderr


def test_the_sweep_dag_runs_every_stage_per_level(workflow_dir: Path):
    (workflow_dir / "sweep.yaml").write_text(
        (REPO / "config/smoke.yaml").read_text().replace("run: smoke", "run: sw")
        + "\nheterogeneity:\n  sds: [0.0, 0.2]\n  positive_share: 0.1\n")
    output = _dry_run_jobs(workflow_dir, "--configfile", "sweep.yaml")
    for level in ("sd0", "sd0.2"):
        assert f"results/sw/{level}/data/cohort.parquet" in output
        assert f"results/sw/{level}/analysis/intervals.parquet" in output
        assert f"results/sw/{level}/claims.csv" in output
    assert "results/sw/sweep/figures/heterogeneity_gain.png" in output
    assert re.search(r"^heterogeneity_sweep\s+1$", output, re.M)
    assert re.search(r"^cohort\s+2$", output, re.M)
    assert "results/sw/data/" not in output


def test_without_a_sweep_the_paths_have_no_level(workflow_dir: Path):
    output = _dry_run_jobs(workflow_dir, "--configfile", "config/smoke.yaml")
    assert "results/smoke/data/cohort.parquet" in output and "/sd0" not in output
    assert "heterogeneity_sweep" not in output
