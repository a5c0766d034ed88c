"""The skewed party of Fig 5: half the test set with one group's positives subsampled.

Drawn from the config's ``skew.seed``, independently of the generator seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthshare.variables import OUTCOME


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
