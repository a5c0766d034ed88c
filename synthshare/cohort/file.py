"""Read a user's processed cohort (CSV or Parquet) and check it against the study's variables.

The file must have the columns of :data:`synthshare.variables.COLUMNS` (extra columns
are ignored) with the exact level strings of method.md. Rows with a missing value in
any of those columns are dropped and counted (complete cases, as in the study). A value
outside the known levels, a missing column, an unreadable file or a configured centre
without records stops with an :class:`~synthshare.errors.InputError` naming the file,
the row, the column and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthshare.errors import InputError
from synthshare.variables import CENTRE_COLUMN, COLUMNS, FEATURE_LEVELS, OUTCOME

_TRUE = {"true", "1", "yes", "positive"}
_FALSE = {"false", "0", "no", "negative"}


@dataclass(frozen=True)
class LoadedCohort:
    frame: pd.DataFrame
    """(n_complete, 7): ``COLUMNS``, features as strings, outcome bool."""
    rows_read: int
    rows_incomplete: int
    """Rows dropped because a study column was missing (blank/NA)."""


def read_cohort_file(path: str | Path, centres: list[str] | tuple[str, ...]) -> LoadedCohort:
    """Read and check a processed cohort file.

    Args:
        path: a ``.csv`` or ``.parquet`` file.
        centres: the centres that are parties in this run; each must keep at least one
            complete record, and records of other centres are an error unless listed.

    Row numbers in messages are 1-based data rows (a CSV's line number minus one).
    """
    path = Path(path)
    raw = _read_table(path)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r}; expected columns {list(COLUMNS)}")
    frame = raw[list(COLUMNS)].copy()
    for column in COLUMNS:
        if column != OUTCOME and not pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v.strip() if isinstance(v, str) else v)
            frame.loc[frame[column] == "", column] = None
    complete = frame.notna().all(axis=1)
    frame = frame.loc[complete]

    for feature, levels in FEATURE_LEVELS.items():
        _check_known(path, frame, feature, set(levels), list(levels))
    _check_known(path, frame, CENTRE_COLUMN, set(centres), list(centres))
    frame[OUTCOME] = _as_bool(path, frame[OUTCOME])
    for column in COLUMNS:
        if column != OUTCOME:
            frame[column] = frame[column].astype(str).astype(object)

    present = set(frame[CENTRE_COLUMN])
    for centre in centres:
        if centre not in present:
            raise InputError(f"{path}: column {CENTRE_COLUMN!r}: centre {centre!r} has no complete records; expected at least one per configured party")
    return LoadedCohort(frame=frame.reset_index(drop=True), rows_read=len(raw), rows_incomplete=int((~complete).sum()))


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: cohort file not found (config cohort.file.path)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            # Everything as text: levels like "1st" or "0" must not become numbers.
            return pd.read_csv(path, dtype=str, keep_default_na=True, na_values=[""], skipinitialspace=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as error:
        raise InputError(f"{path}: cannot parse as {suffix[1:].upper()}: {_one_line(error)}") from None
    raise InputError(f"{path}: unknown file type {suffix!r}; expected .csv or .parquet")


def _check_known(path: Path, frame: pd.DataFrame, column: str, known: set, expected: list) -> None:
    unknown = ~frame[column].isin(known)
    if unknown.any():
        row = frame.index[unknown.to_numpy()][0]
        value = frame.at[row, column]
        raise InputError(f"{path}: row {row + 1}, column {column!r}: unknown value {value!r}; expected one of {expected}")


def _as_bool(path: Path, values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)

    def convert(value):
        text = str(value).strip().lower()
        if text in {"1.0"}:
            return True
        if text in {"0.0"}:
            return False
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return None

    converted = values.map(convert)
    bad = converted.isna()
    if bad.any():
        row = values.index[bad.to_numpy()][0]
        raise InputError(
            f"{path}: row {row + 1}, column {OUTCOME!r}: unknown value {values.at[row]!r}; "
            "expected a boolean (True/False, 1/0, yes/no, positive/negative)"
        )
    return converted.astype(bool)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
