"""Splits: disjoint, the right proportions, stratified; subsamples nested; skew and uniform parties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthshare.parties.local import subsample_nested, subsample_size
from synthshare.parties.skew import make_skewed_party
from synthshare.parties.uniform import split_uniform
from synthshare.cohort.simulated import simulate_cohort
from synthshare.parties.split import split_train_test


@pytest.fixture(scope="module")
def cohort(cohort_parameters) -> pd.DataFrame:
    frame = simulate_cohort(cohort_parameters, scale=0.5, seed=3).frame
    frame["record_id"] = np.arange(len(frame))
    return frame


@pytest.fixture(scope="module")
def split(cohort):
    return split_train_test(cohort, test_fraction=0.2, min_class_size=2, seed=11)


def test_disjoint_and_complete(cohort, split):
    train, test = set(split.train["record_id"]), set(split.test["record_id"])
    assert not train & test
    assert train | test == set(cohort["record_id"])


def test_proportions_per_centre(cohort, split):
    for centre, group in cohort.groupby("assessment_center"):
        n_test = (split.test["assessment_center"] == centre).sum()
        assert n_test == math.ceil(0.2 * len(group))
        assert split.report[centre]["test"] == n_test
        assert split.report[centre]["train"] == len(group) - n_test


def test_stratified_by_ethnicity(cohort, split):
    for centre, group in cohort.groupby("assessment_center"):
        assert split.report[centre]["stratified"]
        test = split.test[split.test["assessment_center"] == centre]
        for level, n in group["ethnicity"].value_counts().items():
            assert abs((test["ethnicity"] == level).sum() - 0.2 * n) < 1 + 1e-9, (centre, level)


def test_unstratified_fallback_is_reported(cohort):
    one = cohort[cohort["assessment_center"] == "Newcastle"].copy()
    one.iloc[0, one.columns.get_loc("ethnicity")] = "Chinese"
    one = one[(one["ethnicity"] != "Chinese") | (np.arange(len(one)) == 0)]
    result = split_train_test(one, 0.2, 2, seed=1)
    entry = result.report["Newcastle"]
    assert not entry["stratified"] and "'Chinese' has 1 record(s)" in entry["reason"]
    assert len(result.test) == math.ceil(0.2 * len(one))


def test_split_is_deterministic_and_seeded(cohort, split):
    again = split_train_test(cohort, 0.2, 2, seed=11)
    pd.testing.assert_frame_equal(again.test, split.test)
    other = split_train_test(cohort, 0.2, 2, seed=12)
    assert not other.test["record_id"].equals(split.test["record_id"])


def test_subsamples_are_nested_and_sized(split):
    train = split.train[split.train["assessment_center"] == "Leeds"].reset_index(drop=True)
    samples = subsample_nested(train, [0.1, 0.2, 0.5, 1.0], np.random.default_rng(0))
    ids = {f: set(s["record_id"]) for f, s in samples.items()}
    assert ids[0.1] < ids[0.2] < ids[0.5] < ids[1.0] == set(train["record_id"])
    for f, s in samples.items():
        assert len(s) == subsample_size(len(train), f)
        assert s["record_id"].is_unique


def test_uniform_split_partitions(split):
    parts = split_uniform(split.train, 5, np.random.default_rng(0))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(split.train)
    ids = [set(p["record_id"]) for p in parts]
    assert set().union(*ids) == set(split.train["record_id"])
    assert sum(len(i) for i in ids) == len(split.train)


def test_skewed_party(split):
    fractions = [0.1, 0.25, 0.5, 0.75, 1.0]
    party = make_skewed_party(split.test, fractions, "ethnicity", "South Asian", np.random.default_rng(4))
    full = party.local[1.0]
    assert len(full) == len(split.test) // 2
    target = lambda f: f[(f["ethnicity"] == "South Asian") & f["covid_test_result"]]
    others = lambda f: set(f[~((f["ethnicity"] == "South Asian") & f["covid_test_result"])]["record_id"])
    for small, large in zip(fractions, fractions[1:]):
        assert set(target(party.local[small])["record_id"]) <= set(target(party.local[large])["record_id"])
        assert others(party.local[small]) == others(full)
    for f in fractions:
        assert len(target(party.local[f])) == int(np.floor(f * len(target(full)) + 0.5))
    assert (party.evaluation["ethnicity"] == "South Asian").all()
    assert not set(party.evaluation["record_id"]) & set(full["record_id"])
    assert not set(party.evaluation["record_id"]) & set(split.train["record_id"])


def test_centre_too_small_to_split_stops_naming_centre_count_and_minimum():
    from synthshare.errors import InputError
    from synthshare.parties.split import min_centre_records

    cohort = pd.DataFrame({"ethnicity": ["White British"] * 3, "assessment_center": ["Barts", "Barts", "Leeds"]})
    with pytest.raises(InputError, match=r"cohort\.parquet: centre 'Leeds' has 1 record\(s\); at least 2 are needed .* split\.test_fraction = 0\.2"):
        split_train_test(cohort, 0.2, 2, seed=1, source="cohort.parquet")
    assert [min_centre_records(f) for f in (0.2, 0.5, 0.9)] == [2, 2, 10]
    for fraction in (0.05, 0.2, 0.5, 0.75, 0.9):
        n = min_centre_records(fraction)
        frame = pd.DataFrame({"ethnicity": ["White British"] * n, "assessment_center": ["Barts"] * n})
        result = split_train_test(frame, fraction, 2, seed=1)
        assert len(result.train) >= 1 and len(result.test) >= 1
