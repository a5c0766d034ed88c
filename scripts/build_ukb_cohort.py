"""Rule script: UK Biobank's raw files -> data/cohort.parquet and data/cohort_flow.csv.

Under Snakemake (rule in workflow/rules/data.smk) it reads ``snakemake.input.main``,
``snakemake.input.covid_tests`` (list), ``snakemake.input.withdrawals`` (absent when
none is configured; then ``snakemake.params.withdrawals`` is None),
``snakemake.params.test_cutoff`` and ``snakemake.params.extra_centres``, and writes
``snakemake.output.cohort``, ``snakemake.output.flow`` and, where the rule names it,
``snakemake.output.truth`` (real data: no ground-truth coefficients).

Standalone, for debugging or to look at the flow table before a run::

    python scripts/build_ukb_cohort.py --main ukb12345.csv \\
        --covid-tests covid19_result_england.txt covid19_result_scotland.txt \\
        --withdrawals w12345_20240101.csv --cohort cohort.parquet --flow cohort_flow.csv
"""


import argparse
from pathlib import Path

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.runlog import logged_run
from synthshare.ukb_raw import build_cohort


def run(main: str, covid_tests: list[str], withdrawals: str | None, test_cutoff: str,
        extra_centres: list[str], cohort_path: str, flow_path: str, log_path: str | None = None,
        truth_path: str | None = None) -> None:
    """Build the cohort and write the outputs atomically; log the flow table."""
    with logged_run(log_path, "build_ukb_cohort") as log:
        log.info("main extract %s; %d COVID-19 test file(s); withdrawals %s; tests before %s; extra centres %s",
                 main, len(covid_tests), withdrawals or "none", test_cutoff, list(extra_centres) or "none")
        cohort, flow = build_cohort(main, list(covid_tests), withdrawals or None, test_cutoff, list(extra_centres))
        write_parquet(cohort, cohort_path)
        write_csv(flow, flow_path)
        if truth_path:
            write_json({"source": "ukb_raw", "coefficients": None, "note": "real data: no ground truth"}, truth_path)
        log.info("cohort: %d records over %d centres -> %s", len(cohort), cohort["assessment_center"].nunique(), cohort_path)
        log.info("flow table -> %s\n%s", flow_path, flow.astype(object).where(flow.notna(), "").to_string(index=False))


def _from_snakemake(snakemake) -> None:  # noqa: ANN001 (Snakemake's injected object)
    withdrawals = snakemake.input.withdrawals if hasattr(snakemake.input, "withdrawals") else getattr(snakemake.params, "withdrawals", None)
    covid_tests = snakemake.input.covid_tests
    run(
        main=snakemake.input.main,
        covid_tests=[covid_tests] if isinstance(covid_tests, str) else list(covid_tests),
        withdrawals=withdrawals,
        test_cutoff=snakemake.params.test_cutoff,
        extra_centres=list(snakemake.params.extra_centres or []),
        cohort_path=snakemake.output.cohort,
        flow_path=snakemake.output.flow,
        log_path=snakemake.log[0] if snakemake.log else None,
        truth_path=getattr(snakemake.output, "truth", None),
    )


def _from_command_line() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--main", required=True, help="main data set written by `ukbconv <file> csv`")
    parser.add_argument("--covid-tests", nargs="+", required=True, help="COVID-19 test result files (tab-separated)")
    parser.add_argument("--withdrawals", default=None, help="withdrawals file, one eid per line")
    parser.add_argument("--test-cutoff", default="2021-03-15", help="count tests dated before this day (YYYY-MM-DD)")
    parser.add_argument("--extra-centre", action="append", default=[], dest="extra_centres",
                        help="Scottish/Welsh centre to keep (repeatable), e.g. Cardiff")
    parser.add_argument("--cohort", required=True, type=Path, help="output Parquet file")
    parser.add_argument("--flow", required=True, type=Path, help="output flow table (CSV)")
    parser.add_argument("--log", default=None, help="log file")
    args = parser.parse_args()
    run(args.main, args.covid_tests, args.withdrawals, args.test_cutoff, args.extra_centres,
        str(args.cohort), str(args.flow), args.log)


if __name__ == "__main__":
    if "snakemake" in globals():
        _from_snakemake(globals()["snakemake"])
    else:
        _from_command_line()
