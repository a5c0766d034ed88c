"""Rule fit_reference: the full-population fit (all training data) scored on each evaluation set.

input.train, input.test and input.skew_eval (a list: empty, or the skew evaluation set); output.reference
(``evaluation, ll, records, train_records``) and output.coef (``term, coef, se``).
"""

from synthshare.analysis.cells import read_records
from synthshare.analysis.runs import fit_reference
from synthshare.atomic import write_parquet
from synthshare.runlog import logged_run


def main(inputs, outputs, log_path) -> None:
    with logged_run(log_path) as log:
        evaluations = {"global_test": inputs.test}
        skew_eval = list(inputs.skew_eval) if "skew_eval" in inputs.keys() else []
        if skew_eval:
            evaluations["skew_eval"] = skew_eval[0]
        reference, coef = fit_reference(
            read_records(inputs.train), {name: read_records(path) for name, path in evaluations.items()},
            source=str(inputs.train), sources={name: str(path) for name, path in evaluations.items()},
        )
        write_parquet(reference, outputs.reference)
        write_parquet(coef, outputs.coef)
        for row in reference.itertuples():
            log.info("reference ll on %s (%d records): %.6f", row.evaluation, row.records, row.ll)


if "snakemake" in globals():
    main(snakemake.input, snakemake.output, snakemake.log[0])  # noqa: F821
