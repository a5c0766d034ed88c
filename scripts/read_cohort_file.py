"""Rule cohort (source: file): read and check a processed cohort, keep complete cases.

input.cohort (CSV or Parquet); params {parties, settings (the config's ``cohort.file``),
test_fraction (the split's, which sets the smallest centre)}; output {cohort, truth, flow}.
Standalone: ``python scripts/read_cohort_file.py --configfile my.yaml cohort``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import pandas as pd

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.cohort.file import read_cohort_file
from synthshare.runlog import logged_run
from synthshare.parties.split import min_centre_records


def main(snakemake) -> None:
    outputs = snakemake.output
    with logged_run(snakemake.log[0]) as log:
        loaded = read_cohort_file(
            snakemake.input.cohort,
            snakemake.params.parties,
            min_records=min_centre_records(snakemake.params.test_fraction),
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
        write_parquet(loaded.frame, outputs.cohort)
        write_json({"source": "file", "coefficients": None, "note": "real data: no ground truth"}, outputs.truth)
        write_csv(flow, outputs.flow)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
