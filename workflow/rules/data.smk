# Data stage: cohort -> per-centre train/test split -> the parties' local data sets.


def cohort_inputs(wildcards):
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


COHORT_SCRIPTS = {
    "simulated": "../../scripts/make_simulated_cohort.py",
    "file": "../../scripts/read_cohort_file.py",
    "ukb_raw": "../../scripts/build_ukb_cohort.py",
}


rule cohort:
    input:
        unpack(cohort_inputs),
    output:
        cohort=f"{RESULTS}/data/cohort.parquet",
        truth=f"{RESULTS}/data/truth.json",
        flow=f"{RESULTS}/data/cohort_flow.csv",
    params:
        settings=config["cohort"][config["cohort"]["source"]],
        parties=parties_of("centres"),
        test_cutoff=config["cohort"]["ukb_raw"]["test_cutoff"],
        extra_centres=config["cohort"]["ukb_raw"]["extra_centres"],
        withdrawals=config["cohort"]["ukb_raw"]["withdrawals"] or None,
    log:
        f"{RESULTS}/logs/cohort.log",
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    script:
        COHORT_SCRIPTS[config["cohort"]["source"]]


rule split:
    input:
        cohort=rules.cohort.output.cohort,
    output:
        train=f"{RESULTS}/data/train.parquet",
        test=f"{RESULTS}/data/test.parquet",
        report=f"{RESULTS}/data/split_report.json",
        centres=report(
            f"{RESULTS}/data/centres.csv",
            caption="../report/centres.rst",
            category="1. Data",
        ),
    params:
        settings=config["split"],
        parties=parties_of("centres"),
    log:
        f"{RESULTS}/logs/split.log",
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    script:
        "../../scripts/split_cohort.py"


rule local_centres:
    input:
        train=rules.split.output.train,
    output:
        # party-major, fraction-minor: the order scripts/make_local_centres.py writes in
        [local_path("centres", f, p) for p in parties_of("centres") for f in centre_fractions(config)],
    params:
        parties=parties_of("centres"),
        fractions=centre_fractions(config),
        seed=config["subsample_seed"],
    log:
        f"{RESULTS}/logs/local_centres.log",
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    script:
        "../../scripts/make_local_centres.py"


# One rule per party count M: the number of outputs (M files) differs between them.
for _party_count in config["uniform"]["party_counts"]:

    rule:
        name:
            f"local_uniform{_party_count}"
        input:
            train=rules.split.output.train,
        output:
            [local_path(f"uniform{_party_count}", config["uniform"]["fraction"], p) for p in uniform_parties(_party_count)],
        params:
            fraction=config["uniform"]["fraction"],
            seed=config["uniform"]["seed"],
        log:
            f"{RESULTS}/logs/local_uniform{_party_count}.log",
        resources:
            mem_mb=attempt_scaled(2000),
            runtime=attempt_scaled(10),
        script:
            "../../scripts/make_uniform_parties.py"


rule skewed_party:
    input:
        test=rules.split.output.test,
    output:
        local=[skew_local_path(s) for s in config["skew"]["fractions"]],
        evaluation=f"{RESULTS}/data/skew/eval.parquet",
    params:
        fractions=config["skew"]["fractions"],
        ethnicity=config["skew"]["ethnicity"],
        seed=config["skew"]["seed"],
    log:
        f"{RESULTS}/logs/skewed_party.log",
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    script:
        "../../scripts/make_skewed_party.py"


rule data:
    """Target: the whole data stage (snakemake data)."""
    input:
        data_outputs(),
