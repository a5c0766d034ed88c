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


def test_corrupt_csv(tmp_path, small_cohort):
    path = tmp_path / "cohort.csv"
    lines = small_cohort.head(5).to_csv(index=False).splitlines()
    lines[3] += ",extra"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"cohort\.csv: cannot parse as CSV: line 4 has 8 fields, the header 7"):
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


@pytest.mark.parametrize("corruption", ["unknown_level", "missing_column", "corrupt", "none_level", "tiny_centre", "incomplete"])
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
    elif corruption == "none_level":
        frame.loc[frame.index % 6 == 0, "education"] = "None"  # read as missing by pandas' defaults
        frame.to_csv(path, index=False)
        expected = "my_cohort.csv: row 1, column 'education': unknown value 'None'"
    elif corruption == "tiny_centre":
        oxford = frame.index[frame["assessment_center"] == "Oxford"]
        frame.drop(index=oxford[1:]).to_csv(path, index=False)
        expected = "my_cohort.csv: column 'assessment_center': centre 'Oxford' has 1 complete record(s); at least 2 are needed"
    elif corruption == "incomplete":
        frame.loc[frame.index % 10 == 0, "education"] = ""
        frame.to_csv(path, index=False)
        expected = "more than cohort.file.max_incomplete_share = 0.05 allows; most in column 'education'"
    else:
        text = frame.to_csv(index=False).splitlines()
        text[20] += ",surplus,fields"  # a truncated/garbled export: a row with more fields than the header
        path.write_text("\n".join(text) + "\n")
        expected = "my_cohort.csv: cannot parse as CSV: line 21 has 9 fields, the header 7"
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


