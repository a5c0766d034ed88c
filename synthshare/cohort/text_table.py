"""Structure checks of a delimited text file (CSV, tab-separated) before pandas reads it.

pandas accepts, without a word, several things that change the data: a duplicated
header name becomes ``name.1`` (and ``usecols`` reads the first copy), a row with more
fields than the header is accepted under ``usecols``, a row with fewer fields is padded
with blanks, and a NUL byte ends the field it is in. :func:`check_text_table` refuses
each with one :class:`~synthshare.errors.InputError` line naming the file and the line,
in one streaming pass (pyarrow's CSV parser, bounded memory).
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from synthshare.errors import InputError

BLOCK_BYTES = 1 << 20
"""Bytes per block of the streaming passes."""


def check_text_table(path: str | Path, delimiter: str = ",", what: str = "CSV", min_rows: int = 0) -> list[str]:
    """Check ``path``'s structure; return its header names as written.

    Raises:
        InputError: empty file, a NUL byte, a header name given twice, a row whose
            number of fields differs from the header's, fewer than ``min_rows`` rows.
    """
    path = Path(path)
    check_no_nul(path)
    names = header_names(path, delimiter, what)
    check_unique(path, names)
    rows = count_rows(path, delimiter, what)
    if rows < min_rows:
        raise InputError(f"{path}: {rows} data rows; expected at least {min_rows} below the header")
    return names


def check_no_nul(path: Path) -> None:
    """The file is UTF-8 text without a NUL byte (never part of a value; pandas would end
    the field there), checked block by block."""
    lines = 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(BLOCK_BYTES)
            at = block.find(b"\x00")
            if at >= 0:
                line = lines + block.count(b"\n", 0, at) + 1
                raise InputError(f"{path}: line {line}: NUL byte in a field; expected UTF-8 text (is this a UTF-16 or binary file?)")
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                start = max(error.start, 0)
                line = lines + block.count(b"\n", 0, min(start, len(block))) + 1
                raise InputError(f"{path}: line {line}: bytes that are not UTF-8 ({error.reason}); "
                                 "expected UTF-8 text (re-save the file as UTF-8)") from None
            if not block:
                return
            lines += block.count(b"\n")


def header_names(path: Path, delimiter: str = ",", what: str = "CSV") -> list[str]:
    """The header as written (a leading UTF-8 byte-order mark dropped)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle, delimiter=delimiter))
    except StopIteration:
        raise InputError(f"{path}: cannot parse as {what}: the file is empty; expected a header line") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: cannot parse as {what}: the header is not UTF-8 ({error.reason} at byte {error.start})") from None
    except (csv.Error, OSError) as error:
        raise InputError(f"{path}: cannot parse as {what}: {' '.join(str(error).split())}") from None


def check_unique(path: Path, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header (columns {seen[name]} and {position}); "
                             "expected each column once")
        seen[name] = position


def row_count_error(path: Path, row: pa_csv.InvalidRow, what: str = "CSV") -> InputError:
    line = f"line {row.number}" if row.number is not None else "a line"
    return InputError(f"{path}: cannot parse as {what}: {line} has {row.actual_columns} fields, the header "
                      f"{row.expected_columns}; every row must have one field per column (quote values that contain the separator)")


def count_rows(path: Path, delimiter: str = ",", what: str = "CSV") -> int:
    """Data rows of ``path``; every row must have as many fields as the header."""
    invalid: list[pa_csv.InvalidRow] = []

    def refuse(row: pa_csv.InvalidRow) -> str:
        invalid.append(row)
        return "error"

    rows = 0
    try:
        reader = pa_csv.open_csv(
            path,
            # one thread: invalid rows carry their line number
            read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=refuse),
            convert_options=pa_csv.ConvertOptions(include_columns=[]),
        )
        for batch in reader:
            rows += batch.num_rows
    except (pa.ArrowInvalid, OSError) as error:
        if invalid:
            raise row_count_error(path, invalid[0], what) from None
        raise InputError(f"{path}: cannot parse as {what}: {' '.join(str(error).split())}") from None
    return rows
