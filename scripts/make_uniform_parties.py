"""Rule local_uniform<M>: pooled training data subsampled, split uniformly into M parties.

input.train; params {fraction, seed}; output: the M parties' files (M = their number).
Standalone: ``python scripts/make_uniform_parties.py --configfile config/smoke.yaml local_uniform2``.
"""

# First: pins the job's native thread pools (OpenMP, BLAS, XLA) before numpy/jax load.
from _entry import job_from_command_line  # isort: skip

import numpy as np
import pandas as pd

from synthshare.atomic import write_parquet
from synthshare.parties.local import subsample_nested
from synthshare.parties.uniform import split_uniform
from synthshare.runlog import logged_run


def main(snakemake) -> None:
    params = snakemake.params
    with logged_run(snakemake.log[0]) as log:
        train = pd.read_parquet(snakemake.input.train)
        party_count = len(snakemake.output)
        rng = np.random.default_rng([params.seed, party_count])
        pooled = subsample_nested(train, [params.fraction], rng)[params.fraction]
        for frame, path in zip(split_uniform(pooled, party_count, rng), snakemake.output, strict=True):
            write_parquet(frame, path)
        log.info("%d pooled records split into %d parties", len(pooled), party_count)


if __name__ == "__main__":
    main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))  # noqa: F821
