"""Per-centre 80/20 train/test split, stratified by ethnicity (method.md, "Data").

Within each centre, ceil(test_fraction · n) records go to the test split. Stratified:
every ethnicity class c gets floor(test_fraction · n_c) test records plus one more for
the classes with the largest remainders (ties broken at random) until the total is
reached, then the test records of each class are drawn without replacement. When any
class present in the centre has fewer than ``min_class_size`` records the centre is
split unstratified (a uniform draw of the same size) and the fallback is reported; with
``min_class_size = 2`` this is the condition under which scikit-learn's stratified
``train_test_split``, which the study used, refuses to stratify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.variables import ALL_CENTRES, CENTRE_COLUMN


def min_centre_records(test_fraction: float) -> int:
    """The fewest records a centre needs for at least one training and one test record
    (the test split takes ceil(test_fraction · n), computed as the split does)."""
    n = 2
    while n - math.ceil(test_fraction * n) < 1:
        n += 1
    return n


@dataclass(frozen=True)
class TrainTestSplit:
    train: pd.DataFrame
    """Training records of every centre, in cohort order."""
    test: pd.DataFrame
    """The global test set: the union of the centres' test splits, in cohort order."""
    report: dict
    """Per centre: records, train, test, stratified (bool), reason (when not)."""


def split_train_test(cohort: pd.DataFrame, test_fraction: float, min_class_size: int, seed: int,
                     source: str = "cohort") -> TrainTestSplit:
    """Split each centre's records into train and test.

    A centre with fewer than :func:`min_centre_records` records stops with an
    :class:`InputError` naming ``source``, the centre, its count and the minimum.

    Centre c draws from the random stream ``(seed, c's index in ALL_CENTRES)``, so its
    split does not depend on which other centres are in the cohort.
    """
    is_test = np.zeros(len(cohort), dtype=bool)
    report: dict[str, dict] = {}
    centre_values = cohort[CENTRE_COLUMN].to_numpy()
    unknown = sorted(set(centre_values) - set(ALL_CENTRES))
    if unknown:
        raise ValueError(f"unknown centre {unknown[0]!r}; expected one of {list(ALL_CENTRES)}")
    minimum = min_centre_records(test_fraction)
    for centre in [c for c in ALL_CENTRES if c in set(centre_values)]:
        rows = np.flatnonzero(centre_values == centre)
        if len(rows) < minimum:
            raise InputError(f"{source}: centre {centre!r} has {len(rows)} record(s); at least {minimum} are needed for a "
                             f"training and a test record at split.test_fraction = {test_fraction}")
        rng = np.random.default_rng([seed, ALL_CENTRES.index(centre)])
        classes = cohort["ethnicity"].to_numpy()[rows]
        n_test = math.ceil(test_fraction * len(rows))
        labels, sizes = np.unique(classes, return_counts=True)
        small = labels[sizes < min_class_size]
        if len(small):
            chosen = rng.choice(rows, size=n_test, replace=False)
            reason = f"ethnicity class {small[0]!r} has {sizes[sizes < min_class_size][0]} record(s) < min_class_size {min_class_size}"
        else:
            chosen = _stratified_choice(rows, classes, labels, sizes, n_test, test_fraction, rng)
            reason = None
        is_test[chosen] = True
        report[centre] = {
            "records": int(len(rows)),
            "train": int(len(rows) - n_test),
            "test": int(n_test),
            "stratified": reason is None,
            "reason": reason,
        }
    return TrainTestSplit(
        train=cohort.loc[~is_test].reset_index(drop=True),
        test=cohort.loc[is_test].reset_index(drop=True),
        report=report,
    )


def _stratified_choice(rows, classes, labels, sizes, n_test, fraction, rng) -> np.ndarray:
    quotas = fraction * sizes
    counts = np.floor(quotas).astype(int)
    remainder = quotas - counts
    # Random tie-break among equal remainders: shuffle first, then a stable sort.
    order = rng.permutation(len(labels))
    order = order[np.argsort(-remainder[order], kind="stable")]
    counts[order[: n_test - counts.sum()]] += 1
    chosen = [rng.choice(rows[classes == label], size=k, replace=False) for label, k in zip(labels, counts)]
    return np.concatenate(chosen)
