"""Read a user's processed cohort (CSV or Parquet) and check it against the study's variables.

What is accepted and what stops the run is listed in docs/input.md ("What is accepted");
in short:

- the file must have every column of :data:`synthshare.variables.COLUMNS`, each once
  (a duplicated header name stops: pandas would silently rename the second copy);
  extra columns are ignored; a CSV is UTF-8 (a leading byte-order mark is allowed),
  comma-separated, every row with as many fields as the header, no NUL byte;
- every cell is text: the exact level strings of method.md after stripping surrounding
  spaces; only an empty cell, ``NA`` (and a Parquet null) mean missing: ``None``,
  ``nan``, ``NULL`` and the like are values, and a value that is not a level stops;
- rows with a missing value are dropped and counted (complete cases, as in the study),
  but if more than ``max_incomplete_share`` of the rows are incomplete the run stops,
  naming the column with the most missing cells and how they were spelt;
- every configured centre keeps at least ``min_records`` complete records (enough for a
  train and a test record); records of a centre that is not a party stop.

Memory: the file is read in batches of :data:`BATCH_ROWS` rows (pyarrow's streaming
CSV reader / Parquet row-group batches) and only the level codes (1 byte per cell) are
kept; the result shares one Python string object per level (8 bytes per cell, not one
string object per cell). Measured on 1,000,000 rows: 263 MB peak RSS for the read, of
which ~135 MB is the imported libraries (the reader before this one: 409 MB).

Every problem is one :class:`~synthshare.errors.InputError` line naming the file, the
row (1-based data row; a CSV's line number minus one without quoted line breaks), the
column and the value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from synthshare.errors import InputError
from synthshare.cohort.text_table import check_no_nul, check_unique, header_names, row_count_error
from synthshare.variables import CENTRE_COLUMN, COLUMNS, FEATURE_LEVELS, OUTCOME

MISSING_SPELLINGS: tuple[str, ...] = ("", "NA")
"""The only text that means "missing" (after stripping surrounding spaces)."""
TRUE_SPELLINGS: tuple[str, ...] = ("true", "1", "1.0", "yes", "positive")
FALSE_SPELLINGS: tuple[str, ...] = ("false", "0", "0.0", "no", "negative")
"""Outcome spellings, compared case-insensitively."""
BATCH_ROWS = 1 << 17
"""Rows per Parquet batch; CSV blocks are :data:`CSV_BLOCK_BYTES`."""
CSV_BLOCK_BYTES = 1 << 20
"""1 MB blocks: measured 263 MB peak RSS for 1,000,000 rows (8 MB blocks: 409 MB)."""
_SHOWN_SPELLINGS = 3


@dataclass(frozen=True)
class LoadedCohort:
    frame: pd.DataFrame
    """(n_complete, 7): ``COLUMNS``, features as strings, outcome bool."""
    rows_read: int
    rows_incomplete: int
    """Rows dropped because a study column was missing (blank/NA)."""


def read_cohort_file(path: str | Path, centres: list[str] | tuple[str, ...], min_records: int = 1,
                     max_incomplete_share: float = 1.0) -> LoadedCohort:
    """Read and check a processed cohort file.

    Args:
        path: a ``.csv`` or ``.parquet`` file.
        centres: the centres that are parties in this run; records of other centres stop.
        min_records: complete records each centre needs (``split.min_centre_records``).
        max_incomplete_share: the largest share of rows that may be dropped as incomplete
            (config ``cohort.file.max_incomplete_share``).
    """
    path = Path(path)
    categories = {**{f: list(levels) for f, levels in FEATURE_LEVELS.items()}, CENTRE_COLUMN: list(centres)}
    codes: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
    missing_spellings: dict[str, Counter] = {c: Counter() for c in COLUMNS}
    rows = 0
    for batch in _batches(path):
        for column in COLUMNS:
            values = batch.column(batch.schema.get_field_index(column))
            if column == OUTCOME:
                column_codes, spellings = _outcome_codes(path, values, rows)
            else:
                column_codes, spellings = _level_codes(path, column, values, categories[column], rows)
            codes[column].append(column_codes)
            missing_spellings[column].update(spellings)
        rows += batch.num_rows
    joined = {c: np.concatenate(parts) if parts else np.zeros(0, np.int8) for c, parts in codes.items()}
    complete = np.logical_and.reduce([joined[c] >= 0 for c in COLUMNS]) if rows else np.zeros(0, bool)
    incomplete = int(rows - complete.sum())
    _check_incomplete_share(path, rows, incomplete, missing_spellings, max_incomplete_share)
    _check_centre_sizes(path, joined[CENTRE_COLUMN][complete], list(centres), min_records)
    frame = pd.DataFrame({
        column: (joined[column][complete] == 1) if column == OUTCOME
        else np.asarray(categories[column], dtype=object)[joined[column][complete]]
        for column in COLUMNS
    }, copy=False)  # one block per column: no consolidated copy of the object arrays
    return LoadedCohort(frame=frame, rows_read=rows, rows_incomplete=incomplete)


# -- reading ---------------------------------------------------------------------------
def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    """Record batches holding the study columns (each exactly once), in file order."""
    if not path.exists():
        raise InputError(f"{path}: cohort file not found (config cohort.file.path)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_batches(path)
    if suffix == ".parquet":
        return _parquet_batches(path)
    raise InputError(f"{path}: unknown file type {suffix!r}; expected .csv or .parquet")


def _check_header(path: Path, names: list[str]) -> None:
    check_unique(path, names)
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        hint = ""
        if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
            hint = " (the header is one column: is the file separated by ';', tabs or '|' instead of commas?)"
        raise InputError(f"{path}: missing column {missing[0]!r}; expected columns {list(COLUMNS)}{hint}")


def _csv_batches(path: Path) -> Iterator[pa.RecordBatch]:
    check_no_nul(path)
    _check_header(path, header_names(path))
    invalid: list[pa_csv.InvalidRow] = []

    def refuse(row: pa_csv.InvalidRow) -> str:
        invalid.append(row)
        return "error"

    try:
        reader = pa_csv.open_csv(
            path,
            # one thread: rows arrive in file order and invalid rows carry their line number
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=refuse),
            convert_options=pa_csv.ConvertOptions(
                include_columns=list(COLUMNS), column_types={c: pa.string() for c in COLUMNS},
                strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[], check_utf8=True),
        )
    except (pa.ArrowInvalid, OSError) as error:
        raise _parse_error(path, error, invalid) from None
    return _guarded(path, reader, invalid)


def _parse_error(path: Path, error: Exception, invalid: list) -> InputError:
    if invalid:
        return row_count_error(path, invalid[0])
    return InputError(f"{path}: cannot parse as CSV: {_one_line(error)}")


def _guarded(path: Path, reader, invalid: list) -> Iterator[pa.RecordBatch]:
    """Iterate ``reader``; a parse error becomes one line naming the line of the file."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as error:
            raise _parse_error(path, error, invalid) from None
        yield batch


