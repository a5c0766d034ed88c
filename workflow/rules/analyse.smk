# Analysis stage: the study's Poisson regression on local (+ synthetic) data, Rubin's
# rules over the K synthetic sets, Monte Carlo test log-likelihoods (synthshare.analysis).
# One job per (scenario, ε, f, seed) for every party of the scenario, one per seed for
# the skewed party, one full-population reference, and a collector for the figures.
# Each job also writes intervals.parquet (Rubin's pieces of every step and order, and
# of the real-data yardstick) and selection.parquet (partner selection's rounds), issue 16.

from synthshare.analysis.resources import runtime_minutes as analysis_minutes

ORDERS = config["analysis"]["orders"]
SETS = config["generator"]["synthetic_sets"]
REAL_SHARING = config["analysis"]["real_sharing"]
SELECTION = config["analysis"]["selection"]["enabled"]

rule analyse_scenario:
    input:
        local=lambda w: [RunPaths(w.run).local(w.scenario, w.fraction, p) for p in parties_of(w.scenario)],
        synthetic=lambda w: [
            RunPaths(w.run).generator_file("synthetic", w.scenario, w.epsilon, w.fraction, w.seed, p) for p in parties_of(w.scenario)
        ],
        test=rules.split.output.test,
    output:
        ll=PATHS.analysis_job("{scenario}", "{epsilon}", "{fraction}", "{seed}", "ll"),
        coef=PATHS.analysis_job("{scenario}", "{epsilon}", "{fraction}", "{seed}", "coef"),
        intervals=PATHS.analysis_job("{scenario}", "{epsilon}", "{fraction}", "{seed}", "intervals"),
        selection=PATHS.analysis_job("{scenario}", "{epsilon}", "{fraction}", "{seed}", "selection"),
    params:
        scenario=lambda w: w.scenario,
        parties=lambda w: parties_of(w.scenario),
        epsilon=lambda w: float(w.epsilon),
        fraction=lambda w: float(w.fraction),
        seed=lambda w: int(w.seed),
        settings=config["analysis"],
    log:
        PATHS.log(PATHS.job_name("{scenario}", "{epsilon}", "{fraction}", "{seed}"), "analyse"),
    benchmark:
        PATHS.benchmark(PATHS.job_name("{scenario}", "{epsilon}", "{fraction}", "{seed}"), "analyse")
    # single-threaded numpy: Snakemake runs one job per core
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        # every party receives the other P - 1 parties' synthetic data
        runtime=lambda w, attempt: analysis_minutes(
            len(parties_of(w.scenario)), len(parties_of(w.scenario)) - 1, ORDERS, SETS, attempt, REAL_SHARING, SELECTION
        ),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/analyse_scenario.py"


rule analyse_skew:
    input:
        local=[PATHS.skew_local(s) for s in config["skew"]["fractions"]],
        synthetic=lambda w: [
            RunPaths(w.run).generator_file("synthetic", "centres", w.epsilon, 1.0, w.seed, p) for p in parties_of("centres")
        ],
        eval=PATHS.skew_eval,
    output:
        ll=PATHS.skew_job("{epsilon}", "{seed}", "ll"),
        coef=PATHS.skew_job("{epsilon}", "{seed}", "coef"),
        intervals=PATHS.skew_job("{epsilon}", "{seed}", "intervals"),
        selection=PATHS.skew_job("{epsilon}", "{seed}", "selection"),
    params:
        epsilon=lambda w: float(w.epsilon),
        seed=lambda w: int(w.seed),
        skews=config["skew"]["fractions"],
        centres=parties_of("centres"),
        settings=config["analysis"],
    log:
        PATHS.log(PATHS.job_name("skew", "{epsilon}", None, "{seed}"), "analyse"),
    benchmark:
        PATHS.benchmark(PATHS.job_name("skew", "{epsilon}", None, "{seed}"), "analyse")
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        # one skewed party per skew fraction, receiving every centre's synthetic data (no real yardstick)
        runtime=lambda w, attempt: analysis_minutes(
            len(config["skew"]["fractions"]), len(parties_of("centres")), ORDERS, SETS, attempt, False, SELECTION
        ),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/analyse_skew.py"


rule fit_reference:
    input:
        train=rules.split.output.train,
        test=rules.split.output.test,
        # the skewed party's evaluation set, when the run has the skew experiment
        skew_eval=[PATHS.skew_eval] if SKEW else [],
    output:
        reference=PATHS.reference,
        coef=PATHS.reference_coef,
    log:
        PATHS.log("fit_reference", "analyse"),
    benchmark:
        PATHS.benchmark("fit_reference", "analyse")
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/fit_reference.py"


rule collect_analysis:
    input:
        ll=lambda w: analysis_job_files("ll", w.run),
        coef=lambda w: analysis_job_files("coef", w.run),
        intervals=lambda w: analysis_job_files("intervals", w.run),
        selection=lambda w: analysis_job_files("selection", w.run),
    output:
        ll=PATHS.ll,
        coef=PATHS.coef,
        intervals=PATHS.intervals,
        selection=PATHS.selection,
    log:
        PATHS.log("collect_analysis", "analyse"),
    benchmark:
        PATHS.benchmark("collect_analysis", "analyse")
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(30),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/collect_analysis.py"


rule analysis:
    """Target: the whole analysis stage (snakemake analysis)."""
    input:
        every_run(lambda run: [getattr(RunPaths(run), name) for name in ("ll", "coef", "intervals", "selection", "reference", "reference_coef")]),
