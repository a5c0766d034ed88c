"""The study's cohort from a raw UK Biobank extract, with the flow table of every exclusion.

Order of the steps (each removes records from what the previous left; a record that
fails several is counted once, at the first):

1. ``records_in``: every row of the main extract.
2. ``withdrawn``: eids in the withdrawals file (eids not in the extract are ignored).
3. ``pilot_centre``: field 54 = 10003, the Stockport pilot.
4. ``died``: date of death (field 40000) on or before 2018-01-31.
5. Deprivation quartiles are formed here, over every record left (method.md: "Townsend
   quartiles over the whole cohort", before any complete-case filter or the
   restriction to the tested).
6. ``missing_<variable>``: complete cases, one step per variable in
   :data:`COMPLETE_CASE_STEPS` order: the five features, the centre, then the study's
   other covariates (country of birth, long-standing illness, overall health, smoking,
   BMI, alcohol, employment, housing tenure, urban/rural, household size).
7. ``untested``: no COVID-19 test dated before the cutoff (default 2021-03-15).
8. ``centre_not_in_study``: centres other than the 16 English ones and the configured
   extra centres (Scottish and Welsh centres unless listed).
9. ``records_out``: one row per study centre (and extra centre), the records it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.cohort.ukb import derive
from synthshare.cohort.ukb.covid_tests import read_test_outcomes
from synthshare.cohort.ukb.extract import Extract, read_extract
from synthshare.cohort.ukb.tables import Tables, load_tables
from synthshare.cohort.ukb.withdrawals import read_withdrawals
from synthshare.variables import CENTRE_COLUMN, CENTRES, COLUMNS, FEATURES, OUTCOME

PILOT_CENTRE_CODE = 10003
"""Field 54, coding 10: Stockport (pilot), excluded as in the study."""
DEATH_CUTOFF = pd.Timestamp("2018-01-31")
"""Participants who died on or before this date are excluded (field 40000)."""
DEFAULT_TEST_CUTOFF = "2021-03-15"

FLOW_COLUMNS = ("step", "description", "fields", "centre", "removed", "remaining")
"""Columns of the flow table (docs/ukb_biobank.md, "The flow table")."""

COMPLETE_CASE_STEPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("age_group", ("age",), "Age at recruitment missing or under 40"),
    ("sex", ("sex",), "Sex missing"),
    ("ethnicity", ("ethnicity",), "Ethnic background missing, do not know or prefer not to answer"),
    ("deprivation", ("townsend",), "Townsend deprivation index missing"),
    ("education", ("education",), "Qualifications missing or prefer not to answer"),
    (CENTRE_COLUMN, ("assessment_center",), "Assessment centre missing"),
    ("country_of_birth", ("country_of_birth",), "Country of birth missing, do not know or prefer not to answer"),
    ("longstanding_illness", ("longstanding_illness",), "Long-standing illness missing, do not know or prefer not to answer"),
    ("overall_health", ("overall_health",), "Overall health rating missing, do not know or prefer not to answer"),
    ("smoking", ("smoking",), "Smoking status missing or prefer not to answer"),
    ("bmi", ("bmi",), "BMI missing"),
    ("alcohol", ("alcohol_frequency",), "Alcohol intake frequency missing or prefer not to answer"),
    ("employment", ("employment",), "Current employment status missing or prefer not to answer"),
    ("housing", ("housing",), "Housing tenure missing, prefer not to answer or undeclared code -1"),
    ("urban_rural", ("urban_rural",), "Urban/rural missing or postcode not linkable"),
    ("household_size", ("household_size",), "Number in household missing, do not know or prefer not to answer"),
)
"""(derived variable, the fields-table variables it comes from, flow-table description),
in flow-table order. What counts as missing is in ``ukb_codings.csv`` (empty value)."""

_COVARIATES = tuple(name for name, _, _ in COMPLETE_CASE_STEPS if name not in COLUMNS)


@dataclass(frozen=True)
class CohortSelection:
    """Everything :func:`select_cohort` decided, for the cohort file, the flow table and checks."""

    participants: pd.DataFrame
    """One row per extract record, sorted by eid: ``eid``, the study variables (None
    where missing), ``covid_test_result`` (True/False, None if untested) and
    ``removed_at`` (the flow step that removed it, None if kept)."""
    cohort: pd.DataFrame
    """The kept records sorted by eid: exactly ``COLUMNS``, eid dropped."""
    flow: pd.DataFrame
    """``FLOW_COLUMNS``; ``removed`` is empty on records_in and records_out rows."""


def build_cohort(
    main: str | Path,
    covid_tests: list[str | Path],
    withdrawals: str | Path | None,
    test_cutoff: str = DEFAULT_TEST_CUTOFF,
    extra_centres: list[str] | tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The study's cohort and its flow table from UK Biobank's raw files.

    Args:
        main: the main data set converted by ``ukbconv <file> csv``.
        covid_tests: COVID-19 test result files (England's; Scotland's/Wales' if given).
        withdrawals: the withdrawals file (one eid per line), or None.
        test_cutoff: ``YYYY-MM-DD``; only tests with ``specdate`` strictly before it count.
        extra_centres: Scottish/Welsh centres (coding 10 names) kept besides the 16.

    Returns:
        (cohort, flow): cohort (n, 7) with ``COLUMNS`` in order, features as the exact
        level strings, centre names, ``covid_test_result`` bool, one row per
        participant sorted by eid (eid dropped); flow with ``FLOW_COLUMNS``.
    """
    selection = select_cohort(main, covid_tests, withdrawals, test_cutoff, extra_centres)
    return selection.cohort, selection.flow


