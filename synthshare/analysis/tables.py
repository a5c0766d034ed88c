"""The analysis stage's tables: tidy log-likelihoods, pooled coefficients, Rubin's pieces of
every step (intervals), partner selection's rounds, and their files.

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
from synthshare.analysis.rubin import POOLED_FIELDS, Pooled, pool_rubin
from synthshare.analysis.selection import Selection
from synthshare.atomic import atomic_path
from synthshare.errors import InputError

LL_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("party", pa.string()), ("epsilon", pa.float64()), ("fraction", pa.float64()),
    ("skew", pa.float64()), ("seed", pa.int64()), ("variant", pa.string()), ("order", pa.int32()),
    ("step", pa.int32()), ("draw", pa.int32()), ("ll", pa.float64()),
])
"""``ll.parquet``: one row per Monte Carlo draw; step 0 (local only) has order −1.

Variants: ``full`` and ``no_ethnicity`` (step 0), ``full`` (steps 1…O of each order), and
where enabled ``real`` (the real-data yardstick, steps 1…O of each order) and
``selected`` (order −1, step = partners chosen)."""

COEF_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("party", pa.string()), ("epsilon", pa.float64()), ("fraction", pa.float64()),
    ("seed", pa.int64()), ("step", pa.int32()), ("term", pa.string()), ("mean", pa.float64()), ("var", pa.float64()),
    ("skew", pa.float64()), ("variant", pa.string()),
])
"""``coef.parquet``: pooled coefficients at step 0 (both variants) and the last step of order 0."""

INTERVALS_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("party", pa.string()), ("epsilon", pa.float64()), ("fraction", pa.float64()),
    ("skew", pa.float64()), ("seed", pa.int64()), ("source", pa.string()), ("order", pa.int32()),
    ("step", pa.int32()), ("term", pa.string()), ("mean", pa.float64()), ("var", pa.float64()),
    ("between", pa.float64()), ("within", pa.float64()), ("count", pa.int32()), ("fallback", pa.bool_()),
])
"""``intervals.parquet``: Rubin's pieces of every pooled model of the full variant (issue 16).

One row per term of the design (absent terms too: ``count`` = 0, ``mean`` = 0, ``var``
NaN) and model, ``source``:

- ``local``: step 0 (order −1), the local fit (K_t = 1, b = 0, T = v̄ = HC1);
- ``synthetic``: step j = 1…O of order r = 0…R−1, the K fits pooled
  (``synthshare.analysis.rubin``: w̄ = ``mean``, T after the fallback = ``var``,
  b = ``between``, v̄ = ``within``, K_t = ``count``, ``fallback``: T < 0 was replaced);
- ``real``: the real-data-sharing yardstick at step j of order r (single fits as at
  step 0; scenario jobs only);
- ``selected``: the model of partner selection (order −1, step = partners chosen).

The same set of first-j partners in two orders gives the same numbers (fitted once)."""

SELECTION_SCHEMA = pa.schema([
    ("scenario", pa.string()), ("party", pa.string()), ("epsilon", pa.float64()), ("fraction", pa.float64()),
    ("skew", pa.float64()), ("seed", pa.int64()), ("round", pa.int32()), ("partner", pa.string()),
    ("best", pa.string()), ("heldout_before", pa.float64()), ("heldout_after", pa.float64()),
    ("candidates", pa.int32()), ("fit_records", pa.int64()), ("heldout_records", pa.int64()),
])
"""``selection.parquet``: one row per greedy round of partner selection (issue 16).

