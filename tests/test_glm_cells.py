"""Count tables: equal to a direct group-by; combining data sets is adding tables; bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthshare.analysis.inputs import read_set_counts
from synthshare.glm.cells import count_cells, count_sets, drop_features
from synthshare.errors import InputError
from synthshare.variables import CELL_SHAPE, FEATURE_LEVELS, FEATURES, OUTCOME
from tests.test_glm_fit import random_frame


def test_count_table_equals_groupby():
    frame = random_frame(np.random.default_rng(0), 2000)
    table = count_cells(frame)
    assert table.shape == CELL_SHAPE + (2,)
    grouped = frame.groupby(list(FEATURES))[OUTCOME].agg(["size", "sum"])
    for key, row in grouped.iterrows():
        index = tuple(FEATURE_LEVELS[f].index(level) for f, level in zip(FEATURES, key))
        assert table[index + (0,)] == row["size"] and table[index + (1,)] == row["sum"]
    assert table[..., 0].sum() == len(frame) and table[..., 1].sum() == frame[OUTCOME].sum()


def test_combining_data_sets_is_adding_tables():
    rng = np.random.default_rng(1)
    a, b = random_frame(rng, 300), random_frame(rng, 500)
    np.testing.assert_array_equal(count_cells(pd.concat([a, b])), count_cells(a) + count_cells(b))


def test_stacked_sets_and_dropping_a_feature():
    rng = np.random.default_rng(2)
    sets = [random_frame(rng, 100) for _ in range(3)]
    stacked = pd.concat([s.assign(set=k) for k, s in enumerate(sets)], ignore_index=True)
    tables = count_sets(stacked, 3)
    for k in range(3):
        np.testing.assert_array_equal(tables[k], count_cells(sets[k]))
    kept = tuple(f for f in FEATURES if f != "ethnicity")
    np.testing.assert_array_equal(drop_features(tables, FEATURES, kept)[1], count_cells(sets[1], kept))


def test_read_set_counts_reads_categoricals(tmp_path):
    rng = np.random.default_rng(3)
    stacked = pd.concat([random_frame(rng, 50).assign(set=k) for k in range(4)], ignore_index=True)
    path = tmp_path / "synthetic.parquet"
    stacked.to_parquet(path)
    np.testing.assert_array_equal(read_set_counts(path), count_sets(stacked, 4))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns=["education"]), r"data\.parquet: column 'education' missing"),
        (lambda f: f.assign(sex=f["sex"].where(f.index != 2, "F")), r"data\.parquet: column 'sex' has value 'F'; expected one of \['Female', 'Male'\]"),
        (lambda f: f.assign(covid_test_result=f[OUTCOME].astype(object).where(f.index != 1, None)), r"column 'covid_test_result' has missing values"),
        (lambda f: f.assign(covid_test_result=f[OUTCOME].astype(int) * 2), r"column 'covid_test_result' has value 2; expected a boolean"),
    ],
)
def test_bad_input_names_file_column_and_value(change, message):
    frame = change(random_frame(np.random.default_rng(4), 20))
    with pytest.raises(InputError, match=message):
        count_cells(frame, source="data.parquet")


def test_missing_set_is_an_error():
    frame = random_frame(np.random.default_rng(5), 30).assign(set=0)
    frame.loc[10:, "set"] = 2
    with pytest.raises(InputError, match=r"synthetic\.parquet: column 'set' holds 2 distinct values in \[0, 2\]; expected every set 0\.\.2"):
        count_sets(frame, 3, source="synthetic.parquet")