def select_cohort(
    main: str | Path,
    covid_tests: list[str | Path],
    withdrawals: str | Path | None,
    test_cutoff: str = DEFAULT_TEST_CUTOFF,
    extra_centres: list[str] | tuple[str, ...] = (),
    tables: Tables | None = None,
) -> CohortSelection:
    """:func:`build_cohort` keeping each record's derived variables and removal step."""
    tables = tables or load_tables()
    cutoff = _parse_cutoff(test_cutoff)
    extra = _check_extra_centres(list(extra_centres), tables)
    extract = read_extract(main, tables)
    withdrawn_eids = read_withdrawals(withdrawals) if withdrawals else np.empty(0, dtype=np.int64)
    outcomes = read_test_outcomes(list(covid_tests), cutoff)

    n = len(extract.eid)
    flow = _Flow(n)
    centre_codes = extract.values("assessment_center").to_numpy(dtype=float, na_value=np.nan)
    death = extract.values("date_of_death")

    withdrawn_note = "listed in the withdrawals file" if withdrawals else "no withdrawals file given"
    flow.remove("withdrawn", f"Withdrew consent ({withdrawn_note})", "", np.isin(extract.eid, withdrawn_eids))
    flow.remove("pilot_centre", f"Stockport pilot centre (code {PILOT_CENTRE_CODE})", _field(tables, "assessment_center"), centre_codes == PILOT_CENTRE_CODE)
    flow.remove("died", f"Died on or before {DEATH_CUTOFF.date()}", _field(tables, "date_of_death"), (death <= DEATH_CUTOFF).to_numpy(dtype=bool, na_value=False))

    variables = _derive_variables(extract, tables, population=flow.kept.copy())
    for name, sources, description in COMPLETE_CASE_STEPS:
        fields = ";".join(_field(tables, s) for s in sources)
        flow.remove(f"missing_{name}", description, fields, variables[name].isna().to_numpy())

    position = pd.Index(outcomes["eid"]).get_indexer(extract.eid)
    tested = position >= 0
    flow.remove("untested", f"No SARS-CoV-2 test dated before {cutoff.date()}", "", ~tested)
    result = np.full(n, None, dtype=object)
    result[tested] = outcomes["positive"].to_numpy()[position[tested]]
    variables[OUTCOME] = result

    allowed = set(CENTRES) | set(extra)
    flow.remove(
        "centre_not_in_study", "Assessment centre not in the study (Scottish/Welsh centres unless configured)",
        _field(tables, "assessment_center"), ~variables[CENTRE_COLUMN].isin(allowed).to_numpy(),
    )

    participants = pd.concat([pd.DataFrame({"eid": extract.eid}), variables], axis=1)
    participants["removed_at"] = flow.removed_at
    participants = participants.sort_values("eid", kind="stable").reset_index(drop=True)
    kept = participants.loc[participants["removed_at"].isna(), list(COLUMNS)].reset_index(drop=True)
    cohort = _as_cohort(kept)
    per_centre = cohort[CENTRE_COLUMN].value_counts()
    for centre in (*CENTRES, *extra):
        flow.centre_row(centre, int(per_centre.get(centre, 0)))
    return CohortSelection(participants=participants, cohort=cohort, flow=flow.table())


