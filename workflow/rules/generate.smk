# Generator stage: DP generative models (DPVI on d3p), K synthetic sets per party, the
# privacy ledger (synthshare.generator). One job per (scenario, ε, f, seed) fits every
# party of the scenario in one vectorised program. Outputs list every party, so each
# scenario (a fixed party list) gets its own rule: fit_generators_centres,
# fit_generators_uniform4, ... (wildcards epsilon, fraction, seed).

from synthshare.generator.resources import memory_mb, runtime_minutes
from synthshare.generator.settings import GeneratorSettings
from synthshare.paths import GENERATOR_FILES

GENERATOR_SETTINGS = GeneratorSettings.from_config(config["generator"])


rule calibrate_noise:
    """σ of one ε for every generator job of that ε (synthshare.generator.noise)."""
    output:
        PATHS.noise("{epsilon}"),
    params:
        # Only what σ depends on, so that other generator settings do not rerun it.
        epsilon=lambda w: float(w.epsilon),
        delta=GENERATOR_SETTINGS.delta,
        sampling_rate=GENERATOR_SETTINGS.sampling_rate,
        steps=GENERATOR_SETTINGS.steps,
    log:
        PATHS.log("calibrate_noise_eps{epsilon}", "generate"),
    benchmark:
        PATHS.benchmark("calibrate_noise_eps{epsilon}", "generate")
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=attempt_scaled(30),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/calibrate_noise.py"

for _scenario in sorted({s.scenario for s in MODEL_SETTINGS}):

    rule:
        name:
            f"fit_generators_{_scenario}"
        input:
            local=lambda w, scenario=_scenario: [RunPaths(w.run).local(scenario, w.fraction, p) for p in parties_of(scenario)],
            noise=PATHS.noise("{epsilon}"),
        output:
            **{
                kind: [
                    PATHS.generator_file(kind, _scenario, "{epsilon}", "{fraction}", "{seed}", party)
                    for party in parties_of(_scenario)
                ]
                for kind in GENERATOR_FILES
            },
        params:
            parties=parties_of(_scenario),
            scenario=_scenario,
            epsilon=lambda w: float(w.epsilon),
            fraction=lambda w: float(w.fraction),
            seed=lambda w: int(w.seed),
            settings=config["generator"],
        log:
            PATHS.log(PATHS.job_name(_scenario, "{epsilon}", "{fraction}", "{seed}"), "generate"),
        benchmark:
            PATHS.benchmark(PATHS.job_name(_scenario, "{epsilon}", "{fraction}", "{seed}"), "generate")
        # One thread: the training loop is compiled sequential (synthshare.generator.compilation).
        threads: 1
        resources:
            mem_mb=lambda w, input, attempt: memory_mb(input.local, GENERATOR_SETTINGS, attempt),
            runtime=lambda w, input, attempt: runtime_minutes(input.local, GENERATOR_SETTINGS, attempt),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/fit_generators.py"


rule collect_ledger:
    input:
        lambda w: generator_files("privacy", w.run),
    output:
        ledger=report(
            PATHS.ledger,
            caption="../report/ledger.rst",
            category=report_category("2. Privacy"),
        ),
    log:
        PATHS.log("collect_ledger", "generate"),
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=attempt_scaled(10),
    conda:
        "../envs/synthshare.yaml"
    script:
        "../../scripts/collect_ledger.py"


rule generate:
    """Target: the whole generator stage (snakemake generate)."""
    input:
        every_run(lambda run: [RunPaths(run).ledger, *generator_files("synthetic", run)]),
