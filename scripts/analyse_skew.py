"""Rule analyse_skew: the skewed party (Fig 5) at every skew fraction, with all centres' f = 1 synthetic data.

input.local (the skewed party's frames in params.skews order), input.synthetic (every
centre's synthetic.parquet at f = 1 and this ε, in params.centres order), input.eval
(South Asian records of test half B); params {epsilon, seed, skews, centres, settings
(the config's ``analysis``)}; output {ll, coef, intervals, selection}. Standalone: ``python
scripts/analyse_skew.py --configfile config/smoke.yaml analyse_skew epsilon=1 seed=123``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.analysis.inputs import read_records, read_set_counts
from synthshare.analysis.job import run_skew
from synthshare.analysis.settings import AnalysisSettings
from synthshare.analysis.tables import COEF_SCHEMA, INTERVALS_SCHEMA, LL_SCHEMA, SELECTION_SCHEMA, write_table
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, params, outputs = snakemake.input, snakemake.params, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        sources = {"eval": str(inputs.eval)}
        local = {}
        for skew, path in zip((float(s) for s in params.skews), inputs.local, strict=True):
            local[skew] = read_records(path)
            sources[f"local:{skew}"] = str(path)
        synthetic = {}
        for centre, path in zip(params.centres, inputs.synthetic, strict=True):
            synthetic[centre] = read_set_counts(path)
            sources[f"synthetic:{centre}"] = str(path)
        job = run_skew(local, synthetic, read_records(inputs.eval), float(params.epsilon), int(params.seed),
                       AnalysisSettings.from_config(params.settings), sources=sources, log=log)
        write_table(job.ll, LL_SCHEMA, outputs.ll)
        write_table(job.coef, COEF_SCHEMA, outputs.coef)
        write_table(job.intervals, INTERVALS_SCHEMA, outputs.intervals)
        write_table(job.selection, SELECTION_SCHEMA, outputs.selection)
        log.info("wrote %d log-likelihood rows to %s", sum(t.num_rows for t in job.ll), outputs.ll)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
