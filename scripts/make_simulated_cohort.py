"""Rule cohort (source: simulated): draw the UK-Biobank-like cohort and its ground truth."""

import pandas as pd

from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.runlog import logged_run
from synthshare.simulate_cohort import load_parameters, simulate_cohort

with logged_run(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    cohort = simulate_cohort(load_parameters(snakemake.input.parameters), scale=settings["scale"], seed=settings["seed"])
    log.info("simulated %d records over %d centres", len(cohort.frame), cohort.frame["assessment_center"].nunique())
    flow = pd.DataFrame({"step": ["simulated records", "records out"], "removed": [0, 0], "remaining": [len(cohort.frame)] * 2})
    truth = {"source": "simulated", **cohort.truth}
    write_parquet(cohort.frame, snakemake.output.cohort)
    write_json(truth, snakemake.output.truth)
    write_csv(flow, snakemake.output.flow)
