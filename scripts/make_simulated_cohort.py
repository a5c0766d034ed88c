"""Rule cohort (source: simulated): draw the UK-Biobank-like cohort and its ground truth.

input.parameters (the cohort-parameter YAML); params.settings (the config's
``cohort.simulated``: scale, seed), params.overrides (what a heterogeneity sweep's
sub-run replaces in the parameters, ``synthshare.sweep``; recorded in truth.json); output {cohort, truth, flow}; with heterogeneity, truth.json also holds the
pooled-population estimand (``synthshare.analysis.estimand``). Standalone:
``python scripts/make_simulated_cohort.py --configfile config/smoke.yaml cohort``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import pandas as pd

from synthshare.analysis.estimand import estimand_record
from synthshare.atomic import write_csv, write_json, write_parquet
from synthshare.cohort.simulated import load_parameters, simulate_cohort
from synthshare.runlog import logged_run
from synthshare.sweep import apply_overrides


def main(snakemake) -> None:
    settings, outputs = snakemake.params.settings, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        overrides = dict(snakemake.params.overrides)
        parameters = apply_overrides(load_parameters(snakemake.input.parameters), overrides)
        if overrides:
            log.info("sweep sub-run: cohort parameters with %s", overrides)
        cohort = simulate_cohort(parameters, scale=settings["scale"], seed=settings["seed"])
        log.info("simulated %d records over %d centres", len(cohort.frame), cohort.frame["assessment_center"].nunique())
        flow = pd.DataFrame({"step": ["simulated records", "records out"], "removed": [0, 0], "remaining": [len(cohort.frame)] * 2})
        write_parquet(cohort.frame, outputs.cohort)
        truth = {"source": "simulated", **cohort.truth}
        if overrides:
            truth["parameter_overrides"] = overrides
        if "heterogeneity" in truth:
            # centre-specific relative risks: the coverage target is the pooled population's
            # estimand (issue 16). Homogeneous cohorts keep their truth.json bytes; their
            # estimand is synthshare.analysis.estimand.population_estimand(parameters, truth).
            truth["estimand"] = estimand_record(parameters, cohort.truth)
        write_json(truth, outputs.truth)
        write_csv(flow, outputs.flow)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
