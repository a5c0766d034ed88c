"""Memory and run-time requests for a generator job, from its data size and settings.

Used by the workflow's ``resources:`` (attempt-aware: each retry doubles). The step
cost model follows ``benchmarks/bench_dpvi.py`` on the 2-core development machine (the
fused aligned path, one thread; benchmarks/README.md, "DPVI": 17 µs per party-step at
N = 290 and 28 µs at N = 3,800 on a quiet machine, 24 and 38 µs in a 16-party job on a
loaded one); each party runs at its own N, the JAX draw is sized by the largest
stream, so the model charges N_max; the request doubles the estimate:
seconds per step ≈ ``STEP_FIXED_S + parties · (STEP_PARTY_S + STEP_RECORD_S · N_max)``.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import pyarrow.parquet as pq

from synthshare.generator.settings import GeneratorSettings

STEP_FIXED_S = 0.0
STEP_PARTY_S = 20e-6
STEP_RECORD_S = 5e-9
STOCK_FACTOR = 150.0
"""The stock variant runs the reference path (per-example guide draws and full per-example
gradients in XLA): 85x a plain SVI step at N = 3,800, i.e. ~150x the fused step."""
OVERHEAD_S = 120.0
"""Accounting (σ search, PLD), compilation, sampling K sets and writing."""
ASSUMED_RECORDS = 5000
"""Records per party assumed while a local file does not exist yet (DAG building)."""


def party_sizes(paths: Sequence[str | os.PathLike]) -> list[int]:
    """Rows of each local Parquet file (from its footer); ``ASSUMED_RECORDS`` if missing."""
    sizes = []
    for path in paths:
        try:
            sizes.append(int(pq.ParquetFile(path).metadata.num_rows))
        except (OSError, ValueError):
            sizes.append(ASSUMED_RECORDS)
    return sizes


def runtime_minutes(paths: Sequence[str | os.PathLike], settings: GeneratorSettings, attempt: int = 1) -> int:
    """Wall-clock request in minutes, with a 2× margin, doubled per retry."""
    sizes = party_sizes(paths) or [ASSUMED_RECORDS]
    per_step = STEP_FIXED_S + len(sizes) * (STEP_PARTY_S + STEP_RECORD_S * max(sizes))
    if settings.variant == "stock":
        per_step *= STOCK_FACTOR
    seconds = OVERHEAD_S + settings.steps * per_step
    return int(math.ceil(2.0 * seconds / 60.0)) * 2 ** (attempt - 1)


def memory_mb(paths: Sequence[str | os.PathLike], settings: GeneratorSettings, attempt: int = 1) -> int:
    """Memory request in MB: the JAX runtime plus one party's K synthetic sets as strings."""
    sizes = party_sizes(paths) or [ASSUMED_RECORDS]
    synthetic_mb = settings.synthetic_sets * max(sizes) * 8 * 60 / 1e6  # 8 columns, ~60 B per object cell
    return int(math.ceil(1500 + 2.0 * synthetic_mb)) * 2 ** (attempt - 1)