def _derive_variables(extract: Extract, tables: Tables, population: np.ndarray) -> pd.DataFrame:
    """(n, …) study variables of every record; deprivation quartiles over ``population``."""
    def decoded(variable: str) -> pd.Series:
        return derive.decode(extract.values(variable), tables.coding_of(variable))

    townsend_column = extract.field_columns["townsend"][0]
    frame = pd.DataFrame({
        "age_group": derive.age_groups(extract.values("age")),
        "sex": decoded("sex"),
        "ethnicity": decoded("ethnicity"),
        "deprivation": derive.deprivation_quartiles(
            extract.values("townsend"), population, f"{extract.path}: column {townsend_column!r}"),
        "education": derive.highest_qualification(extract.array_frame("education"), tables.coding_of("education")),
        CENTRE_COLUMN: decoded("assessment_center"),
        "country_of_birth": decoded("country_of_birth"),
        "longstanding_illness": decoded("longstanding_illness"),
        "overall_health": decoded("overall_health"),
        "smoking": decoded("smoking"),
        "bmi": derive.bmi_categories(extract.values("bmi")),
        "alcohol": derive.alcohol_status(decoded("alcohol_frequency"), decoded("former_drinker")),
        "employment": decoded("employment"),
        "housing": decoded("housing"),
        "urban_rural": decoded("urban_rural"),
        "household_size": derive.household_sizes(extract.values("household_size")),
    })
    return frame[[*FEATURES, CENTRE_COLUMN, *_COVARIATES]]


def _as_cohort(kept: pd.DataFrame) -> pd.DataFrame:
    cohort = kept.copy()
    for column in (*FEATURES, CENTRE_COLUMN):
        cohort[column] = cohort[column].astype(str).astype(object)
    cohort[OUTCOME] = cohort[OUTCOME].astype(bool)
    return cohort[list(COLUMNS)]


class _Flow:
    """Sequential exclusions: which records are left, and the table rows as they happen."""

    def __init__(self, n: int) -> None:
        self.kept = np.ones(n, dtype=bool)
        self.removed_at = np.full(n, None, dtype=object)
        self.rows: list[dict] = [_row("records_in", "Records in the main extract", "", None, None, n)]

    def remove(self, step: str, description: str, fields: str, fails: np.ndarray) -> None:
        removed = self.kept & np.asarray(fails, dtype=bool)
        self.removed_at[removed] = step
        self.kept &= ~removed
        self.rows.append(_row(step, description, fields, None, int(removed.sum()), int(self.kept.sum())))

    def centre_row(self, centre: str, records: int) -> None:
        self.rows.append(_row("records_out", "Records out", "", centre, None, records))

    def table(self) -> pd.DataFrame:
        table = pd.DataFrame(self.rows, columns=list(FLOW_COLUMNS))
        for column in ("removed", "remaining"):
            table[column] = table[column].astype("Int64")
        return table


def _row(step: str, description: str, fields: str, centre: str | None, removed: int | None, remaining: int) -> dict:
    return {"step": step, "description": description, "fields": fields, "centre": centre, "removed": removed, "remaining": remaining}


def _field(tables: Tables, variable: str) -> str:
    return str(tables.fields[variable].field)


def _parse_cutoff(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(pd.to_datetime(str(text), format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise InputError(f"cohort.ukb_raw.test_cutoff = {text!r}: not a date; expected YYYY-MM-DD (the study's 2021-03-15)") from None


def _check_extra_centres(extra: list[str], tables: Tables) -> list[str]:
    coding = tables.coding_of("assessment_center")
    allowed = sorted(v for c, v in coding.values.items() if v and v not in CENTRES and c != PILOT_CENTRE_CODE)
    for name in extra:
        if name not in allowed:
            raise InputError(
                f"cohort.ukb_raw.extra_centres: {name!r} is not a UK Biobank assessment centre outside the "
                f"study's 16; expected one of {allowed}"
            )
    if len(set(extra)) != len(extra):
        raise InputError(f"cohort.ukb_raw.extra_centres = {extra}: values must be unique")
    return extra
