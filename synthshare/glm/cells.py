"""Count tables: a data set reduced to per-cell record and outcome counts.

Every feature is categorical, so the Poisson log-likelihood, its score, its Hessian and
the HC "meat" depend on a data set only through, per cell c of the feature grid
(7·2·8·4·5 = 2,240 cells), the number of records n_c and the sums Σy and Σy² over
them. The outcome is binary (``covid_test_result``), so Σy² = Σy and a table holds two
channels: ``[..., 0]`` = n_c, ``[..., 1]`` = positives. Combining data sets is adding
their tables; this is an identity, not an approximation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.variables import FEATURE_LEVELS, FEATURES, OUTCOME

RECORDS, POSITIVES = 0, 1
"""Channels of a count table."""


def cell_codes(frame: pd.DataFrame, features: tuple[str, ...] | list[str] = FEATURES, source: str = "data") -> np.ndarray:
    """(n,) flat cell index of every record (C order over ``features``' levels).

    Raises:
        InputError: a missing column or a value that is not one of the feature's levels.
    """
    flat = np.zeros(len(frame), dtype=np.int64)
    for feature in features:
        if feature not in frame.columns:
            raise InputError(f"{source}: column {feature!r} missing; expected columns {list(FEATURES) + [OUTCOME]}")
        levels = FEATURE_LEVELS[feature]
        codes = pd.Categorical(frame[feature], categories=levels).codes.astype(np.int64)
        if (codes < 0).any():
            bad = frame[feature].iloc[int(np.flatnonzero(codes < 0)[0])]
            raise InputError(f"{source}: column {feature!r} has value {bad!r}; expected one of {list(levels)}")
        flat = flat * len(levels) + codes
    return flat


def outcome_values(frame: pd.DataFrame, source: str = "data") -> np.ndarray:
    """(n,) the outcome as 0/1 int64.

    Raises:
        InputError: the column is missing, has missing values or values other than 0/1.
    """
    if OUTCOME not in frame.columns:
        raise InputError(f"{source}: column {OUTCOME!r} missing; expected a boolean outcome column")
    column = frame[OUTCOME]
    if column.isna().any():
        raise InputError(f"{source}: column {OUTCOME!r} has missing values; expected booleans")
    values = column.to_numpy()
    if values.dtype == bool:
        return values.astype(np.int64)
    if not np.isin(values, [0, 1]).all():
        bad = values[~np.isin(values, [0, 1])][0]
        raise InputError(f"{source}: column {OUTCOME!r} has value {bad!r}; expected a boolean (or 0/1)")
    return values.astype(np.int64)


def count_cells(frame: pd.DataFrame, features: tuple[str, ...] | list[str] = FEATURES, source: str = "data") -> np.ndarray:
    """The count table of a data set.

    Returns:
        (L_1, ..., L_q, 2) int64: records and positives per cell, axes in ``features`` order.
    """
    shape = tuple(len(FEATURE_LEVELS[f]) for f in features)
    size = int(np.prod(shape))
    flat = cell_codes(frame, features, source)
    y = outcome_values(frame, source)
    records = np.bincount(flat, minlength=size)
    positives = np.bincount(flat, weights=y, minlength=size).astype(np.int64)
    return np.stack([records, positives], axis=-1).reshape(shape + (2,))


def count_sets(frame: pd.DataFrame, sets: int, features: tuple[str, ...] | list[str] = FEATURES, source: str = "synthetic data") -> np.ndarray:
    """Count tables of K stacked data sets (the generator's ``synthetic.parquet``).

    Args:
        frame: records with an int column ``set`` in 0..K−1.
        sets: K; every set must be present.

    Returns:
        (K, L_1, ..., L_q, 2) int64.
    """
    if "set" not in frame.columns:
        raise InputError(f"{source}: column 'set' missing; expected K stacked synthetic sets with a 'set' column")
    set_index = frame["set"].to_numpy()
    if not np.issubdtype(set_index.dtype, np.integer):
        raise InputError(f"{source}: column 'set' has dtype {set_index.dtype}; expected integers 0..{sets - 1}")
    present = np.unique(set_index)
    if present.size != sets or present[0] != 0 or present[-1] != sets - 1:
        raise InputError(f"{source}: column 'set' holds {present.size} distinct values in [{present.min() if present.size else '-'}, "
                         f"{present.max() if present.size else '-'}]; expected every set 0..{sets - 1}")
    shape = tuple(len(FEATURE_LEVELS[f]) for f in features)
    size = int(np.prod(shape))
    flat = set_index.astype(np.int64) * size + cell_codes(frame, features, source)
    y = outcome_values(frame, source)
    records = np.bincount(flat, minlength=sets * size)
    positives = np.bincount(flat, weights=y, minlength=sets * size).astype(np.int64)
    return np.stack([records, positives], axis=-1).reshape((sets,) + shape + (2,))


def drop_features(table: np.ndarray, features: tuple[str, ...], keep: tuple[str, ...]) -> np.ndarray:
    """Sum a count table over the features not in ``keep`` (e.g. drop ethnicity).

    Args:
        table: (..., L_1, ..., L_q, 2) over ``features`` (the last q+1 axes).
        keep: the features to keep, a subsequence of ``features``.
    """
    q = len(features)
    axes = tuple(table.ndim - 1 - q + i for i, f in enumerate(features) if f not in keep)
    return table.sum(axis=axes)
