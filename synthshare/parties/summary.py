"""The per-party data summary the report and users rely on (``data/centres.csv``)."""

from __future__ import annotations

import pandas as pd

from synthshare.variables import CENTRE_COLUMN, OUTCOME

SUMMARY_COLUMNS = ("party", "records", "train", "test", "white_british_share", "positive_share")


def centre_summary(cohort: pd.DataFrame, split_report: dict, parties: list[str]) -> pd.DataFrame:
    """One row per party: records, train/test sizes and the shares over all its records.

    Returns:
        (len(parties), 6) frame with ``SUMMARY_COLUMNS``; shares in [0, 1].
    """
    grouped = cohort.groupby(CENTRE_COLUMN, sort=False)
    white = grouped["ethnicity"].agg(lambda s: float((s == "White British").mean()))
    positive = grouped[OUTCOME].mean()
    rows = [
        {
            "party": party,
            "records": split_report[party]["records"],
            "train": split_report[party]["train"],
            "test": split_report[party]["test"],
            "white_british_share": round(float(white[party]), 6),
            "positive_share": round(float(positive[party]), 6),
        }
        for party in parties
    ]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
