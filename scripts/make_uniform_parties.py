"""Rule local_uniform: pooled training data subsampled, split uniformly into M parties."""

import numpy as np
import pandas as pd

from synthshare.atomic import write_parquet
from synthshare.parties import split_uniform, subsample_nested
from synthshare.runlog import logged_run

with logged_run(snakemake.log[0]) as log:
    train = pd.read_parquet(snakemake.input.train)
    party_count = len(snakemake.output)
    rng = np.random.default_rng([snakemake.params.seed, party_count])
    pooled = subsample_nested(train, [snakemake.params.fraction], rng)[snakemake.params.fraction]
    for frame, path in zip(split_uniform(pooled, party_count, rng), snakemake.output):
        write_parquet(frame, path)
    log.info("%d pooled records split into %d parties", len(pooled), party_count)
