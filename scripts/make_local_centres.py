"""Rule local_centres: each centre's training split subsampled (nested) to every fraction."""

import numpy as np
import pandas as pd

from synthshare.atomic import write_parquet
from synthshare.parties import subsample_nested
from synthshare.runlog import logged_run
from synthshare.variables import ALL_CENTRES, CENTRE_COLUMN

with logged_run(snakemake.log[0]) as log:
    train = pd.read_parquet(snakemake.input.train)
    fractions = snakemake.params.fractions
    outputs = iter(snakemake.output)  # ordered party-major, fraction-minor (see data.smk)
    for party in snakemake.params.parties:
        rng = np.random.default_rng([snakemake.params.seed, ALL_CENTRES.index(party)])
        samples = subsample_nested(train[train[CENTRE_COLUMN] == party].reset_index(drop=True), fractions, rng)
        for fraction in fractions:
            write_parquet(samples[fraction], next(outputs))
            log.info("%s f=%g: %d records", party, fraction, len(samples[fraction]))
