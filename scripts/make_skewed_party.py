"""Rule skewed_party: Fig 5's party from test half A, thinned, and half B's subgroup.

input.test; params {fractions, ethnicity, seed}; output {local (one per skew fraction,
in params.fractions order), evaluation}. Standalone:
``python scripts/make_skewed_party.py --configfile config/smoke.yaml skewed_party``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import numpy as np
import pandas as pd

from synthshare.atomic import write_parquet
from synthshare.parties.skew import make_skewed_party
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    params, outputs = snakemake.params, snakemake.output
    with logged_run(snakemake.log[0]) as log:
        test = pd.read_parquet(snakemake.input.test)
        party = make_skewed_party(test, params.fractions, "ethnicity", params.ethnicity, np.random.default_rng(params.seed))
        for fraction, path in zip(params.fractions, outputs.local, strict=True):
            write_parquet(party.local[fraction], path)
            log.info("skew %g: %d records", fraction, len(party.local[fraction]))
        write_parquet(party.evaluation, outputs.evaluation)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
