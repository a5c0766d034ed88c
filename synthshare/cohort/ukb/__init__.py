"""The study's cohort from UK Biobank's raw files (``cohort.source: ukb_raw``).

Inputs are what an approved UK Biobank application receives: the main data set
converted by ``ukbconv <file> csv``, the COVID-19 test result files and the withdrawals
file. :func:`build_cohort` applies the study's preprocessing (exclusions, derived
variables, complete cases, tested participants) and returns the cohort and a flow
table of every exclusion. The field -> variable and code -> value rules are data:
``synthshare/cohort/ukb/ukb_fields.csv`` and ``synthshare/cohort/ukb/ukb_codings.csv``. The user
guide is ``docs/ukb_biobank.md``.
"""

from synthshare.cohort.ukb.cohort import (
    FLOW_COLUMNS,
    CohortSelection,
    build_cohort,
    select_cohort,
)

__all__ = ["FLOW_COLUMNS", "CohortSelection", "build_cohort", "select_cohort"]
