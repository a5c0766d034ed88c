"""A user's processed cohort file: complete cases kept, bad input stops with one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthshare.cohort.file import read_cohort_file
from synthshare.errors import InputError
from synthshare.cohort.simulated import simulate_cohort
from tests.conftest import run_snakemake

PARTIES = ["Barts", "Croydon", "Leeds", "Newcastle", "Oxford", "Sheffield"]


@pytest.fixture(scope="module")
def small_cohort(cohort_parameters) -> pd.DataFrame:
    frame = simulate_cohort(cohort_parameters, scale=0.25, seed=5).frame
    return frame[frame["assessment_center"].isin(PARTIES)].reset_index(drop=True)


def test_csv_round_trip_drops_incomplete_rows(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[3, "education"] = None
    frame.loc[7, "sex"] = ""
    frame["extra"] = 1
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    loaded = read_cohort_file(path, PARTIES)
    assert loaded.rows_read == len(frame)
    assert loaded.rows_incomplete == 2
    assert len(loaded.frame) == len(frame) - 2
    assert loaded.frame["covid_test_result"].dtype == bool
    expected = small_cohort.drop(index=[3, 7]).reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded.frame, expected)


def test_parquet_is_read(tmp_path, small_cohort):
    path = tmp_path / "cohort.parquet"
    small_cohort.to_parquet(path)
    pd.testing.assert_frame_equal(read_cohort_file(path, PARTIES).frame, small_cohort)


def test_unknown_level_names_file_row_column_value(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[41, "ethnicity"] = "Martian"
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"cohort\.csv: row 42, column 'ethnicity': unknown value 'Martian'; expected one of \['White British'"):
        read_cohort_file(path, PARTIES)


def test_missing_column(tmp_path, small_cohort):
    path = tmp_path / "cohort.csv"
    small_cohort.drop(columns="deprivation").to_csv(path, index=False)
    with pytest.raises(InputError, match=r"cohort\.csv: missing column 'deprivation'"):
        read_cohort_file(path, PARTIES)


def test_corrupt_csv(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text('age_group,sex\n"[40, 45)",Female\n"[45, 50)",Male,extra\n')
    with pytest.raises(InputError, match=r"cohort\.csv: cannot parse as CSV"):
        read_cohort_file(path, PARTIES)


def test_empty_centre(tmp_path, small_cohort):
    path = tmp_path / "cohort.csv"
    small_cohort[small_cohort["assessment_center"] != "Oxford"].to_csv(path, index=False)
    with pytest.raises(InputError, match=r"column 'assessment_center': centre 'Oxford' has no complete records"):
        read_cohort_file(path, PARTIES)


def test_bad_outcome(tmp_path, small_cohort):
    frame = small_cohort.astype({"covid_test_result": object})
    frame.loc[5, "covid_test_result"] = "maybe"
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"row 6, column 'covid_test_result': unknown value 'maybe'"):
        read_cohort_file(path, PARTIES)


@pytest.mark.parametrize("corruption", ["unknown_level", "missing_column", "corrupt"])
def test_workflow_stops_and_leaves_no_output(workflow_dir: Path, small_cohort, corruption):
    frame = small_cohort.copy()
    path = workflow_dir / "my_cohort.csv"
    if corruption == "unknown_level":
        frame.loc[10, "deprivation"] = "5th"
        frame.to_csv(path, index=False)
        expected = "my_cohort.csv: row 11, column 'deprivation': unknown value '5th'"
    elif corruption == "missing_column":
        frame.drop(columns="sex").to_csv(path, index=False)
        expected = "my_cohort.csv: missing column 'sex'"
    else:
        text = frame.to_csv(index=False).splitlines()
        text[20] += ",surplus,fields"  # a truncated/garbled export: a row with more fields than the header
        path.write_text("\n".join(text) + "\n")
        expected = "my_cohort.csv: cannot parse as CSV: Error tokenizing data. C error: Expected 7 fields in line 21, saw 9"
    config = yaml.safe_load((workflow_dir / "config/smoke.yaml").read_text())
    config["run"] = "user"
    config["cohort"] = {"source": "file", "file": {"path": "my_cohort.csv"}}
    (workflow_dir / "user.yaml").write_text(yaml.safe_dump(config))
    process = run_snakemake(workflow_dir, "data", "--configfile", "user.yaml", check=False)
    assert process.returncode != 0
    assert expected in process.stdout + process.stderr
    data_dir = workflow_dir / "results/user/data"
    leftovers = [p for p in data_dir.rglob("*") if p.is_file()] if data_dir.exists() else []
    assert leftovers == []
