"""Read UK Biobank's COVID-19 test result files and reduce them to one outcome per participant.

Format (UK Biobank's COVID-19 data, one file per nation): tab-separated with a header;
England's file has ``eid specdate spectype laboratory origin result ...``, Scotland's
and Wales' share at least ``eid``, ``specdate`` and ``result``, which are the only
columns read. ``specdate`` is ``dd/mm/yyyy``; ``result`` is 1 for a positive and 0 for
a negative test. A participant may have many tests, in one file or several.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.cohort.text_table import check_text_table

TEST_COLUMNS = ("eid", "specdate", "result")


def read_test_outcomes(paths: list[str | Path], cutoff: pd.Timestamp) -> pd.DataFrame:
    """Any-positive outcome over each participant's tests dated strictly before ``cutoff``.

    Returns:
        (n_tested, 2) frame ``eid`` (int64, sorted), ``positive`` (bool): one row per
        participant with at least one test before the cutoff (method.md: "at least one
        SARS-CoV-2 test before 2021-03-15"; outcome = any positive test).

    Raises:
        InputError: a missing file or column, a non-integer eid, an unreadable date or
            a result other than 0/1, naming the file, column, line and value.
    """
    if not paths:
        raise InputError("cohort.ukb_raw.covid_tests: no COVID-19 test result file given; expected at least England's")
    tests = pd.concat([_read_one(Path(p)) for p in paths], ignore_index=True)
    tests = tests.loc[tests["specdate"] < cutoff]
    outcome = tests.groupby("eid", sort=True)["positive"].any()
    return pd.DataFrame({"eid": outcome.index.to_numpy(dtype=np.int64), "positive": outcome.to_numpy(dtype=bool)})


def _read_one(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: COVID-19 test result file not found (config cohort.ukb_raw.covid_tests)")
    # NUL bytes, duplicated columns, ragged rows: pandas would accept them
    check_text_table(path, "\t", "a tab-separated COVID-19 test result file")
    try:
        header = [str(c) for c in pd.read_csv(path, sep="\t", nrows=0, dtype=str).columns]
        missing = [c for c in TEST_COLUMNS if c not in header]
        if missing:
            raise InputError(
                f"{path}: missing column {missing[0]!r}; expected a tab-separated COVID-19 test result file "
                f"with header columns {list(TEST_COLUMNS)} (found {header[:8]})"
            )
        raw = pd.read_csv(path, sep="\t", usecols=list(TEST_COLUMNS), dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: cannot read as a tab-separated COVID-19 test result file: {_one_line(error)}") from None
    text = {c: raw[c].str.strip() for c in TEST_COLUMNS}

    eid = pd.to_numeric(text["eid"].where(text["eid"] != ""), errors="coerce")
    _stop_at_first(path, "eid", raw["eid"], (eid.isna() | (eid % 1 != 0)).to_numpy(), "is not an integer participant id")

    dates = pd.to_datetime(text["specdate"], format="%d/%m/%Y", errors="coerce")
    _stop_at_first(path, "specdate", raw["specdate"], dates.isna().to_numpy(), "is not a date; expected dd/mm/yyyy")

    result = text["result"]
    _stop_at_first(path, "result", raw["result"], ~result.isin(["0", "1"]).to_numpy(), "is not a test result; expected 1 (positive) or 0 (negative)")
    return pd.DataFrame({"eid": eid.to_numpy().astype(np.int64), "specdate": dates, "positive": (result == "1").to_numpy()})


def _stop_at_first(path: Path, column: str, raw: pd.Series, bad: np.ndarray, message: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: column {column!r}, line {row + 2}: value {raw.iloc[row]!r} {message}")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
