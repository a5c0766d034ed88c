"""Local data of the centres: each centre's training split subsampled to the fractions f.

The subsamples draw from a fixed seed in the config, independently of the generator
seeds: the paper repeats the generator fits and analyses over seeds on fixed local data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
