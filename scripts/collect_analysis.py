"""Rule collect_analysis: stack every job's ll.parquet and coef.parquet (streaming, bounded memory).

input.ll and input.coef (lists, same job order); output.ll and output.coef.
Standalone: ``python scripts/collect_analysis.py --configfile config/smoke.yaml collect_analysis``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.analysis.tables import COEF_SCHEMA, LL_SCHEMA, stack_files
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, outputs = snakemake.input, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        rows = stack_files(inputs.ll, LL_SCHEMA, outputs.ll)
        log.info("stacked %d files, %d log-likelihood rows into %s", len(inputs.ll), rows, outputs.ll)
        rows = stack_files(inputs.coef, COEF_SCHEMA, outputs.coef)
        log.info("stacked %d coefficient rows into %s", rows, outputs.coef)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
