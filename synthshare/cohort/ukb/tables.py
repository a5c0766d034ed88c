"""The field and coding tables: which UK Biobank field feeds which variable, and what each code means.

Both tables are data, kept in ``synthshare/data/`` so a reader can check them against
the UK Biobank showcase without reading code:

- ``ukb_fields.csv``: ``variable, field, instance, arrays, value_type, coding, title, role``.
  ``arrays`` is an array index or ``all`` (every ``<field>-<instance>.<array>`` column
  the extract has); ``value_type`` is ``categorical``, ``integer``, ``continuous`` or
  ``date``; ``coding`` is the UK Biobank data-coding number (for an integer field, the
  coding of its special values such as -1 "Do not know").
- ``ukb_codings.csv``: ``coding, code, meaning, value``: UK Biobank's meaning of each
  code and the value the study maps it to; an empty value means "missing".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

VALUE_TYPES = ("categorical", "integer", "continuous", "date")

REQUIRED_VARIABLES = (
    "sex", "assessment_center", "age", "ethnicity", "townsend", "education", "date_of_death",
    "country_of_birth", "longstanding_illness", "overall_health", "smoking", "bmi",
    "alcohol_frequency", "former_drinker", "employment", "housing", "urban_rural", "household_size",
)
"""Variables the preprocessing reads; the fields table must define each exactly once."""


@dataclass(frozen=True)
class FieldSpec:
    """One UK Biobank field as the study reads it."""

    variable: str
    field: int
    instance: int
    arrays: int | None
    """The array index, or None for every array of the instance."""
    value_type: str
    coding: int | None
    title: str
    role: str

    def column(self, array: int) -> str:
        """The ukbconv CSV column of this field at ``array``: ``"<field>-<instance>.<array>"``."""
        return f"{self.field}-{self.instance}.{array}"

    def columns_in(self, header: list[str]) -> list[str]:
        """Columns of ``header`` this field reads, in array order (may be empty)."""
        if self.arrays is not None:
            name = self.column(self.arrays)
            return [name] if name in header else []
        pattern = re.compile(rf"^{self.field}-{self.instance}\.(\d+)$")
        found = [(int(m.group(1)), name) for name in header if (m := pattern.match(name))]
        return [name for _, name in sorted(found)]

    def describe(self) -> str:
        """Short human name, e.g. ``field 31 "Sex"``."""
        return f'field {self.field} "{self.title}"'


@dataclass(frozen=True)
class Coding:
    """One UK Biobank data-coding: code -> meaning and code -> study value (None = missing)."""

    number: int
    meanings: dict[int, str]
    values: dict[int, str | None]

    def known_codes(self) -> list[int]:
        return sorted(self.meanings)


@dataclass(frozen=True)
class Tables:
    fields: dict[str, FieldSpec]
    """variable -> its field."""
    codings: dict[int, Coding]
    """data-coding number -> coding."""

    def coding_of(self, variable: str) -> Coding:
        spec = self.fields[variable]
        if spec.coding is None:
            raise KeyError(f"{variable} has no data-coding")
        return self.codings[spec.coding]


@lru_cache(maxsize=None)
def load_tables(fields_path: str | None = None, codings_path: str | None = None) -> Tables:
    """Read and check the two tables (the packaged ones unless paths are given).

    Raises:
        ValueError: naming the table, the row and what is wrong, when a table is
            malformed (a packaging error, not user input).
    """
    fields_file = Path(fields_path) if fields_path else _packaged("ukb_fields.csv")
    codings_file = Path(codings_path) if codings_path else _packaged("ukb_codings.csv")
    fields = _read_fields(fields_file)
    codings = _read_codings(codings_file)
    for spec in fields.values():
        if spec.coding is not None and spec.coding not in codings:
            raise ValueError(f"{fields_file}: {spec.variable}: data-coding {spec.coding} has no rows in {codings_file}")
        if spec.value_type == "categorical" and spec.coding is None:
            raise ValueError(f"{fields_file}: {spec.variable}: a categorical field needs a data-coding")
    return Tables(fields=fields, codings=codings)


def _packaged(name: str) -> Path:
    return Path(str(resources.files("synthshare.cohort.ukb") / name))


def _read_fields(path: Path) -> dict[str, FieldSpec]:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    fields: dict[str, FieldSpec] = {}
    for row_number, row in enumerate(table.to_dict("records"), start=2):
        where = f"{path}: line {row_number}"
        if row["value_type"] not in VALUE_TYPES:
            raise ValueError(f"{where}: value_type {row['value_type']!r}; expected one of {VALUE_TYPES}")
        if row["variable"] in fields:
            raise ValueError(f"{where}: variable {row['variable']!r} defined twice")
        fields[row["variable"]] = FieldSpec(
            variable=row["variable"],
            field=int(row["field"]),
            instance=int(row["instance"]),
            arrays=None if row["arrays"] == "all" else int(row["arrays"]),
            value_type=row["value_type"],
            coding=int(row["coding"]) if row["coding"] else None,
            title=row["title"],
            role=row["role"],
        )
    missing = [v for v in REQUIRED_VARIABLES if v not in fields]
    if missing:
        raise ValueError(f"{path}: no row for variable {missing[0]!r}; the preprocessing needs {list(REQUIRED_VARIABLES)}")
    return fields


def _read_codings(path: Path) -> dict[int, Coding]:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    meanings: dict[int, dict[int, str]] = {}
    values: dict[int, dict[int, str | None]] = {}
    for row_number, row in enumerate(table.to_dict("records"), start=2):
        number, code = int(row["coding"]), int(row["code"])
        if code in meanings.setdefault(number, {}):
            raise ValueError(f"{path}: line {row_number}: code {code} of data-coding {number} listed twice")
        meanings[number][code] = row["meaning"]
        values.setdefault(number, {})[code] = row["value"] or None
    return {n: Coding(number=n, meanings=meanings[n], values=values[n]) for n in meanings}
