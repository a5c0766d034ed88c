"""The analysis stage's readers: records and stacked synthetic sets from Parquet files."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from synthshare.errors import InputError
from synthshare.glm.cells import count_sets
from synthshare.variables import CENTRE_COLUMN, FEATURES, OUTCOME


def read_records(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a records Parquet file with the string columns as categoricals.

    Synthetic data at paper scale is millions of rows; dictionary-decoded strings keep
    it at a few bytes a value instead of a Python string each.

    Raises:
        InputError: the file cannot be read as Parquet.
    """
    try:
        schema = pq.read_schema(path)
        strings = [c for c in (*FEATURES, CENTRE_COLUMN) if c in schema.names and (columns is None or c in columns)]
        table = pq.read_table(path, columns=columns, read_dictionary=strings)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read Parquet: {error}") from None
    return table.to_pandas()


def read_set_counts(path: str | os.PathLike) -> np.ndarray:
    """Count tables (K, *CELL_SHAPE, 2) int32 of a stacked synthetic file; K = max(set) + 1."""
    frame = read_records(path, columns=[*FEATURES, OUTCOME, "set"] if "set" in pq.read_schema(path).names else None)
    if "set" not in frame.columns:
        raise InputError(f"{path}: column 'set' missing; expected K stacked synthetic sets with a 'set' column")
    if len(frame) == 0:
        raise InputError(f"{path}: no records; expected K stacked synthetic sets")
    sets = int(frame["set"].max()) + 1
    return count_sets(frame, sets, source=str(path)).astype(np.int32)
