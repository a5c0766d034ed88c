# Config loading, the experiment grid, wildcard constraints and input functions.
# Paths come from synthshare.paths.RunPaths (PATHS); the other .smk files only name rules,
# inputs and outputs.

import re
from pathlib import Path

from snakemake.utils import validate

from synthshare.audit.settings import arm_name, audit_settings
from synthshare.figures.catalogue import figure_targets
from synthshare.grid import centre_fractions, model_settings, parties_of as grid_parties_of, skew_enabled
from synthshare.naming import uniform_parties
from synthshare.paths import RunPaths
from synthshare.sweep import cohort_overrides, run_names, sweep_sds
from synthshare.workflow_config import ConfigSources, check_workflow_config


# One line naming the file, the key, the value and what is allowed, before any job runs
# (synthshare.workflow_config: every config file as written, the run name, cross-key
# checks, the cohort's input files and parameter file); then Snakemake's own validation
# of the completed config (it must agree).
_USER_CONFIGFILES = list(workflow.config_settings.configfiles)
_CONFIG_SOURCES = ConfigSources(
    [f for f in workflow.configfiles if f not in _USER_CONFIGFILES], _USER_CONFIGFILES, dict(workflow.config_settings.config)
)
config.update(
    check_workflow_config(
        config,
        _CONFIG_SOURCES,
        workflow.source_path("../schemas/config.schema.yaml"),
        workflow.source_path("../schemas/cohort_simulated.schema.yaml"),
        sorted(Path(workflow.basedir, "profiles").glob("*/config*.yaml")),
    )
)
validate(config, "../schemas/config.schema.yaml")

# Every rule's paths carry the run as the ``run`` wildcard: a heterogeneity sweep
# (synthshare.sweep) runs the whole pipeline once per sub-run results/<run>/sd<v>/, a
# plain config has the one run results/<run>/ (the same paths as without the wildcard).
RUNS = run_names(config)
SWEEP = bool(sweep_sds(config))
PATHS = RunPaths("{run}")
SEEDS = [int(s) for s in config["seeds"]]
MODEL_SETTINGS = model_settings(config)
REF_EPSILON = float(config["reference"]["epsilon"])
REF_FRACTION = float(config["reference"]["fraction"])
SKEW = skew_enabled(config)


wildcard_constraints:
    run="|".join(re.escape(r) for r in RUNS),
    scenario=r"centres|uniform\d+",
    epsilon=r"[0-9.e+-]+",
    fraction=r"[0-9.e+-]+",
    seed=r"\d+",
    party_count=r"\d+",
    party=r"[A-Za-z0-9_-]+",


def parties_of(scenario):
    """Party names of a scenario (the centres, or u1 ... uM)."""
    return grid_parties_of(config, scenario)


def get_cohort_inputs(wildcards):
    """The cohort rule's inputs: what the configured source reads."""
    source = config["cohort"]["source"]
    if source == "simulated":
        return {"parameters": config["cohort"]["simulated"]["parameters"]}
    if source == "file":
        return {"cohort": config["cohort"]["file"]["path"]}
    raw = config["cohort"]["ukb_raw"]
    inputs = {"main": raw["main"], "covid_tests": raw["covid_tests"]}
    if raw["withdrawals"]:
        inputs["withdrawals"] = raw["withdrawals"]
    return inputs


def report_category(name):
    """A report category; in a sweep prefixed with the sub-run (a wildcard), so that
    every level's figures get their own section of the one report."""
    return f"{{run}}: {name}" if SWEEP else name


def generator_files(kind, run):
    """One kind of generator file (synthshare.paths.GENERATOR_FILES) of every fit of ``run``."""
    paths = RunPaths(run)
    return [
        paths.generator_file(kind, s.scenario, s.epsilon, s.fraction, seed, party)
        for s in MODEL_SETTINGS
        for seed in SEEDS
        for party in parties_of(s.scenario)
    ]


def analysis_job_files(name, run):
    """One file (synthshare.paths.ANALYSIS_JOB_FILES) of every analysis job of ``run`` (scenario jobs, then skew jobs)."""
    paths = RunPaths(run)
    jobs = [paths.analysis_job(s.scenario, s.epsilon, s.fraction, seed, name) for s in MODEL_SETTINGS for seed in SEEDS]
    if SKEW:
        jobs += [paths.skew_job(REF_EPSILON, seed, name) for seed in SEEDS]
    return jobs


def data_outputs(run):
    """Everything the data stage writes for ``run``."""
    paths = RunPaths(run)
    outputs = [paths.centres, paths.truth, paths.cohort_flow]
    outputs += [paths.local("centres", f, p) for p in parties_of("centres") for f in centre_fractions(config)]
    for m in config["uniform"]["party_counts"]:
        outputs += [paths.local(f"uniform{m}", config["uniform"]["fraction"], p) for p in uniform_parties(m)]
    if SKEW:
        outputs += [paths.skew_local(s) for s in config["skew"]["fractions"]]
        outputs.append(paths.skew_eval)
    return outputs


def every_run(targets):
    """``targets(run)`` of every run of the config, concatenated."""
    return [path for run in RUNS for path in targets(run)]


def attempt_scaled(base):
    """A resource that doubles with each retry (attempt 1, 2, ...)."""
    return lambda wildcards, attempt: base * 2 ** (attempt - 1)


# The audit (workflow/rules/audit.smk): its checked settings, None without an `audit` section.
AUDIT = (
    audit_settings(
        config["audit"], parties_of("centres"), centre_fractions(config), _CONFIG_SOURCES.source_of(["audit"])
    )
    if "audit" in config
    else None
)


def audit_job_files(name):
    """One kind of audit job file of every audited party and arm."""
    return [
        PATHS.audit_job_file(name, p.party, p.fraction, arm_name(e)) for p in AUDIT.parties for e in AUDIT.arm_epsilons
    ]


def audit_outputs(run):
    """Everything the audit of ``run`` writes (empty without an `audit` section)."""
    if AUDIT is None:
        return []
    paths = RunPaths(run)
    tables = ["summary.csv", "per_target.csv", "outliers.csv", "roc.parquet", "anonymeter.csv", "claims.csv"]
    figures = [paths.figure(name, ext) for name in ("audit_roc", "audit_per_target") for ext in ("png", "pdf")]
    return [paths.audit_table(t) for t in tables] + figures


# The heterogeneity sweep's own products (synthshare.sweep): every level's ll.parquet.
SWEEP_PATHS = RunPaths(f"{config['run']}/sweep")
SWEEP_FIGURES = ("heterogeneity_gain", "heterogeneity_steps")
SWEEP_TABLES = ("heterogeneity_gain", "heterogeneity_claims")


def sweep_targets():
    """Every file of the sweep's products; none without a sweep."""
    if not SWEEP:
        return []
    return [SWEEP_PATHS.figure(n, e) for n in SWEEP_FIGURES for e in ("pdf", "png")] + [
        SWEEP_PATHS.table(n) for n in SWEEP_TABLES
    ]
