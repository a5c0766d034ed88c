"""Achilles' heels targets: Hamming k-NN scores, deterministic ties."""

from __future__ import annotations

import numpy as np
import pytest

from synthshare.audit.targets import record_codes, select_targets, vulnerability
from synthshare.errors import InputError
from tests.generator_helpers import random_frame


def _brute(records: np.ndarray, k: int) -> np.ndarray:
    scores = []
    for i in range(len(records)):
        d = sorted(int(np.sum(records[i] != records[j])) for j in range(len(records)) if j != i)
        scores.append(np.mean(d[:k]))
    return np.array(scores)


def test_scores_are_mean_hamming_distance_to_the_five_nearest_others():
    records = record_codes(random_frame(np.random.default_rng(0), 60), "test")
    assert records.shape == (60, 6)
    np.testing.assert_allclose(vulnerability(records), _brute(records, 5))
    np.testing.assert_allclose(vulnerability(records, k=2), _brute(records, 2))


def test_blocks_do_not_change_the_scores(monkeypatch):
    records = record_codes(random_frame(np.random.default_rng(1), 50), "test")
    whole = vulnerability(records)
    monkeypatch.setattr("synthshare.audit.targets._ROWS_PER_BLOCK", 7)
    np.testing.assert_array_equal(vulnerability(records), whole)


def test_an_isolated_record_is_the_most_vulnerable_and_duplicates_count():
    base = np.zeros((10, 6), np.int32)  # ten identical records
    base[3] = (6, 1, 7, 3, 4, 1)  # differs from all others in all 6 columns
    base[7, 0] = 1  # one column off
    scores = vulnerability(base)
    assert scores[3] == 6.0 and scores[7] == pytest.approx(1.0)
    assert scores[0] == pytest.approx(0.0)  # five duplicates at distance 0 (the outlier and row 7 are farther)
    targets = select_targets(base, vulnerable=2, typical=3)
    assert list(targets.vulnerable) == [3, 7]
    # Median score is 0: typical = lowest-positioned records at the median, excluding the vulnerable.
    assert list(targets.typical) == [0, 1, 2]


def test_ties_break_by_position_and_selection_is_deterministic():
    records = np.zeros((8, 6), np.int32)
    records[[5, 2], 0] = (3, 4)  # two equally isolated records (distance 2 to every record)
    records[[5, 2], 2] = (5, 6)
    first = select_targets(records, 2, 2)
    assert list(first.vulnerable) == [2, 5]
    again = select_targets(records.copy(), 2, 2)
    np.testing.assert_array_equal(first.vulnerable, again.vulnerable)
    np.testing.assert_array_equal(first.typical, again.typical)


def test_bad_sizes_stop_with_one_line():
    records = np.zeros((5, 6), np.int32)
    with pytest.raises(InputError, match="k = 5 with 5 records"):
        vulnerability(records)
    with pytest.raises(InputError, match="3 vulnerable"):
        select_targets(np.zeros((6, 6), np.int32), 3, 4)
