# Generator stage: DP generative models (DPVI on d3p), K synthetic sets per party, the
# privacy ledger (synthshare.generator). One job per (scenario, ε, f, seed) fits every
# party of the scenario in one vectorised program. Outputs list every party, so each
# scenario (a fixed party list) gets its own rule: fit_generators_centres,
# fit_generators_uniform4, ... (wildcards epsilon, fraction, seed).

from synthshare.generator.resources import memory_mb, runtime_minutes
from synthshare.generator.settings import GeneratorSettings

GENERATOR_SETTINGS = GeneratorSettings.from_config(config["generator"])
GENERATOR_FILES = {
    "synthetic": "synthetic.parquet",
    "params": "params.npz",
    "elbo": "elbo.csv",
    "privacy": "privacy.json",
}

for _scenario in sorted({s.scenario for s in MODEL_SETTINGS}):

    rule:
        name:
            f"fit_generators_{_scenario}"
        input:
            local=lambda w, scenario=_scenario: [local_path(scenario, w.fraction, p) for p in parties_of(scenario)],
        output:
            **{
                kind: [
                    f"{RESULTS}/generator/{_scenario}/eps{{epsilon}}/f{{fraction}}/seed{{seed}}/{party}/{name}"
                    for party in parties_of(_scenario)
                ]
                for kind, name in GENERATOR_FILES.items()
            },
        params:
            parties=parties_of(_scenario),
            scenario=_scenario,
            epsilon=lambda w: float(w.epsilon),
            fraction=lambda w: float(w.fraction),
            seed=lambda w: int(w.seed),
            settings=config["generator"],
        log:
            f"{RESULTS}/logs/generate/{_scenario}_eps{{epsilon}}_f{{fraction}}_seed{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/generate/{_scenario}_eps{{epsilon}}_f{{fraction}}_seed{{seed}}.tsv"
        # One thread: the training loop is compiled sequential (synthshare.generator.compilation).
        threads: 1
        resources:
            mem_mb=lambda w, input, attempt: memory_mb(input.local, GENERATOR_SETTINGS, attempt),
            runtime=lambda w, input, attempt: runtime_minutes(input.local, GENERATOR_SETTINGS, attempt),
        script:
            "../../scripts/fit_generators.py"


rule collect_ledger:
    input:
        all_privacy_records(),
    output:
        ledger=report(
            f"{RESULTS}/privacy/ledger.csv",
            caption="../report/ledger.rst",
            category="2. Privacy",
        ),
    log:
        f"{RESULTS}/logs/generate/collect_ledger.log",
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=attempt_scaled(10),
    script:
        "../../scripts/collect_ledger.py"


rule generate:
    """Target: the whole generator stage (snakemake generate)."""
    input:
        rules.collect_ledger.output,
        [p.removesuffix("privacy.json") + "synthetic.parquet" for p in all_privacy_records()],
