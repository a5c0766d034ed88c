"""Rule local_centres: each centre's training split subsampled (nested) to every fraction.

input.train; params {parties, fractions, seed}; output: one file per (party, fraction),
party-major, fraction-minor (the order of the rule's output list). Standalone:
``python scripts/make_local_centres.py --configfile config/smoke.yaml local_centres``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import numpy as np
import pandas as pd

from synthshare.atomic import write_parquet
from synthshare.parties.local import subsample_nested
from synthshare.runlog import logged_run
from synthshare.variables import ALL_CENTRES, CENTRE_COLUMN


def main(snakemake) -> None:
    params = snakemake.params
    with logged_run(snakemake.log[0]) as log:
        train = pd.read_parquet(snakemake.input.train)
        outputs = iter(snakemake.output)
        for party in params.parties:
            rng = np.random.default_rng([params.seed, ALL_CENTRES.index(party)])
            samples = subsample_nested(train[train[CENTRE_COLUMN] == party].reset_index(drop=True), params.fractions, rng)
            for fraction in params.fractions:
                write_parquet(samples[fraction], next(outputs))
                log.info("%s f=%g: %d records", party, fraction, len(samples[fraction]))


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
