"""Rule analyse_scenario: every party of one (scenario, ε, f, seed): local only, then R orders.

input.local / input.synthetic (lists in params.parties order), input.test;
params {scenario, parties, epsilon, fraction, seed, settings (the config's ``analysis``)};
output {ll, coef, intervals, selection}. Standalone: ``python scripts/analyse_scenario.py --configfile
config/smoke.yaml analyse_scenario scenario=centres epsilon=1 fraction=0.5 seed=123``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.analysis.inputs import read_records, read_set_counts
from synthshare.analysis.job import JobKey, run_scenario
from synthshare.analysis.settings import AnalysisSettings
from synthshare.analysis.tables import COEF_SCHEMA, INTERVALS_SCHEMA, LL_SCHEMA, SELECTION_SCHEMA, write_table
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, params, outputs = snakemake.input, snakemake.params, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        sources = {"test": str(inputs.test)}
        local, synthetic = {}, {}
        for party, local_path, synthetic_path in zip(params.parties, inputs.local, inputs.synthetic, strict=True):
            local[party] = read_records(local_path)
            synthetic[party] = read_set_counts(synthetic_path)
            sources[f"local:{party}"] = str(local_path)
            sources[f"synthetic:{party}"] = str(synthetic_path)
        key = JobKey(params.scenario, float(params.epsilon), float(params.fraction), int(params.seed))
        job = run_scenario(local, synthetic, read_records(inputs.test), key, AnalysisSettings.from_config(params.settings),
                           sources=sources, log=log)
        write_table(job.ll, LL_SCHEMA, outputs.ll)
        write_table(job.coef, COEF_SCHEMA, outputs.coef)
        write_table(job.intervals, INTERVALS_SCHEMA, outputs.intervals)
        write_table(job.selection, SELECTION_SCHEMA, outputs.selection)
        log.info("wrote %d log-likelihood rows to %s", sum(t.num_rows for t in job.ll), outputs.ll)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
