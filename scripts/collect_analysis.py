"""Rule collect_analysis: stack every job's ll, coef, intervals and selection files (streaming, bounded memory).

input.ll, input.coef, input.intervals, input.selection (lists, same job order); output
likewise.
Standalone: ``python scripts/collect_analysis.py --configfile config/smoke.yaml collect_analysis``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.analysis.tables import COEF_SCHEMA, INTERVALS_SCHEMA, LL_SCHEMA, SELECTION_SCHEMA, stack_files
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, outputs = snakemake.input, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        rows = stack_files(inputs.ll, LL_SCHEMA, outputs.ll)
        log.info("stacked %d files, %d log-likelihood rows into %s", len(inputs.ll), rows, outputs.ll)
        rows = stack_files(inputs.coef, COEF_SCHEMA, outputs.coef)
        log.info("stacked %d coefficient rows into %s", rows, outputs.coef)
        for name, schema in (("intervals", INTERVALS_SCHEMA), ("selection", SELECTION_SCHEMA)):
            rows = stack_files(getattr(inputs, name), schema, getattr(outputs, name))
            log.info("stacked %d %s rows into %s", rows, name, getattr(outputs, name))


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
