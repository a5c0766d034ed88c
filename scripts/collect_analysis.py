"""Rule collect_analysis: stack every job's ll.parquet and coef.parquet (streaming, bounded memory).

input.ll and input.coef (lists, same job order); output.ll and output.coef.
"""

from synthshare.analysis.tables import COEF_SCHEMA, LL_SCHEMA, stack_files
from synthshare.runlog import logged_run


def main(inputs, outputs, log_path) -> None:
    with logged_run(log_path) as log:
        rows = stack_files(inputs.ll, LL_SCHEMA, outputs.ll)
        log.info("stacked %d files, %d log-likelihood rows into %s", len(inputs.ll), rows, outputs.ll)
        rows = stack_files(inputs.coef, COEF_SCHEMA, outputs.coef)
        log.info("stacked %d coefficient rows into %s", rows, outputs.coef)


if "snakemake" in globals():
    main(snakemake.input, snakemake.output, snakemake.log[0])  # noqa: F821
