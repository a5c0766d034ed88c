"""Rule cohort (source: file): read and check a processed cohort, keep complete cases."""

import pandas as pd

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.cohort_file import read_cohort_file
from synthshare.runlog import logged_run
from synthshare.split import min_centre_records

with logged_run(snakemake.log[0]) as log:
    loaded = read_cohort_file(
        snakemake.input.cohort,
        snakemake.params.parties,
        min_records=min_centre_records(snakemake.config["split"]["test_fraction"]),
        max_incomplete_share=snakemake.params.settings["max_incomplete_share"],
    )
    log.info("read %d rows, dropped %d incomplete", loaded.rows_read, loaded.rows_incomplete)
    flow = pd.DataFrame(
        {
            "step": ["records in", "incomplete (a study column missing)", "records out"],
            "removed": [0, loaded.rows_incomplete, 0],
            "remaining": [loaded.rows_read, len(loaded.frame), len(loaded.frame)],
        }
    )
    write_parquet(loaded.frame, snakemake.output.cohort)
    write_json({"source": "file", "coefficients": None, "note": "real data: no ground truth"}, snakemake.output.truth)
    write_csv(flow, snakemake.output.flow)
