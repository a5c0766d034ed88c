"""Rule fit_reference: the full-population fit (all training data) scored on each evaluation set.

input.train, input.test and input.skew_eval (a list: empty, or the skew evaluation set);
output.reference (``evaluation, ll, records, train_records``) and output.coef (``term,
coef, se``). Standalone: ``python scripts/fit_reference.py --configfile config/smoke.yaml fit_reference``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.analysis.inputs import read_records
from synthshare.analysis.job import fit_reference
from synthshare.atomic import write_parquet
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, outputs = snakemake.input, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        evaluations = {"global_test": inputs.test}
        if inputs.skew_eval:
            evaluations["skew_eval"] = inputs.skew_eval[0]
        reference, coef = fit_reference(
            read_records(inputs.train), {name: read_records(path) for name, path in evaluations.items()},
            source=str(inputs.train), sources={name: str(path) for name, path in evaluations.items()},
        )
        write_parquet(reference, outputs.reference)
        write_parquet(coef, outputs.coef)
        for row in reference.itertuples():
            log.info("reference ll on %s (%d records): %.6f", row.evaluation, row.records, row.ll)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
