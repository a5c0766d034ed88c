"""Rule analyse_skew: the skewed party (Fig 5) at every skew fraction, with all centres' f = 1 synthetic data.

Snakemake passes input.local (the skewed party's frames in params.skews order),
input.synthetic (every centre's synthetic.parquet at f = 1 and this ε, in
params.centres order), input.eval (South Asian records of test half B), params
{epsilon, seed, skews, centres, orders, order_seed, draws, draw_seed} and output {ll, coef}.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only add overhead

from synthshare.analysis.cells import read_records, read_set_counts  # noqa: E402
from synthshare.analysis.runs import run_skew  # noqa: E402
from synthshare.analysis.tables import COEF_SCHEMA, LL_SCHEMA, write_table  # noqa: E402
from synthshare.errors import InputError  # noqa: E402
from synthshare.runlog import logged_run  # noqa: E402


def main(inputs, params, outputs, log_path) -> None:
    with logged_run(log_path) as log:
        skews = [float(s) for s in params.skews]
        centres = list(params.centres)
        if len(inputs.local) != len(skews):
            raise InputError(f"analyse_skew: {len(inputs.local)} local files for {len(skews)} skew fractions; expected one each")
        if len(inputs.synthetic) != len(centres):
            raise InputError(f"analyse_skew: {len(inputs.synthetic)} synthetic files for {len(centres)} centres; expected one each")
        sources = {"eval": str(inputs.eval)}
        local = {}
        for skew, path in zip(skews, inputs.local):
            local[skew] = read_records(path)
            sources[f"local:{skew}"] = str(path)
        synthetic = {}
        for centre, path in zip(centres, inputs.synthetic):
            synthetic[centre] = read_set_counts(path)
            sources[f"synthetic:{centre}"] = str(path)
        job = run_skew(
            local, synthetic, read_records(inputs.eval), centres=centres, epsilon=float(params.epsilon),
            seed=int(params.seed), orders=int(params.orders), order_seed=int(params.order_seed),
            draws=int(params.draws), draw_seed=int(params.draw_seed), sources=sources, log=log,
        )
        write_table(job.ll, LL_SCHEMA, outputs.ll)
        write_table(job.coef, COEF_SCHEMA, outputs.coef)
        log.info("wrote %d log-likelihood rows to %s", sum(t.num_rows for t in job.ll), outputs.ll)


if "snakemake" in globals():
    main(snakemake.input, snakemake.params, snakemake.output, snakemake.log[0])  # noqa: F821
