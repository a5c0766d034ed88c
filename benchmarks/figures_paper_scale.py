"""Figures stage at paper scale: time and peak memory of Figs 1/S3 and 2/S4 and the claims
that read every step, on a fabricated ll.parquet of the paper's reference setting.

The file holds what the analysis stage writes for one (centres, ε = 1, f = 0.1) setting:
16 parties × 10 seeds × (S = 100 local draws + R = 100 orders × 15 steps × S = 100) =
24.0 M rows, one row group per (seed, party) as the collector stacks them. The paper's
whole ll.parquet (~170 M rows) holds seven such settings plus the skew and uniform
experiments; every figure reads one setting through pyarrow filters, so one setting is
what a job touches. Numbers are made up (benchmark input, not results).

    .venv/bin/python benchmarks/figures_paper_scale.py [--workdir /tmp/figbench]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthshare.analysis.tables import LL_SCHEMA  # noqa: E402
from synthshare.figures.claims import gain_saturates_after_five, most_parties_benefit  # noqa: E402
from synthshare.figures.output import save_figure  # noqa: E402
from synthshare.figures.paper import party_comparison, steps_figure  # noqa: E402
from synthshare.variables import CENTRES  # noqa: E402

SEEDS, ORDERS, DRAWS = 10, 100, 100


def fabricate(path: Path) -> int:
    rng = np.random.default_rng(0)
    steps = len(CENTRES) - 1
    rows = 0
    with pq.ParquetWriter(path, LL_SCHEMA, compression="zstd") as writer:
        for seed in range(123, 123 + SEEDS):
            for index, party in enumerate(CENTRES):
                local = -0.55 - 0.01 * index - (3.0 if index == 0 else 0.0)
                step = np.concatenate([np.zeros(DRAWS, np.int32), np.repeat(np.arange(1, steps + 1, dtype=np.int32), ORDERS * DRAWS)])
                order = np.concatenate([np.full(DRAWS, -1, np.int32),
                                        np.tile(np.repeat(np.arange(ORDERS, dtype=np.int32), DRAWS), steps)])
                draw = np.concatenate([np.arange(DRAWS, dtype=np.int32), np.tile(np.arange(DRAWS, dtype=np.int32), steps * ORDERS)])
                mean = local + (-0.52 - local) * (1 - np.exp(-step / 1.5))
                ll = mean + rng.normal(0, 0.01, step.size)
                n = step.size
                table = pa.table({
                    "scenario": pa.array(["centres"] * n, pa.string()), "party": pa.array([party] * n, pa.string()),
                    "epsilon": pa.array(np.full(n, 1.0)), "fraction": pa.array(np.full(n, 0.1)),
                    "skew": pa.array(np.full(n, np.nan)), "seed": pa.array(np.full(n, seed, np.int64)),
                    "variant": pa.array(["full"] * n, pa.string()), "order": pa.array(order), "step": pa.array(step),
                    "draw": pa.array(draw), "ll": pa.array(ll),
                }, schema=LL_SCHEMA)
                writer.write_table(table)
                rows += n
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where to write the fabricated file (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="figbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ll, reference = workdir / "ll.parquet", workdir / "reference.parquet"
    start = time.perf_counter()
    rows = fabricate(ll)
    pq.write_table(pa.table({"evaluation": ["global_test"], "ll": [-0.50]}), reference)
    print(f"fabricated {rows:,} rows ({ll.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.1f} s")
    settings = {"scenario": "centres", "parties": list(CENTRES), "epsilon": 1.0, "fraction": 0.1}
    claim_settings = {**settings, "fractions": [0.1], "epsilons": [1.0], "skews": [], "supplement_epsilon": None,
                      "fraction_party": "Newcastle", "fraction_party_name": "Newcastle"}
    jobs = {
        "fig1 + fig_s3": lambda: party_comparison(ll, reference, {**settings, "full_figure": "fig_s3"}, "fig1"),
        "fig2 + fig_s4": lambda: steps_figure(ll, reference, {**settings, "full_figure": "fig_s4"}, "fig2"),
        "claim most_parties_benefit": lambda: most_parties_benefit(ll, claim_settings),
        "claim gain_saturates_after_five": lambda: gain_saturates_after_five(ll, claim_settings),
    }
    for name, job in jobs.items():
        start = time.perf_counter()
        result = job()
        for figure_name, figure in getattr(result, "figures", {}).items():
            save_figure(figure, workdir / f"{figure_name}.pdf", workdir / f"{figure_name}.png")
        print(f"{name:34s} {time.perf_counter() - start:6.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak resident memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