``partner``: the partner that joined in this round, or "" for the round that stopped;
``best``: the round's best candidate (equal to ``partner`` unless the round stopped;
"" if none was left); ``heldout_before``: the held-out per-record log-likelihood of the
current model at the round's start; ``heldout_after``: the best candidate's;
``candidates``: partners scored. The last round is a stop unless every partner joined;
round 0 is the first."""

VARIANTS_ADDED = ("real", "selected")
"""ll variants beyond the paper's: the real-data yardstick (order r, step j) and the
selected partners (order −1, step = partners chosen)."""


def _key_columns(n: int, scenario: str, party: str, epsilon: float, fraction: float, skew: float,
                 seed: int) -> dict[str, pa.Array]:
    """The job-key columns of ``n`` rows (the same value in every row)."""
    return {
        "scenario": pa.array(np.full(n, scenario, dtype=object), pa.string()),
        "party": pa.array(np.full(n, party, dtype=object), pa.string()),
        "epsilon": pa.array(np.full(n, float(epsilon)), pa.float64()),
        "fraction": pa.array(np.full(n, float(fraction)), pa.float64()),
        "skew": pa.array(np.full(n, float(skew)), pa.float64()),
        "seed": pa.array(np.full(n, int(seed)), pa.int64()),
    }


def ll_table(result: PartyResult, *, scenario: str, party: str, epsilon: float, fraction: float, seed: int,
             skew: float = float("nan")) -> pa.Table:
    """The tidy log-likelihood rows of one party's experiment.

    Row order: step 0 per variant (draws 0..S−1), then order 0..R−1 × step 1..O × draw;
    then, where present, the real-data yardstick likewise, then the selected model's
    draws. The paper's rows come first and do not depend on the additions.
    """
    parts = []
    for variant, values in result.local.items():
        parts.append((variant, np.full(values.size, -1), np.zeros(values.size, int), np.arange(values.size), values))
    for variant, values in (("full", result.combined), ("real", result.real)):
        if values is None or not values.shape[0]:
            continue
        R, O, S = values.shape
        order, step, draw = np.meshgrid(np.arange(R), np.arange(1, O + 1), np.arange(S), indexing="ij")
        parts.append((variant, order.ravel(), step.ravel(), draw.ravel(), values.ravel()))
    if result.selection is not None:
        values = result.selection.ll
        parts.append(("selected", np.full(values.size, -1), np.full(values.size, len(result.selection.chosen)),
                      np.arange(values.size), values))
    variant = np.concatenate([np.full(p[4].size, p[0], dtype=object) for p in parts])
    n = variant.size
    return pa.table({
        **_key_columns(n, scenario, party, epsilon, fraction, skew, seed),
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


def intervals_table(result: PartyResult, *, scenario: str, party: str, epsilon: float, fraction: float, seed: int,
                    skew: float = float("nan")) -> pa.Table:
    """Rubin's pieces of every pooled model of one party (:data:`INTERVALS_SCHEMA`).

    Row order: local, synthetic (order-major, then step, then term), real, selected.
    """
    P = result.design.size
    parts: list[tuple[str, np.ndarray, np.ndarray, Pooled]] = []
    if "full" in result.coef_local:
        # the local fit as step 0 pooled it: Rubin's rules with K = 1
        local = pool_rubin(result.coef_local["full"][None, None], result.var_local["full"][None, None],
                           result.present_local["full"][None, None])
        parts.append(("local", np.array([-1]), np.array([0]), local))
    for source, steps in (("synthetic", result.steps), ("real", result.real_steps)):
        if steps is None or not steps.mean.size:
            continue
        R, O = steps.mean.shape[:2]
        order, step = np.meshgrid(np.arange(R), np.arange(1, O + 1), indexing="ij")
        parts.append((source, order.ravel(), step.ravel(), _flat(steps, P)))
    if result.selection is not None:
        parts.append(("selected", np.array([-1]), np.array([len(result.selection.chosen)]),
                      _flat(result.selection.pooled, P)))
    models = sum(p[1].size for p in parts)
    n = models * P

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(p[3], name).reshape(-1) for p in parts]) if parts else np.zeros(0)

    def per_model(index: int) -> np.ndarray:
        return np.repeat(np.concatenate([p[index] for p in parts]) if parts else np.zeros(0, int), P)

    source = np.repeat(np.concatenate([np.full(p[1].size, p[0], dtype=object) for p in parts])
                       if parts else np.zeros(0, object), P)
    return pa.table({
        **_key_columns(n, scenario, party, epsilon, fraction, skew, seed),
        "source": pa.array(source, pa.string()),
        "order": pa.array(per_model(1), pa.int32()),
        "step": pa.array(per_model(2), pa.int32()),
        "term": pa.array(np.tile(np.array(result.design.names, dtype=object), models), pa.string()),
        "mean": pa.array(column("mean").astype(np.float64), pa.float64()),
        "var": pa.array(column("var").astype(np.float64), pa.float64()),
        "between": pa.array(column("between").astype(np.float64), pa.float64()),
        "within": pa.array(column("within").astype(np.float64), pa.float64()),
        "count": pa.array(column("count").astype(np.int32), pa.int32()),
        "fallback": pa.array(column("fallback").astype(bool), pa.bool_()),
    }, schema=INTERVALS_SCHEMA)


def _flat(pooled: Pooled, size: int) -> Pooled:
    """A pooled model's arrays as (models, P)."""
    return Pooled(**{name: np.asarray(getattr(pooled, name)).reshape(-1, size) for name in POOLED_FIELDS})


def selection_table(selection: Selection | None, partners: Sequence[str], *, scenario: str, party: str,
                    epsilon: float, fraction: float, seed: int, skew: float = float("nan")) -> pa.Table:
    """The rounds of one party's partner selection (:data:`SELECTION_SCHEMA`); no rows if not run.

    Args:
        partners: the names of the partner indices (the party's others, in order).
    """
    rounds = selection.rounds if selection is not None else []
    n = len(rounds)

    def name(index: int | None) -> str:
        return "" if index is None else partners[index]

    return pa.table({
        "scenario": pa.array([scenario] * n, pa.string()),
        "party": pa.array([party] * n, pa.string()),
        "epsilon": pa.array([float(epsilon)] * n, pa.float64()),
        "fraction": pa.array([float(fraction)] * n, pa.float64()),
        "skew": pa.array([float(skew)] * n, pa.float64()),
        "seed": pa.array([int(seed)] * n, pa.int64()),
        "round": pa.array(list(range(n)), pa.int32()),
        "partner": pa.array([name(r.partner) for r in rounds], pa.string()),
        "best": pa.array([name(r.best) for r in rounds], pa.string()),
        "heldout_before": pa.array([r.before for r in rounds], pa.float64()),
        "heldout_after": pa.array([r.after for r in rounds], pa.float64()),
        "candidates": pa.array([r.tried for r in rounds], pa.int32()),
        "fit_records": pa.array([selection.fit_records] * n if n else [], pa.int64()),
        "heldout_records": pa.array([selection.heldout_records] * n if n else [], pa.int64()),
    }, schema=SELECTION_SCHEMA)


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
