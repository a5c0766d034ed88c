"""Rule split: per-centre 80/20 train/test split (stratified by ethnicity) and centres.csv.

input.cohort; params {settings (the config's ``split``), parties}; output {train, test,
report, centres}. Standalone: ``python scripts/split_cohort.py --configfile config/smoke.yaml split``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import pandas as pd

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.parties.split import split_train_test
from synthshare.parties.summary import centre_summary
from synthshare.runlog import logged_run
from synthshare.variables import CENTRE_COLUMN


def main(snakemake) -> None:
    params, outputs = snakemake.params, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        cohort = pd.read_parquet(snakemake.input.cohort)
        cohort = cohort[cohort[CENTRE_COLUMN].isin(params.parties)].reset_index(drop=True)
        settings = params.settings
        split = split_train_test(cohort, settings["test_fraction"], settings["min_class_size"], settings["seed"],
                                 source=snakemake.input.cohort)
        for centre, entry in split.report.items():
            if not entry["stratified"]:
                log.warning("%s: split unstratified: %s", centre, entry["reason"])
        write_parquet(split.train, outputs.train)
        write_parquet(split.test, outputs.test)
        write_json(split.report, outputs.report)
        write_csv(centre_summary(cohort, split.report, params.parties), outputs.centres)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
