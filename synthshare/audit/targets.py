"""Audit targets: the party's most vulnerable records ("Achilles' heels") and typical ones.

Meeus, Guépin, Creţu & de Montjoye (ESORICS 2023, "Achilles' heels: vulnerable record
identification in synthetic data publishing") rank records by their mean distance to
their k = 5 nearest neighbours in the data set: records far from all others are the
ones a generator can only reproduce by memorising them.

Here a record is its 6 categorical codes — the five features (level positions of
``synthshare.variables.FEATURE_LEVELS``) and the outcome (0/1) — and the distance is
the Hamming distance over these 6 columns (the number of columns in which two records
differ, 0…6): the features are unordered categories (age group and deprivation are
ordinal, but an ordinal distance would weigh their steps against the nominal columns
arbitrarily; Hamming treats every column alike). A record's score is the mean of its
k smallest distances to the *other* records (its duplicates count, at distance 0).

Ties are broken by record position (the row order of the party's local data), so the
selection is a pure function of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.generator.encoding import encode_records

NEIGHBOURS = 5
"""k of Meeus et al."""

_ROWS_PER_BLOCK = 1024
"""Rows of the (block × N) distance matrix held at once (N ≤ ~10⁵ fits in memory)."""


def record_codes(frame: pd.DataFrame, source: str = "data frame") -> np.ndarray:
    """(N, 6) int32: the five feature codes and the outcome (0/1), the audit's record."""
    codes, outcome = encode_records(frame, source)
    return np.concatenate([codes, outcome.astype(np.int32)[:, None]], axis=1)


def vulnerability(records: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """(N,) float64: mean Hamming distance of each record to its k nearest other records.

    ``records`` (N, 6) integer codes; needs N > k.
    """
    records = np.asarray(records)
    if records.ndim != 2 or not np.issubdtype(records.dtype, np.integer):
        raise InputError(f"vulnerability: records of shape {records.shape}, dtype {records.dtype}; expected (N, columns) integers")
    n = records.shape[0]
    if not 1 <= k < n:
        raise InputError(f"vulnerability: k = {k} with {n} records; expected 1 <= k < number of records")
    scores = np.empty(n, np.float64)
    for start in range(0, n, _ROWS_PER_BLOCK):
        block = records[start:start + _ROWS_PER_BLOCK]
        distance = np.sum(block[:, None, :] != records[None, :, :], axis=2).astype(np.int32)
        # A record is not its own neighbour: its self-distance (0) is set above any real one.
        rows = np.arange(block.shape[0])
        distance[rows, start + rows] = records.shape[1] + 1
        nearest = np.partition(distance, k - 1, axis=1)[:, :k]
        scores[start:start + block.shape[0]] = nearest.mean(axis=1)
    return scores


@dataclass(frozen=True)
class Targets:
    """Positions (rows of the party's data) of the audited records."""

    vulnerable: np.ndarray
    """(n_vulnerable,) int: highest scores first."""
    typical: np.ndarray
    """(n_typical,) int: scores closest to the median score, not among the vulnerable."""
    scores: np.ndarray
    """(N,) every record's vulnerability score."""


def select_targets(records: np.ndarray, vulnerable: int, typical: int, k: int = NEIGHBOURS) -> Targets:
    """The ``vulnerable`` highest-scoring records and ``typical`` records for contrast.

    Vulnerable: descending score, ties by ascending position. Typical: ascending
    |score − median score|, ties by ascending position, excluding the vulnerable ones.
    """
    records = np.asarray(records)
    n = records.shape[0] if records.ndim == 2 else 0
    if vulnerable < 1 or typical < 0 or vulnerable + typical > n:
        raise InputError(
            f"select_targets: {vulnerable} vulnerable + {typical} typical targets from {n} records; "
            "expected vulnerable >= 1, typical >= 0 and at most the number of records in all"
        )
    scores = vulnerability(records, k)
    positions = np.arange(n)
    order = np.lexsort((positions, -scores))  # last key is primary: score descending, then position
    chosen = order[:vulnerable]
    rest = np.setdiff1d(positions, chosen)
    gap = np.abs(scores[rest] - np.median(scores))
    typical_rows = rest[np.lexsort((rest, gap))][:typical]
    return Targets(vulnerable=chosen.astype(np.int64), typical=typical_rows.astype(np.int64), scores=scores)
