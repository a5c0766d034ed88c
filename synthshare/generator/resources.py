"""Memory and run-time requests for a generator job, from its data size and settings.

Used by the workflow's ``resources:`` (attempt-aware: each retry doubles). The step
cost model is fitted to ``benchmarks/bench_dpvi.py`` on the 2-core development machine
(vectorised aligned DPVI, one thread; benchmarks/README.md, "DPVI": 87 µs per party-step at
N ≤ 474, 138 µs at N ≤ 4,737); the request doubles the estimate for a loaded machine:
seconds per step ≈ ``STEP_FIXED_S + parties · (STEP_PARTY_S + STEP_RECORD_S · N_max)``.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import pyarrow.parquet as pq

from synthshare.generator.settings import GeneratorSettings

STEP_FIXED_S = 50e-6
STEP_PARTY_S = 80e-6
STEP_RECORD_S = 15e-9
STOCK_FACTOR = 30.0
"""The stock variant's per-example guide draws and full per-example gradients cost more."""
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