def _parquet_batches(path: Path) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path}: cannot parse as Parquet: {_one_line(error)}") from None
    names = parquet.schema_arrow.names
    _check_header(path, names)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(COLUMNS)):
                yield batch
        except (pa.ArrowInvalid, OSError) as error:
            raise InputError(f"{path}: cannot parse as Parquet: {_one_line(error)}") from None

    return batches()


# -- checking --------------------------------------------------------------------------
def _as_text(path: Path, column: str, values: pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    raise InputError(f"{path}: column {column!r} has type {values.type}; expected text (the level strings of docs/input.md)")


def _level_codes(path: Path, column: str, values: pa.Array, levels: list[str], offset: int) -> tuple[np.ndarray, Counter]:
    """(rows,) int8 codes into ``levels`` (-1 missing) and the spellings of the missing cells."""
    text = _as_text(path, column, values)
    _check_no_nul_cells(path, column, text, offset)
    stripped = pc.utf8_trim_whitespace(text)
    missing = pc.fill_null(pc.is_in(stripped, value_set=pa.array(MISSING_SPELLINGS)), True)
    index = pc.index_in(stripped, value_set=pa.array(levels, pa.string()))
    unknown = pc.and_(pc.invert(missing), pc.is_null(index))
    if pc.any(unknown).as_py():
        row = pc.index(unknown, True).as_py()
        value = text[row].as_py()
        allowed = f"expected one of {levels}" if column != CENTRE_COLUMN else f"expected one of the parties {levels}"
        raise InputError(f"{path}: row {offset + row + 1}, column {column!r}: unknown value {value!r}; {allowed}")
    codes = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int8)
    return codes, _spellings(text, missing)


