"""Records as the generator sees them: integer level codes, one-hot blocks, the design.

A record's five features become integer codes ``(n, 5)`` int32 (each level's position
in :data:`synthshare.variables.FEATURE_LEVELS`, 0 = reference) and the outcome a float
0/1 vector ``(n,)``. On the model side a record is its all-levels one-hot row ``(26,)``
(one column per level of every feature) and its reference-coded design row φ(x)
``(P,)`` = intercept plus one column per non-reference level (P = 22).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.variables import FEATURE_LEVELS, FEATURES, OUTCOME

LEVEL_COUNTS: tuple[int, ...] = tuple(len(levels) for levels in FEATURE_LEVELS.values())
"""(7, 2, 8, 4, 5): levels per feature, in :data:`FEATURES` order."""


def coefficient_names() -> list[str]:
    """Names of the regression coefficients, in the order of the ``coef`` site.

    ``Intercept`` then ``feature[level]`` for every non-reference level (22 in all);
    the same spelling as ``data/truth.json`` and the analysis stage.
    """
    names = ["Intercept"]
    for feature, levels in FEATURE_LEVELS.items():
        names.extend(f"{feature}[{level}]" for level in levels[1:])
    return names


COEFFICIENT_COUNT = 1 + sum(count - 1 for count in LEVEL_COUNTS)
"""P = 22: intercept plus one coefficient per non-reference level."""


def encode_records(frame: pd.DataFrame, source: str = "data frame") -> tuple[np.ndarray, np.ndarray]:
    """Level strings -> integer codes.

    Returns ``codes`` (n, 5) int32, the position of each feature's level in
    ``FEATURE_LEVELS`` (0 = reference), and ``outcome`` (n,) float32 in {0, 1}.
    Raises :class:`InputError` naming ``source``, the column and the value on an
    unknown level, a missing column or a non-boolean outcome.
    """
    for column in FEATURES + (OUTCOME,):
        if column not in frame.columns:
            raise InputError(f"{source}: missing column {column!r}; expected columns {list(FEATURES) + [OUTCOME]}")
    codes = np.empty((len(frame), len(FEATURES)), dtype=np.int32)
    for j, (feature, levels) in enumerate(FEATURE_LEVELS.items()):
        lookup = {level: i for i, level in enumerate(levels)}
        mapped = frame[feature].map(lookup)
        if mapped.isna().any():
            row = int(np.flatnonzero(mapped.isna().to_numpy())[0])
            raise InputError(
                f"{source}: row {row + 1}, column {feature!r}: unknown value {frame[feature].iloc[row]!r}; "
                f"expected one of {list(levels)}"
            )
        codes[:, j] = mapped.to_numpy(dtype=np.int32)
    if not pd.api.types.is_bool_dtype(frame[OUTCOME]):
        raise InputError(f"{source}: column {OUTCOME!r} has dtype {frame[OUTCOME].dtype}; expected bool")
    return codes, frame[OUTCOME].to_numpy(dtype=np.float32)


def decode_records(codes: np.ndarray) -> dict[str, np.ndarray]:
    """Integer codes (n, 5) -> level strings per feature (object arrays), the inverse of encoding."""
    return {
        feature: np.asarray(levels, dtype=object)[np.asarray(codes[:, j])]
        for j, (feature, levels) in enumerate(FEATURE_LEVELS.items())
    }


_COLUMN_FEATURE = np.repeat(np.arange(len(LEVEL_COUNTS)), LEVEL_COUNTS)
_COLUMN_LEVEL = np.concatenate([np.arange(count) for count in LEVEL_COUNTS])
_COLUMN_START = np.concatenate([[0], np.cumsum(LEVEL_COUNTS)[:-1]])
_NON_REFERENCE = np.flatnonzero(_COLUMN_LEVEL > 0)


def all_levels_one_hot(codes: jax.Array) -> jax.Array:
    """Codes (..., 5) -> one column per level of every feature (..., 26), float32 0/1.

    Columns follow ``FEATURE_LEVELS`` (feature by feature, level by level); one
    comparison builds all five one-hot blocks at once.
    """
    return (codes[..., _COLUMN_FEATURE] == _COLUMN_LEVEL).astype(jnp.float32)


def design_matrix(codes: jax.Array) -> jax.Array:
    """Reference-coded design φ(x) with intercept: codes (..., 5) -> (..., P), float32 0/1.

    Column order is :func:`coefficient_names`; a feature at its reference level
    (code 0) has all its columns 0.
    """
    one_hot = all_levels_one_hot(codes)
    return jnp.concatenate([jnp.ones(codes.shape[:-1] + (1,), jnp.float32), one_hot[..., _NON_REFERENCE]], axis=-1)


def feature_columns(one_hot: jax.Array, j: int) -> jax.Array:
    """Feature j's block of an all-levels array (..., 26) -> (..., L_j)."""
    start = int(_COLUMN_START[j])
    return one_hot[..., start:start + LEVEL_COUNTS[j]]