# -- every level is text; only '' and 'NA' are missing ---------------------------------
def _write_csv(tmp_path, frame, name="cohort.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("spelling", ["None", "nan", "NaN", "NULL", "null", "n/a", "-", "?", "#N/A"])
def test_missing_looking_strings_are_values_not_missing(tmp_path, small_cohort, spelling):
    """pandas' default NA list would read 'None' (a natural abbreviation of 'None of the
    above') and these as missing and drop the rows silently: here they are unknown values."""
    frame = small_cohort.copy()
    frame.loc[12, "education"] = spelling
    path = _write_csv(tmp_path, frame)
    with pytest.raises(InputError, match=rf"row 13, column 'education': unknown value '{_re(spelling)}'; expected one of"):
        read_cohort_file(path, PARTIES)


def _re(text):
    import re

    return re.escape(text)


@pytest.mark.parametrize("spelling", ["", "NA", "  ", " NA "])
def test_documented_missing_spellings_are_missing(tmp_path, small_cohort, spelling):
    frame = small_cohort.astype(object).copy()
    frame.loc[4, "education"] = spelling
    frame.loc[9, "covid_test_result"] = spelling
    path = _write_csv(tmp_path, frame)
    loaded = read_cohort_file(path, PARTIES)
    assert loaded.rows_incomplete == 2 and len(loaded.frame) == len(frame) - 2


def test_unknown_value_in_an_incomplete_row_still_stops(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[6, "sex"] = ""
    frame.loc[6, "education"] = "None"
    with pytest.raises(InputError, match=r"row 7, column 'education': unknown value 'None'"):
        read_cohort_file(_write_csv(tmp_path, frame), PARTIES)


def test_surrounding_spaces_are_stripped(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[2, "sex"] = f"  {frame.loc[2, 'sex']} "
    pd.testing.assert_frame_equal(read_cohort_file(_write_csv(tmp_path, frame), PARTIES).frame, small_cohort)


def test_too_many_incomplete_rows_stop_naming_column_and_spellings(tmp_path, small_cohort):
    frame = small_cohort.copy()
    n = len(frame)
    slot = frame.index % 100  # spread over every centre
    frame.loc[slot < 8, "education"] = ""
    frame.loc[(slot >= 8) & (slot < 10), "education"] = "NA"
    frame.loc[(slot >= 10) & (slot < 11), "sex"] = ""
    path = _write_csv(tmp_path, frame)
    dropped = int((slot < 11).sum())
    with pytest.raises(InputError) as raised:
        read_cohort_file(path, PARTIES, max_incomplete_share=0.05)
    message = str(raised.value)
    assert "\n" not in message
    assert f"{dropped:,} of {n:,} records" in message
    assert "more than cohort.file.max_incomplete_share = 0.05" in message
    assert f"most in column 'education': {int((slot < 10).sum()):,} missing ('' x{int((slot < 8).sum()):,}, 'NA' x" in message
    # at a higher threshold the same file is read, the rows dropped and counted
    loaded = read_cohort_file(path, PARTIES, max_incomplete_share=0.2)
    assert loaded.rows_incomplete == dropped


def test_incomplete_share_at_the_threshold_passes(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[:9, "sex"] = ""
    path = _write_csv(tmp_path, frame)
    share = 10 / len(frame)
    assert read_cohort_file(path, PARTIES, max_incomplete_share=share).rows_incomplete == 10
    with pytest.raises(InputError, match="are incomplete"):
        read_cohort_file(path, PARTIES, max_incomplete_share=share * 0.99)


# -- file structure ----------------------------------------------------------------------
def test_duplicated_csv_column_stops(tmp_path, small_cohort):
    """pandas renames the second 'education' to 'education.1' and reads the first."""
    frame = small_cohort.copy()
    frame.insert(7, "education_2", frame["education"].iloc[::-1].to_numpy())
    text = frame.to_csv(index=False).replace("education_2", "education", 1)
    path = tmp_path / "cohort.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"cohort\.csv: column 'education' appears twice in the header \(columns 5 and 8\)"):
        read_cohort_file(path, PARTIES)


def test_duplicated_parquet_column_stops(tmp_path, small_cohort):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(small_cohort, preserve_index=False)
    table = pa.Table.from_arrays(table.columns + [table.column("sex")], names=table.column_names + ["sex"])
    path = tmp_path / "cohort.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match=r"cohort\.parquet: column 'sex' appears twice in the header \(columns 2 and 8\)"):
        read_cohort_file(path, PARTIES)


def test_nul_byte_in_a_csv_field_stops_with_its_line(tmp_path, small_cohort):
    lines = small_cohort.to_csv(index=False).splitlines()
    lines[30] = lines[30].replace("Male", "Ma\x00le", 1).replace("Female", "Fe\x00male", 1)
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"cohort\.csv: line 31: NUL byte in a field"):
        read_cohort_file(path, PARTIES)


def test_nul_byte_in_a_parquet_value_stops(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[3, "sex"] = "Male\x00"
    path = tmp_path / "cohort.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match=r"row 4, column 'sex': NUL byte in value"):
        read_cohort_file(path, PARTIES)


def test_short_row_stops_instead_of_becoming_incomplete(tmp_path, small_cohort):
    lines = small_cohort.to_csv(index=False).splitlines()
    lines[8] = lines[8].rsplit(",", 2)[0]
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"cannot parse as CSV: line 9 has 5 fields, the header 7"):
        read_cohort_file(path, PARTIES)


def test_byte_order_mark_is_accepted(tmp_path, small_cohort):
    path = tmp_path / "cohort.csv"
    path.write_bytes(b"\xef\xbb\xbf" + small_cohort.to_csv(index=False).encode())
    pd.testing.assert_frame_equal(read_cohort_file(path, PARTIES).frame, small_cohort)


def test_semicolon_separated_file_gets_a_hint(tmp_path, small_cohort):
    path = tmp_path / "cohort.csv"
    small_cohort.to_csv(path, index=False, sep=";")
    with pytest.raises(InputError, match=r"missing column 'age_group'.*separated by ';'"):
        read_cohort_file(path, PARTIES)


def test_not_utf8_stops(tmp_path, small_cohort):
    path = tmp_path / "cohort.csv"
    text = small_cohort.to_csv(index=False).replace("Oxford", "Öxford")
    path.write_bytes(text.encode("latin-1"))
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "Öxford" in row)
    with pytest.raises(InputError, match=rf"cohort\.csv: line {line}: bytes that are not UTF-8 \(invalid"):
        read_cohort_file(path, PARTIES)


def test_empty_file_stops(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"cohort\.csv: cannot parse as CSV: the file is empty"):
        read_cohort_file(path, PARTIES)


def test_parquet_types(tmp_path, small_cohort):
    path = tmp_path / "cohort.parquet"
    # categorical (dictionary-encoded) levels are text: accepted
    small_cohort.astype({"ethnicity": "category"}).to_parquet(path)
    pd.testing.assert_frame_equal(read_cohort_file(path, PARTIES).frame, small_cohort)
    # numbers are not levels
    small_cohort.assign(deprivation=1).to_parquet(path)
    with pytest.raises(InputError, match=r"column 'deprivation' has type int64; expected text"):
        read_cohort_file(path, PARTIES)
    # a null outcome is missing; 0/1 integers are booleans
    frame = small_cohort.astype({"covid_test_result": object})
    frame.loc[0, "covid_test_result"] = None
    frame.to_parquet(path)
    assert read_cohort_file(path, PARTIES).rows_incomplete == 1
    small_cohort.astype({"covid_test_result": "int64"}).to_parquet(path)
    pd.testing.assert_frame_equal(read_cohort_file(path, PARTIES).frame, small_cohort)


def test_centre_too_small_to_split_stops(tmp_path, small_cohort):
    oxford = small_cohort.index[small_cohort["assessment_center"] == "Oxford"]
    path = _write_csv(tmp_path, small_cohort.drop(index=oxford[1:]))
    with pytest.raises(InputError, match=r"centre 'Oxford' has 1 complete record\(s\); at least 2 are needed"):
        read_cohort_file(path, PARTIES, min_records=2)


def test_centre_not_a_party_stops(tmp_path, small_cohort):
    path = _write_csv(tmp_path, small_cohort)
    with pytest.raises(InputError, match=r"column 'assessment_center': unknown value '\w+'; expected one of the parties"):
        read_cohort_file(path, PARTIES[:-1])


def test_workflow_reads_a_good_file_and_counts_its_incomplete_rows(workflow_dir: Path, small_cohort):
    """The cohort rule on a valid CSV with 2 % incomplete rows (under the 5 % default)."""
    frame = small_cohort.copy()
    frame.loc[frame.index % 50 == 0, "sex"] = "NA"
    frame.to_csv(workflow_dir / "my_cohort.csv", index=False)
    config = yaml.safe_load((workflow_dir / "config/smoke.yaml").read_text())
    config["run"] = "user"
    config["cohort"] = {"source": "file", "file": {"path": "my_cohort.csv"}}
    (workflow_dir / "user.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workflow_dir, "results/user/data/cohort.parquet", "--configfile", "user.yaml")
    data = workflow_dir / "results/user/data"
    cohort = pd.read_parquet(data / "cohort.parquet")
    dropped = int((frame.index % 50 == 0).sum())
    pd.testing.assert_frame_equal(cohort, small_cohort[frame.index % 50 != 0].reset_index(drop=True))
    flow = pd.read_csv(data / "cohort_flow.csv")
    assert flow["removed"].tolist() == [0, dropped, 0]
