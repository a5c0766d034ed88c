# Analysis stage: the study's Poisson regression on local (+ synthetic) data, Rubin's
# rules over the K synthetic sets, Monte Carlo test log-likelihoods (synthshare.analysis).
# One job per (scenario, ε, f, seed) for every party of the scenario, one per seed for
# the skewed party, one full-population reference, and a collector for the figures.

from synthshare.analysis.resources import runtime_minutes as analysis_minutes

ORDERS = config["analysis"]["orders"]
SETS = config["generator"]["synthetic_sets"]

ANALYSIS_JOB = f"{RESULTS}/analysis/{{scenario}}/eps{{epsilon}}/f{{fraction}}/seed{{seed}}"


rule analyse_scenario:
    input:
        local=lambda w: [local_path(w.scenario, w.fraction, p) for p in parties_of(w.scenario)],
        synthetic=lambda w: [synthetic_path(w.scenario, w.epsilon, w.fraction, w.seed, p) for p in parties_of(w.scenario)],
        test=rules.split.output.test,
    output:
        ll=f"{ANALYSIS_JOB}/ll.parquet",
        coef=f"{ANALYSIS_JOB}/coef.parquet",
    params:
        scenario=lambda w: w.scenario,
        parties=lambda w: parties_of(w.scenario),
        epsilon=lambda w: float(w.epsilon),
        fraction=lambda w: float(w.fraction),
        seed=lambda w: int(w.seed),
        orders=config["analysis"]["orders"],
        order_seed=config["analysis"]["order_seed"],
        draws=config["analysis"]["draws"],
        draw_seed=config["analysis"]["draw_seed"],
    log:
        f"{RESULTS}/logs/analyse/{{scenario}}_eps{{epsilon}}_f{{fraction}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyse/{{scenario}}_eps{{epsilon}}_f{{fraction}}_seed{{seed}}.tsv"
    # single-threaded numpy: Snakemake runs one job per core
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        # every party receives the other P - 1 parties' synthetic data
        runtime=lambda w, attempt: analysis_minutes(
            len(parties_of(w.scenario)), len(parties_of(w.scenario)) - 1, ORDERS, SETS, attempt
        ),
    script:
        "../../scripts/analyse_scenario.py"


rule analyse_skew:
    input:
        local=[skew_local_path(s) for s in config["skew"]["fractions"]],
        synthetic=lambda w: [synthetic_path("centres", w.epsilon, 1.0, w.seed, p) for p in parties_of("centres")],
        eval=f"{RESULTS}/data/skew/eval.parquet",
    output:
        ll=f"{RESULTS}/analysis/skew/eps{{epsilon}}/seed{{seed}}/ll.parquet",
        coef=f"{RESULTS}/analysis/skew/eps{{epsilon}}/seed{{seed}}/coef.parquet",
    params:
        epsilon=lambda w: float(w.epsilon),
        seed=lambda w: int(w.seed),
        skews=config["skew"]["fractions"],
        centres=parties_of("centres"),
        orders=config["analysis"]["orders"],
        order_seed=config["analysis"]["order_seed"],
        draws=config["analysis"]["draws"],
        draw_seed=config["analysis"]["draw_seed"],
    log:
        f"{RESULTS}/logs/analyse/skew_eps{{epsilon}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyse/skew_eps{{epsilon}}_seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        # one skewed party per skew fraction, receiving every centre's synthetic data
        runtime=lambda w, attempt: analysis_minutes(
            len(config["skew"]["fractions"]), len(parties_of("centres")), ORDERS, SETS, attempt
        ),
    script:
        "../../scripts/analyse_skew.py"


rule fit_reference:
    input:
        train=rules.split.output.train,
        test=rules.split.output.test,
        # the skewed party's evaluation set, when the run has the skew experiment
        skew_eval=[f"{RESULTS}/data/skew/eval.parquet"] if SKEW else [],
    output:
        reference=f"{RESULTS}/analysis/reference.parquet",
        coef=f"{RESULTS}/analysis/reference_coef.parquet",
    log:
        f"{RESULTS}/logs/analyse/fit_reference.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyse/fit_reference.tsv"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(10),
    script:
        "../../scripts/fit_reference.py"


rule collect_analysis:
    input:
        ll=analysis_jobs(),
        coef=[path.removesuffix("ll.parquet") + "coef.parquet" for path in analysis_jobs()],
    output:
        ll=f"{RESULTS}/analysis/ll.parquet",
        coef=f"{RESULTS}/analysis/coef.parquet",
    log:
        f"{RESULTS}/logs/analyse/collect_analysis.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyse/collect_analysis.tsv"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(30),
    script:
        "../../scripts/collect_analysis.py"


rule analysis:
    """Target: the whole analysis stage (snakemake analysis)."""
    input:
        rules.collect_analysis.output,
        rules.fit_reference.output,
