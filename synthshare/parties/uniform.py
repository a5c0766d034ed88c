"""Uniformly split parties: the pooled training data split at random into M parties.

Drawn from the config's ``uniform.seed``, independently of the generator seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_uniform(frame: pd.DataFrame, party_count: int, rng: np.random.Generator) -> list[pd.DataFrame]:
    """Split ``frame`` uniformly at random into ``party_count`` near-equal parties.

    Party sizes differ by at most one record (``numpy.array_split`` of a permutation).
    """
    if party_count > len(frame):
        raise ValueError(f"cannot split {len(frame)} records into {party_count} non-empty parties")
    order = rng.permutation(len(frame))
    return [frame.iloc[np.sort(part)].reset_index(drop=True) for part in np.array_split(order, party_count)]