def _outcome_codes(path: Path, values: pa.Array, offset: int) -> tuple[np.ndarray, Counter]:
    """(rows,) int8: 1 positive, 0 negative, -1 missing; and the missing cells' spellings."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_boolean(values.type):
        missing = pc.is_null(values)
        codes = pc.fill_null(pc.cast(values, pa.int8()), -1).to_numpy(zero_copy_only=False)
        return codes.astype(np.int8), Counter({"(null)": pc.sum(missing).as_py() or 0}) if pc.any(missing).as_py() else Counter()
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        nan = pc.is_nan(values) if pa.types.is_floating(values.type) else pc.is_null(values)
        values = pc.if_else(pc.fill_null(nan, True), pa.scalar(None, pa.string()), pc.cast(values, pa.string()))
    text = _as_text(path, OUTCOME, values)
    _check_no_nul_cells(path, OUTCOME, text, offset)
    stripped = pc.utf8_lower(pc.utf8_trim_whitespace(text))
    missing = pc.fill_null(pc.is_in(stripped, value_set=pa.array([s.lower() for s in MISSING_SPELLINGS])), True)
    spellings = pa.array(TRUE_SPELLINGS + FALSE_SPELLINGS)
    index = pc.index_in(stripped, value_set=spellings)
    unknown = pc.and_(pc.invert(missing), pc.is_null(index))
    if pc.any(unknown).as_py():
        row = pc.index(unknown, True).as_py()
        raise InputError(
            f"{path}: row {offset + row + 1}, column {OUTCOME!r}: unknown value {text[row].as_py()!r}; "
            "expected a boolean (True/False, 1/0, yes/no, positive/negative)")
    position = pc.fill_null(index, -1).to_numpy(zero_copy_only=False)
    codes = np.where(position < 0, -1, np.where(position < len(TRUE_SPELLINGS), 1, 0)).astype(np.int8)
    return codes, _spellings(text, missing)


def _check_no_nul_cells(path: Path, column: str, text: pa.Array, offset: int) -> None:
    has_nul = pc.fill_null(pc.match_substring(text, "\x00"), False)
    if pc.any(has_nul).as_py():
        row = pc.index(has_nul, True).as_py()
        raise InputError(f"{path}: row {offset + row + 1}, column {column!r}: NUL byte in value {text[row].as_py()!r}")


def _spellings(text: pa.Array, missing: pa.Array) -> Counter:
    """How the missing cells were written ('(null)' for a Parquet null)."""
    if not pc.any(missing).as_py():
        return Counter()
    chosen = pc.fill_null(pc.filter(text, missing), "(null)")
    counts = pc.value_counts(chosen)
    return Counter({v.as_py(): c.as_py() for v, c in zip(counts.field("values"), counts.field("counts"))})


def _check_incomplete_share(path: Path, rows: int, incomplete: int, spellings: dict[str, Counter], limit: float) -> None:
    if rows == 0 or incomplete <= limit * rows:
        return
    column = max(COLUMNS, key=lambda c: sum(spellings[c].values()))
    shown = ", ".join(f"{value!r} x{count:,}" for value, count in spellings[column].most_common(_SHOWN_SPELLINGS))
    raise InputError(
        f"{path}: {incomplete:,} of {rows:,} records ({incomplete / rows:.1%}) are incomplete, more than "
        f"cohort.file.max_incomplete_share = {limit} allows; most in column {column!r}: "
        f"{sum(spellings[column].values()):,} missing ({shown}); only an empty cell or 'NA' means missing (docs/input.md)")


def _check_centre_sizes(path: Path, centre_codes: np.ndarray, centres: list[str], min_records: int) -> None:
    counts = np.bincount(centre_codes.astype(np.int64), minlength=len(centres))
    for centre, count in zip(centres, counts):
        if count == 0:
            raise InputError(f"{path}: column {CENTRE_COLUMN!r}: centre {centre!r} has no complete records; "
                             "expected at least one per configured party")
        if count < min_records:
            raise InputError(f"{path}: column {CENTRE_COLUMN!r}: centre {centre!r} has {count} complete record(s); "
                             f"at least {min_records} are needed to split it into a training and a test set")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
