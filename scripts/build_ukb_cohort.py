"""Rule cohort (source: ukb_raw): UK Biobank's raw files -> the study's cohort and its flow table.

input {main, covid_tests (list), withdrawals (absent when none is configured)}; params
{test_cutoff, extra_centres}; output {cohort, truth, flow}. Standalone, for instance to
look at the flow table before a long run (it is printed to the log and the terminal)::

    python scripts/build_ukb_cohort.py --configfile config/ukb.yaml cohort
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.cohort.ukb import build_cohort
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    inputs, params, outputs = snakemake.input, snakemake.params, snakemake.output
    withdrawals = inputs.get("withdrawals")
    with logged_run(snakemake.log[0], "build_ukb_cohort") as log:
        log.info("main extract %s; %d COVID-19 test file(s); withdrawals %s; tests before %s; extra centres %s",
                 inputs.main, len(inputs.covid_tests), withdrawals or "none", params.test_cutoff,
                 list(params.extra_centres) or "none")
        cohort, flow = build_cohort(inputs.main, list(inputs.covid_tests), withdrawals, params.test_cutoff,
                                    list(params.extra_centres))
        write_parquet(cohort, outputs.cohort)
        write_csv(flow, outputs.flow)
        write_json({"source": "ukb_raw", "coefficients": None, "note": "real data: no ground truth"}, outputs.truth)
        log.info("cohort: %d records over %d centres -> %s", len(cohort), cohort["assessment_center"].nunique(), outputs.cohort)
        log.info("flow table -> %s\n%s", outputs.flow, flow.astype(object).where(flow.notna(), "").to_string(index=False))


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
