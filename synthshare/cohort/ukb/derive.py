"""Turn parsed UK Biobank field values into the study's variables.

Each function maps one (or two) fields to one variable, elementwise, with ``None``
for a missing value; which values count as missing is the complete-case rule of the
study (Prediger et al. 2024 following Niedzwiedz et al. 2020): blanks, codes mapped to
an empty value in ``ukb_codings.csv`` (such as -1 "Do not know", -3 "Prefer not to
answer"), ages under 40, BMI outside [0, inf).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.cohort.ukb.tables import Coding
from synthshare.variables import FEATURE_LEVELS

BMI_EDGES = (0.0, 18.5, 25.0, 30.0, np.inf)
BMI_LABELS = ("Underweight", "Normal weight", "Overweight", "Obese")
HOUSEHOLD_CAP = 4
"""Household sizes of 4 or more form one category (the authors' preprocessing)."""


def decode(codes: pd.Series, coding: Coding) -> pd.Series:
    """Study values of data-coding codes: (n,) Int64 -> (n,) object, None where missing.

    Every non-blank code must be one the coding defines (the extract reader checks).
    """
    keys = np.array(sorted(coding.values), dtype=np.int64)
    values = np.array([coding.values[int(k)] for k in keys], dtype=object)
    numbers = codes.to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(numbers)
    out = np.full(len(numbers), None, dtype=object)
    out[present] = values[np.searchsorted(keys, numbers[present].astype(np.int64))]
    return pd.Series(out, index=codes.index, dtype=object)


def age_groups(age: pd.Series) -> pd.Series:
    """Age at recruitment (years) -> the age_group level whose [low, high) holds it.

    The bins are read from the level strings of ``FEATURE_LEVELS["age_group"]``
    ("[40, 45)" ... "[70, 200)"), so ages under 40 have no level and are missing.
    """
    years = age.to_numpy(dtype=float, na_value=np.nan)
    out = np.full(len(years), None, dtype=object)
    for level in FEATURE_LEVELS["age_group"]:
        low, high = _interval(level)
        out[(years >= low) & (years < high)] = level
    return pd.Series(out, index=age.index, dtype=object)


def highest_qualification(codes: pd.DataFrame, coding: Coding) -> pd.Series:
    """Education: the smallest code over the arrays of field 6138, then decoded.

    Coding 100305 orders qualifications from 1 (degree) down to 6, so the minimum over
    the answers is the highest qualification; -7 "None of the above" and -3 "Prefer not
    to answer" are exclusive answers (the touchscreen allowed no other choice with them),
    so the minimum never mixes them with a qualification. All arrays blank -> missing.
    """
    smallest = codes.astype("float64").min(axis=1, skipna=True)
    return decode(smallest.astype("Int64"), coding)


def deprivation_quartiles(townsend: pd.Series, population: np.ndarray, source: str) -> pd.Series:
    """Townsend deprivation index -> quartile level "1st" (least deprived) ... "4th".

    Quartile edges are the 25/50/75 % quantiles (linear interpolation) of the non-blank
    values of ``population``; each bin is right-closed and the lowest includes its
    minimum (``pandas.qcut``, as the authors' code). Rows outside ``population`` or with
    a blank index get None.

    Args:
        townsend: (n,) float, NaN = blank.
        population: (n,) bool, the records the quartiles are taken over.
        source: the file and column, for the message when quartiles cannot be formed.
    """
    values = townsend[population & townsend.notna().to_numpy()]
    out = pd.Series(np.full(len(townsend), None, dtype=object), index=townsend.index, dtype=object)
    if values.empty:
        return out
    try:
        binned = pd.qcut(values, 4, labels=list(FEATURE_LEVELS["deprivation"]))
    except ValueError:
        raise InputError(
            f"{source}: cannot form Townsend quartiles from {len(values)} value(s) with "
            f"{values.nunique()} distinct; expected a cohort-sized extract"
        ) from None
    out.loc[binned.index] = binned.astype(object).to_numpy()
    return out


def bmi_categories(bmi: pd.Series) -> pd.Series:
    """BMI (kg/m²) -> Underweight (< 18.5), Normal weight, Overweight (25–30), Obese (≥ 30)."""
    binned = pd.cut(bmi, list(BMI_EDGES), right=False, labels=list(BMI_LABELS))
    return binned.astype(object).where(binned.notna(), None)


def alcohol_status(frequency: pd.Series, former: pd.Series) -> pd.Series:
    """Alcohol intake frequency (1558), with never-drinkers split by former drinking (3731).

    Missing only when the frequency is missing: UK Biobank asked 3731 of never-drinkers
    only, and a never-drinker with 3731 blank or "Prefer not to answer" counts as
    "Never" (the authors' rule).
    """
    out = frequency.astype(object).copy()
    out[(frequency == "Never") & (former == "Former drinker")] = "Never (former drinker)"
    return out


def household_sizes(size: pd.Series) -> pd.Series:
    """Number in household -> "0" ... "3", "4+"; declared special codes (negative) -> None."""
    counts = size.to_numpy(dtype=float, na_value=np.nan)
    out = np.full(len(counts), None, dtype=object)
    valid = counts >= 0
    out[valid] = [f"{int(c)}" if c < HOUSEHOLD_CAP else f"{HOUSEHOLD_CAP}+" for c in counts[valid]]
    return pd.Series(out, index=size.index, dtype=object)


def _interval(level: str) -> tuple[float, float]:
    match = re.fullmatch(r"\[(\d+), (\d+)\)", level)
    if match is None:
        raise ValueError(f"age_group level {level!r} is not of the form '[low, high)'")
    return float(match.group(1)), float(match.group(2))
