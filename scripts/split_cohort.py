"""Rule split: per-centre 80/20 train/test split (stratified by ethnicity) and centres.csv."""

import pandas as pd

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.cohort_summary import centre_summary
from synthshare.runlog import logged_run
from synthshare.split import split_train_test
from synthshare.variables import CENTRE_COLUMN

with logged_run(snakemake.log[0]) as log:
    cohort = pd.read_parquet(snakemake.input.cohort)
    cohort = cohort[cohort[CENTRE_COLUMN].isin(snakemake.params.parties)].reset_index(drop=True)
    settings = snakemake.params.settings
    split = split_train_test(cohort, settings["test_fraction"], settings["min_class_size"], settings["seed"], source=snakemake.input.cohort)
    for centre, entry in split.report.items():
        if not entry["stratified"]:
            log.warning("%s: split unstratified: %s", centre, entry["reason"])
    write_parquet(split.train, snakemake.output.train)
    write_parquet(split.test, snakemake.output.test)
    write_json(split.report, snakemake.output.report)
    write_csv(centre_summary(cohort, split.report, snakemake.params.parties), snakemake.output.centres)
