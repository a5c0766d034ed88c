# Config loading, the experiment grid, wildcard constraints and input functions.
# All path logic lives here; the other .smk files only name rules, inputs and outputs.

from pathlib import Path

from snakemake.utils import validate

from synthshare.figures.catalogue import figure_targets
from synthshare.grid import centre_fractions, model_settings, parties_of as grid_parties_of, skew_enabled
from synthshare.naming import format_number as fmt, uniform_parties
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

RESULTS = f"results/{config['run']}"
SEEDS = [int(s) for s in config["seeds"]]
MODEL_SETTINGS = model_settings(config)
REF_EPSILON = float(config["reference"]["epsilon"])
REF_FRACTION = float(config["reference"]["fraction"])
SKEW = skew_enabled(config)


wildcard_constraints:
    scenario=r"centres|uniform\d+",
    epsilon=r"[0-9.e+-]+",
    fraction=r"[0-9.e+-]+",
    seed=r"\d+",
    party_count=r"\d+",
    party=r"[A-Za-z0-9_-]+",


def parties_of(scenario):
    """Party names of a scenario (the centres, or u1 ... uM)."""
    return grid_parties_of(config, scenario)


def local_path(scenario, fraction, party):
    return f"{RESULTS}/data/local/{scenario}/f{fmt(float(fraction))}/{party}.parquet"


def skew_local_path(skew):
    return f"{RESULTS}/data/skew/local_s{fmt(float(skew))}.parquet"


def generator_dir(scenario, epsilon, fraction, seed, party):
    return f"{RESULTS}/generator/{scenario}/eps{fmt(float(epsilon))}/f{fmt(float(fraction))}/seed{seed}/{party}"


def synthetic_path(scenario, epsilon, fraction, seed, party):
    return f"{generator_dir(scenario, epsilon, fraction, seed, party)}/synthetic.parquet"


def all_privacy_records():
    """privacy.json of every generator fit of the run."""
    return [
        f"{generator_dir(s.scenario, s.epsilon, s.fraction, seed, party)}/privacy.json"
        for s in MODEL_SETTINGS
        for seed in SEEDS
        for party in parties_of(s.scenario)
    ]


def all_elbo_traces():
    """elbo.csv of every generator fit of the run (the figures stage plots them)."""
    return [
        f"{generator_dir(s.scenario, s.epsilon, s.fraction, seed, party)}/elbo.csv"
        for s in MODEL_SETTINGS
        for seed in SEEDS
        for party in parties_of(s.scenario)
    ]


def analysis_jobs():
    """ll.parquet of every analysis job of the run (scenario jobs, then skew jobs)."""
    jobs = [
        f"{RESULTS}/analysis/{s.scenario}/eps{fmt(s.epsilon)}/f{fmt(s.fraction)}/seed{seed}/ll.parquet"
        for s in MODEL_SETTINGS
        for seed in SEEDS
    ]
    if SKEW:
        jobs += [f"{RESULTS}/analysis/skew/eps{fmt(REF_EPSILON)}/seed{seed}/ll.parquet" for seed in SEEDS]
    return jobs


def data_outputs():
    """Everything the data stage writes for this config."""
    outputs = [
        f"{RESULTS}/data/centres.csv",
        f"{RESULTS}/data/truth.json",
        f"{RESULTS}/data/cohort_flow.csv",
    ]
    outputs += [local_path("centres", f, p) for p in parties_of("centres") for f in centre_fractions(config)]
    for m in config["uniform"]["party_counts"]:
        outputs += [local_path(f"uniform{m}", config["uniform"]["fraction"], p) for p in uniform_parties(m)]
    if SKEW:
        outputs += [skew_local_path(s) for s in config["skew"]["fractions"]]
        outputs.append(f"{RESULTS}/data/skew/eval.parquet")
    return outputs


def attempt_scaled(base):
    """A resource that doubles with each retry (attempt 1, 2, ...)."""
    return lambda wildcards, attempt: base * 2 ** (attempt - 1)
