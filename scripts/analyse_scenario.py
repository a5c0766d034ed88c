"""Rule analyse_scenario: every party of one (scenario, ε, f, seed): local only, then R orders.

Snakemake passes input.local / input.synthetic (lists in params.parties order),
input.test, params {scenario, parties, epsilon, fraction, seed, orders, order_seed,
draws, draw_seed} and output {ll, coef}. Standalone::

    python scripts/analyse_scenario.py --parties A B --local a.parquet b.parquet \\
        --synthetic sa.parquet sb.parquet --test test.parquet --scenario centres \\
        --epsilon 1 --fraction 0.1 --seed 123 --orders 5 --draws 100 --out-ll ll.parquet --out-coef coef.parquet
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only add overhead

import argparse  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from synthshare.analysis.cells import read_records, read_set_counts  # noqa: E402
from synthshare.analysis.runs import run_scenario  # noqa: E402
from synthshare.analysis.tables import COEF_SCHEMA, LL_SCHEMA, write_table  # noqa: E402
from synthshare.errors import InputError  # noqa: E402
from synthshare.runlog import logged_run  # noqa: E402


def main(inputs, params, outputs, log_path) -> None:
    with logged_run(log_path) as log:
        parties = list(params.parties)
        if len(inputs.local) != len(parties) or len(inputs.synthetic) != len(parties):
            raise InputError(f"analyse_scenario: {len(inputs.local)} local and {len(inputs.synthetic)} synthetic files "
                             f"for {len(parties)} parties; expected one of each per party")
        sources = {"test": str(inputs.test)}
        local, synthetic = {}, {}
        for party, local_path, synthetic_path in zip(parties, inputs.local, inputs.synthetic):
            local[party] = read_records(local_path)
            synthetic[party] = read_set_counts(synthetic_path)
            sources[f"local:{party}"] = str(local_path)
            sources[f"synthetic:{party}"] = str(synthetic_path)
        job = run_scenario(
            local, synthetic, read_records(inputs.test),
            scenario=params.scenario, parties=parties, epsilon=float(params.epsilon), fraction=float(params.fraction),
            seed=int(params.seed), orders=int(params.orders), order_seed=int(params.order_seed),
            draws=int(params.draws), draw_seed=int(params.draw_seed), sources=sources, log=log,
        )
        write_table(job.ll, LL_SCHEMA, outputs.ll)
        write_table(job.coef, COEF_SCHEMA, outputs.coef)
        log.info("wrote %d log-likelihood rows to %s", sum(t.num_rows for t in job.ll), outputs.ll)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", nargs="+", required=True)
    parser.add_argument("--local", nargs="+", required=True)
    parser.add_argument("--synthetic", nargs="+", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--scenario", default="centres")
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--order-seed", type=int, default=15)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--draw-seed", type=int, default=16)
    parser.add_argument("--out-ll", required=True)
    parser.add_argument("--out-coef", required=True)
    parser.add_argument("--log")
    a = parser.parse_args()
    main(SimpleNamespace(local=a.local, synthetic=a.synthetic, test=a.test),
         SimpleNamespace(scenario=a.scenario, parties=a.parties, epsilon=a.epsilon, fraction=a.fraction, seed=a.seed,
                         orders=a.orders, order_seed=a.order_seed, draws=a.draws, draw_seed=a.draw_seed),
         SimpleNamespace(ll=a.out_ll, coef=a.out_coef), a.log)


if "snakemake" in globals():
    main(snakemake.input, snakemake.params, snakemake.output, snakemake.log[0])  # noqa: F821
elif __name__ == "__main__":
    cli()
