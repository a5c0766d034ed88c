"""Read the main data set as UK Biobank's ``ukbconv <file> csv`` writes it.

Format (UK Biobank's conversion tool): comma-separated, every value double-quoted, a
missing value is ``""``, the header is ``"eid","<field>-<instance>.<array>",...``,
categorical fields hold their numeric data-coding codes, dates are ``yyyy-mm-dd``.
Only the columns named in the fields table are read, so an extract with thousands of
other fields costs little more than one with just these.

Every value is checked while parsing: a non-numeric code, a code its data-coding does
not define, an unreadable number or date stops with one line naming the file, the
column, the line number and the value (line 1 is the header). The participant's eid is
never printed except when the eid itself is the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.cohort.text_table import check_text_table
from synthshare.cohort.ukb.tables import Coding, FieldSpec, Tables

_CODINGS_TABLE = "synthshare/cohort/ukb/ukb_codings.csv"


@dataclass(frozen=True)
class Extract:
    """The parsed columns of a main extract; row i is the file's line i + 2."""

    path: Path
    eid: np.ndarray
    """(n,) int64 participant ids, in file order."""
    columns: dict[str, pd.Series]
    """ukbconv column name -> parsed values: Int64 codes (categorical, integer), float64
    (continuous, NaN = blank) or datetime64 (date, NaT = blank); index 0..n-1."""
    field_columns: dict[str, list[str]]
    """variable -> the ukbconv columns it reads (several for ``arrays = all``)."""

    def values(self, variable: str) -> pd.Series:
        """The single column of a one-array variable."""
        (name,) = self.field_columns[variable]
        return self.columns[name]

    def array_frame(self, variable: str) -> pd.DataFrame:
        """(n, n_arrays) Int64 codes of a multi-array variable, one column per array."""
        return pd.DataFrame({name: self.columns[name] for name in self.field_columns[variable]})


def read_extract(path: str | Path, tables: Tables) -> Extract:
    """Read and check the fields of ``tables`` from a ukbconv CSV.

    Raises:
        InputError: missing file or column, duplicate or non-integer eid, or a value
            that does not parse as its field's type or coding.
    """
    path = Path(path)
    header = _read_header(path)
    if "eid" not in header:
        raise InputError(f"{path}: no 'eid' column in the header; expected a main data set written by `ukbconv <file> csv`")
    field_columns: dict[str, list[str]] = {}
    for variable, spec in tables.fields.items():
        found = spec.columns_in(header)
        first = spec.column(0 if spec.arrays is None else spec.arrays)
        if not found or (spec.arrays is None and first not in found):
            raise InputError(
                f"{path}: missing column {first!r} ({spec.describe()}, instance {spec.instance}); "
                "add the field to the data set you convert with ukbconv"
            )
        field_columns[variable] = found
    wanted = ["eid"] + [c for names in field_columns.values() for c in names]
    try:
        # Text only: codes must be checked as written, and "" is UK Biobank's blank.
        raw = pd.read_csv(path, usecols=wanted, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as error:
        raise InputError(f"{path}: cannot read as a ukbconv CSV: {_one_line(error)}") from None
    eid = _parse_eid(path, raw["eid"])
    columns: dict[str, pd.Series] = {}
    for variable, names in field_columns.items():
        spec = tables.fields[variable]
        coding = tables.codings.get(spec.coding) if spec.coding is not None else None
        for name in names:
            columns[name] = _parse_column(path, name, raw[name], spec, coding)
    return Extract(path=path, eid=eid, columns=columns, field_columns=field_columns)


def _read_header(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"{path}: main data set not found (config cohort.ukb_raw.main)")
    # NUL bytes, duplicated columns, ragged rows, no participant: pandas would accept them
    check_text_table(path, ",", "a ukbconv CSV", min_rows=1)
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0, dtype=str).columns]
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise InputError(f"{path}: cannot read the header as a ukbconv CSV: {_one_line(error)}") from None


def _parse_eid(path: Path, raw: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(raw.where(raw != ""), errors="coerce")
    bad = numbers.isna() | (numbers % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: column 'eid', line {row + 2}: value {raw.iloc[row]!r} is not an integer participant id")
    eid = numbers.to_numpy().astype(np.int64)
    duplicated = pd.Series(eid).duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise InputError(f"{path}: column 'eid', line {row + 2}: value {raw.iloc[row]!r} appears twice; expected one row per participant")
    return eid


def _parse_column(path: Path, name: str, raw: pd.Series, spec: FieldSpec, coding: Coding | None) -> pd.Series:
    text = raw.str.strip()
    blank = (text == "").to_numpy()
    where = f"{path}: column {name!r}"
    if spec.value_type == "date":
        dates = pd.to_datetime(text.where(~blank), format="%Y-%m-%d", errors="coerce")
        _stop_at_first(where, raw, ~blank & dates.isna().to_numpy(), f"is not a date; expected yyyy-mm-dd ({spec.describe()})")
        return dates.reset_index(drop=True)
    numbers = pd.to_numeric(text.where(~blank), errors="coerce")
    unreadable = ~blank & ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if spec.value_type == "continuous":
        _stop_at_first(where, raw, unreadable, f"is not a number ({spec.describe()})")
        return numbers.astype(float).reset_index(drop=True)
    what = "code" if spec.value_type == "categorical" else "integer"
    expectation = f"an integer {what} ({spec.describe()}" + (f", UK Biobank data-coding {coding.number})" if coding else ")")
    not_integer = unreadable | (~blank & (numbers.fillna(0) % 1 != 0).to_numpy())
    _stop_at_first(where, raw, not_integer, f"is not a numeric {what}; expected {expectation}")
    codes = numbers.astype("Int64").reset_index(drop=True)
    known = set(coding.known_codes()) if coding else set()
    if spec.value_type == "categorical":
        unknown = ~blank & ~codes.isin(known).to_numpy(dtype=bool, na_value=False)
    else:
        # An integer field's negative values are special codes; only declared ones are allowed.
        negative = (codes < 0).to_numpy(dtype=bool, na_value=False)
        unknown = negative & ~codes.isin(known).to_numpy(dtype=bool, na_value=False)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        if coding is None:
            raise InputError(f"{where}, line {row + 2}: value {raw.iloc[row]!r} is negative; expected a count or age ({spec.describe()})")
        raise InputError(
            f"{where}, line {row + 2}: code {int(codes.iloc[row])} is not in UK Biobank data-coding {coding.number} "
            f"of {spec.describe()}, which has codes {coding.known_codes()}; if UK Biobank has added it, add a row to {_CODINGS_TABLE}"
        )
    return codes


def _stop_at_first(where: str, raw: pd.Series, bad: np.ndarray, message: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}, line {row + 2}: value {raw.iloc[row]!r} {message}")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
