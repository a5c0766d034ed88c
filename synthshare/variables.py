"""The study's variables: the five categorical features, their levels and the outcome.

Level strings are exact (method.md, "Columns and levels"); the first listed level of
each feature is its reference level in the generator's reference coding.
"""

from __future__ import annotations

FEATURE_LEVELS: dict[str, tuple[str, ...]] = {
    "age_group": ("[40, 45)", "[45, 50)", "[50, 55)", "[55, 60)", "[60, 65)", "[65, 70)", "[70, 200)"),
    "sex": ("Female", "Male"),
    "ethnicity": (
        "White British", "White Irish", "White Other", "Mixed",
        "South Asian", "Black", "Chinese", "Other",
    ),
    "deprivation": ("1st", "2nd", "3rd", "4th"),
    "education": (
        "College or University degree", "A levels/AS levels or equivalent",
        "O levels/GCSEs/CSEs", "Others", "None of the above",
    ),
}
"""Feature name -> its levels, in the order of method.md (first = reference)."""

FEATURES: tuple[str, ...] = tuple(FEATURE_LEVELS)
"""The five features, in table order: age_group, sex, ethnicity, deprivation, education."""

CENTRE_COLUMN = "assessment_center"
OUTCOME = "covid_test_result"
COLUMNS: tuple[str, ...] = FEATURES + (CENTRE_COLUMN, OUTCOME)
"""Columns of a cohort table, in order."""

CENTRES: tuple[str, ...] = (
    "Barts", "Birmingham", "Bristol", "Bury", "Croydon", "Hounslow", "Leeds", "Liverpool",
    "Manchester", "Middlesborough", "Newcastle", "Nottingham", "Oxford", "Reading",
    "Sheffield", "Stoke",
)
"""The 16 English assessment centres of the study (exact spelling)."""

EXTRA_CENTRES: tuple[str, ...] = ("Cardiff", "Edinburgh", "Glasgow", "Swansea", "Wrexham")
"""Scottish and Welsh UK Biobank centres: not in the study, allowed as parties when a
user's data has them (``cohort.ukb_raw.extra_centres``)."""

ALL_CENTRES: tuple[str, ...] = CENTRES + EXTRA_CENTRES
"""Every centre name a config may name; a centre's position here fixes its random stream."""

CELL_SHAPE: tuple[int, ...] = tuple(len(v) for v in FEATURE_LEVELS.values())
"""(7, 2, 8, 4, 5): one cell per combination of feature levels, 2,240 in all."""


def level_index(feature: str, level: str) -> int:
    """Position of ``level`` within ``feature``'s levels (raises KeyError naming both)."""
    try:
        return FEATURE_LEVELS[feature].index(level)
    except ValueError:
        raise KeyError(f"{feature}: unknown level {level!r}; expected one of {list(FEATURE_LEVELS[feature])}") from None
