# Data stage: cohort -> per-centre train/test split -> the parties' local data sets.


COHORT_SCRIPTS = {
    "simulated": "../../scripts/make_simulated_cohort.py",
    "file": "../../scripts/read_cohort_file.py",
    "ukb_raw": "../../scripts/build_ukb_cohort.py",
}


rule cohort:
    input:
        unpack(get_cohort_inputs),
    output:
        cohort=PATHS.cohort,
        truth=PATHS.truth,
        flow=PATHS.cohort_flow,
    params:
        settings=config["cohort"][config["cohort"]["source"]],
        # a sweep's sub-run replaces the simulated cohort's heterogeneity (synthshare.sweep)
        overrides=lambda w: cohort_overrides(config, w.run),
        parties=parties_of("centres"),
        test_fraction=config["split"]["test_fraction"],
        test_cutoff=config["cohort"]["ukb_raw"]["test_cutoff"],
        extra_centres=config["cohort"]["ukb_raw"]["extra_centres"],
    log:
        PATHS.log("cohort"),
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    conda:
        "../envs/synthshare.yaml"
    script:
        COHORT_SCRIPTS[config["cohort"]["source"]]


rule split:
    input:
        cohort=rules.cohort.output.cohort,
    output:
        train=PATHS.train,
        test=PATHS.test,
        report=PATHS.split_report,
        centres=report(
            PATHS.centres,
            caption="../report/centres.rst",
            category=report_category("1. Data"),
        ),
    params:
        settings=config["split"],
        parties=parties_of("centres"),
    log:
        PATHS.log("split"),
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/split_cohort.py"


rule local_centres:
    input:
        train=rules.split.output.train,
    output:
        # party-major, fraction-minor: the order scripts/make_local_centres.py writes in
        [PATHS.local("centres", f, p) for p in parties_of("centres") for f in centre_fractions(config)],
    params:
        parties=parties_of("centres"),
        fractions=centre_fractions(config),
        seed=config["subsample_seed"],
    log:
        PATHS.log("local_centres"),
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    conda:
        "../envs/synthshare.yaml"
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
            [PATHS.local(f"uniform{_party_count}", config["uniform"]["fraction"], p) for p in uniform_parties(_party_count)],
        params:
            fraction=config["uniform"]["fraction"],
            seed=config["uniform"]["seed"],
        log:
            PATHS.log(f"local_uniform{_party_count}"),
        resources:
            mem_mb=attempt_scaled(2000),
            runtime=attempt_scaled(10),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/make_uniform_parties.py"


rule skewed_party:
    input:
        test=rules.split.output.test,
    output:
        local=[PATHS.skew_local(s) for s in config["skew"]["fractions"]],
        evaluation=PATHS.skew_eval,
    params:
        fractions=config["skew"]["fractions"],
        ethnicity=config["skew"]["ethnicity"],
        seed=config["skew"]["seed"],
    log:
        PATHS.log("skewed_party"),
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/make_skewed_party.py"


rule data:
    """Target: the whole data stage (snakemake data)."""
    input:
        every_run(data_outputs),
