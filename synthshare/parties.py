"""The parties' local data sets: subsampled centres, uniform splits and the skewed party.

All three draw from fixed seeds in the config, independently of the generator seeds:
the paper repeats the generator fits and analyses over seeds on fixed local data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthshare.variables import OUTCOME


def subsample_size(n: int, fraction: float) -> int:
    """Records kept of n at fraction f: round(f · n) (half up), at least 1."""
    return max(1, int(np.floor(fraction * n + 0.5)))


def subsample_nested(frame: pd.DataFrame, fractions: list[float], rng: np.random.Generator) -> dict[float, pd.DataFrame]:
    """Subsample ``frame`` without replacement to each fraction, nested.

    One random permutation of the rows is drawn; fraction f keeps its first
    ``subsample_size(n, f)`` rows (restored to their original order). So a smaller
    fraction's sample is a subset of a larger one's, which keeps the data-size sweep
    free of unrelated sampling noise.

    Returns:
        fraction -> frame of shape (subsample_size(n, f), n_columns).
    """
    order = rng.permutation(len(frame))
    return {
        f: frame.iloc[np.sort(order[: subsample_size(len(frame), f)])].reset_index(drop=True)
        for f in fractions
    }


def split_uniform(frame: pd.DataFrame, party_count: int, rng: np.random.Generator) -> list[pd.DataFrame]:
    """Split ``frame`` uniformly at random into ``party_count`` near-equal parties.

    Party sizes differ by at most one record (``numpy.array_split`` of a permutation).
    """
    if party_count > len(frame):
        raise ValueError(f"cannot split {len(frame)} records into {party_count} non-empty parties")
    order = rng.permutation(len(frame))
    return [frame.iloc[np.sort(part)].reset_index(drop=True) for part in np.array_split(order, party_count)]


@dataclass(frozen=True)
class SkewedParty:
    """The Fig 5 experiment (method.md, Figures 5): a new party from half the test set."""

    local: dict[float, pd.DataFrame]
    """skew fraction s -> half A with its (group, positive) records kept at fraction s."""
    evaluation: pd.DataFrame
    """The group's records in half B."""


def make_skewed_party(test: pd.DataFrame, fractions: list[float], column: str, level: str, rng: np.random.Generator) -> SkewedParty:
    """Build the skewed party and its evaluation set from the global test set.

    Half A (floor(n/2) records, uniform at random) is the party; in A the records with
    ``column == level`` and a positive outcome are subsampled to each fraction s, nested
    (one permutation of them, s keeps its first round(s · count)); all other records of
    A are kept. The evaluation set is B's records with ``column == level``.
    """
    order = rng.permutation(len(test))
    half_a = test.iloc[np.sort(order[: len(test) // 2])].reset_index(drop=True)
    half_b = test.iloc[np.sort(order[len(test) // 2 :])].reset_index(drop=True)
    target = np.flatnonzero((half_a[column] == level).to_numpy() & half_a[OUTCOME].to_numpy())
    target_order = rng.permutation(target)
    local = {}
    for s in fractions:
        keep_count = int(np.floor(s * len(target) + 0.5))
        dropped = np.setdiff1d(target, target_order[:keep_count])
        local[s] = half_a.drop(index=dropped).reset_index(drop=True)
    evaluation = half_b.loc[half_b[column] == level].reset_index(drop=True)
    return SkewedParty(local=local, evaluation=evaluation)
