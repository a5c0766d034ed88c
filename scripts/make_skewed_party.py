"""Rule skewed_party: Fig 5's party from test half A, thinned, and half B's subgroup."""

import numpy as np
import pandas as pd

from synthshare.atomic import write_parquet
from synthshare.parties import make_skewed_party
from synthshare.runlog import logged_run

with logged_run(snakemake.log[0]) as log:
    test = pd.read_parquet(snakemake.input.test)
    fractions = snakemake.params.fractions
    party = make_skewed_party(test, fractions, "ethnicity", snakemake.params.ethnicity, np.random.default_rng(snakemake.params.seed))
    for fraction, path in zip(fractions, snakemake.output.local):
        write_parquet(party.local[fraction], path)
        log.info("skew %g: %d records", fraction, len(party.local[fraction]))
    write_parquet(party.evaluation, snakemake.output.evaluation)
