"""The analysis stage's tables: tidy log-likelihoods and pooled coefficients, and their files.

Schemas follow docs/architecture.md (analysis stage). Rows are built column-wise with
pyarrow (a paper-scale job has millions of rows), written atomically, and stacked by
streaming row groups (the run's ``ll.parquet`` holds ~170 million rows at paper scale).
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthshare.glm.design import Design
from synthshare.analysis.experiment import PartyResult
from synthshare.atomic import atomic_path
from synthshare.errors import InputError

LL_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("party", pa.string()), ("epsilon", pa.float64()), ("fraction", pa.float64()),
    ("skew", pa.float64()), ("seed", pa.int64()), ("variant", pa.string()), ("order", pa.int32()),
    ("step", pa.int32()), ("draw", pa.int32()), ("ll", pa.float64()),
])
"""``ll.parquet``: one row per Monte Carlo draw; step 0 (local only) has order −1."""

COEF_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("party", pa.string()), ("epsilon", pa.float64()), ("fraction", pa.float64()),
    ("seed", pa.int64()), ("step", pa.int32()), ("term", pa.string()), ("mean", pa.float64()), ("var", pa.float64()),
    ("skew", pa.float64()), ("variant", pa.string()),
])
"""``coef.parquet``: pooled coefficients at step 0 (both variants) and the last step of order 0."""


def ll_table(result: PartyResult, *, scenario: str, party: str, epsilon: float, fraction: float, seed: int,
             skew: float = float("nan")) -> pa.Table:
    """The tidy log-likelihood rows of one party's experiment.

    Row order: step 0 per variant (draws 0..S−1), then order 0..R−1 × step 1..O × draw.
    """
    parts = []
    for variant, values in result.local.items():
        parts.append((variant, np.full(values.size, -1), np.zeros(values.size, int), np.arange(values.size), values))
    R, O, S = result.combined.shape
    if R:
        order, step, draw = np.meshgrid(np.arange(R), np.arange(1, O + 1), np.arange(S), indexing="ij")
        parts.append(("full", order.ravel(), step.ravel(), draw.ravel(), result.combined.ravel()))
    variant = np.concatenate([np.full(p[4].size, p[0], dtype=object) for p in parts])
    n = variant.size
    return pa.table({
        "scenario": pa.array(np.full(n, scenario, dtype=object), pa.string()),
        "party": pa.array(np.full(n, party, dtype=object), pa.string()),
        "epsilon": pa.array(np.full(n, float(epsilon)), pa.float64()),
        "fraction": pa.array(np.full(n, float(fraction)), pa.float64()),
        "skew": pa.array(np.full(n, float(skew)), pa.float64()),
        "seed": pa.array(np.full(n, int(seed)), pa.int64()),
        "variant": pa.array(variant, pa.string()),
        "order": pa.array(np.concatenate([p[1] for p in parts]), pa.int32()),
        "step": pa.array(np.concatenate([p[2] for p in parts]), pa.int32()),
        "draw": pa.array(np.concatenate([p[3] for p in parts]), pa.int32()),
        "ll": pa.array(np.concatenate([p[4] for p in parts]).astype(np.float64), pa.float64()),
    }, schema=LL_SCHEMA)


def coef_table(result: PartyResult, *, scenario: str, party: str, epsilon: float, fraction: float, seed: int,
               skew: float = float("nan")) -> pa.Table:
    """Pooled coefficients of one party: step 0 (each variant) and the last step of order 0."""
    rows: list[tuple[int, str, str, float, float]] = []
    for variant in result.local:
        design = result.design if variant == "full" else result.design.without("ethnicity")
        rows += _coef_rows(design, 0, variant, result.coef_local[variant], result.var_local[variant],
                           result.present_local[variant])
    if result.coef_last is not None:
        rows += _coef_rows(result.design, result.combined.shape[1], "full", result.coef_last, result.var_last,
                           result.present_last)
    n = len(rows)
    return pa.table({
        "scenario": pa.array([scenario] * n, pa.string()),
        "party": pa.array([party] * n, pa.string()),
        "epsilon": pa.array([float(epsilon)] * n, pa.float64()),
        "fraction": pa.array([float(fraction)] * n, pa.float64()),
        "seed": pa.array([int(seed)] * n, pa.int64()),
        "step": pa.array([r[0] for r in rows], pa.int32()),
        "term": pa.array([r[2] for r in rows], pa.string()),
        "mean": pa.array([r[3] for r in rows], pa.float64()),
        "var": pa.array([r[4] for r in rows], pa.float64()),
        "skew": pa.array([float(skew)] * n, pa.float64()),
        "variant": pa.array([r[1] for r in rows], pa.string()),
    }, schema=COEF_SCHEMA)


def _coef_rows(design: Design, step: int, variant: str, coef: np.ndarray, var: np.ndarray,
               present: np.ndarray) -> list[tuple[int, str, str, float, float]]:
    return [(step, variant, name, float(c), float(v)) for name, c, v, p in zip(design.names, coef, var, present) if p]


def write_table(tables: Sequence[pa.Table], schema: pa.Schema, target: str | os.PathLike) -> None:
    """Write tables (one row group each) to one Parquet file atomically."""
    with atomic_path(target) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table.cast(schema))


def stack_files(paths: Iterable[str | os.PathLike], schema: pa.Schema, target: str | os.PathLike,
                batch_rows: int = 1 << 20) -> int:
    """Concatenate Parquet files with ``schema``'s columns into ``target``, streaming.

    Reads one record batch at a time (at most ``batch_rows`` rows), so memory stays
    bounded whatever the total size.

    Returns:
        Rows written.

    Raises:
        InputError: a file lacks one of the schema's columns.
    """
    rows = 0
    with atomic_path(target) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for path in paths:
                source = pq.ParquetFile(path)
                missing = [name for name in schema.names if name not in source.schema_arrow.names]
                if missing:
                    raise InputError(f"{path}: missing column(s) {missing}; expected columns {schema.names}")
                for batch in source.iter_batches(batch_size=batch_rows, columns=schema.names):
                    writer.write_table(pa.Table.from_batches([batch]).cast(schema))
                    rows += batch.num_rows
    return rows
