"""The data stage under Snakemake on config/smoke.yaml: outputs, contract, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import copy_workflow, run_snakemake


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs = []
    for name in ("a", "b"):
        workdir = copy_workflow(tmp_path_factory.mktemp(name))
        run_snakemake(workdir, "data", "--configfile", "config/smoke.yaml")
        runs.append(workdir)
    return runs


def test_centres_csv_contract(two_runs):
    centres = pd.read_csv(two_runs[0] / "results/smoke/data/centres.csv")
    assert list(centres.columns) == ["party", "records", "train", "test", "white_british_share", "positive_share"]
    assert list(centres["party"]) == ["Barts", "Croydon", "Leeds", "Newcastle", "Oxford", "Sheffield"]
    assert (centres["train"] + centres["test"] == centres["records"]).all()
    assert centres["white_british_share"].between(0, 1).all()


def test_no_record_in_train_and_test(two_runs):
    data = two_runs[0] / "results/smoke/data"
    train, test = pd.read_parquet(data / "train.parquet"), pd.read_parquet(data / "test.parquet")
    # Records have no id column; the cohort rows are unique enough only jointly, so
    # compare against the cohort's row multiset instead.
    cohort = pd.read_parquet(data / "cohort.parquet")
    cohort = cohort[cohort["assessment_center"].isin(set(train["assessment_center"]))]
    assert len(train) + len(test) == len(cohort)
    merged = pd.concat([train, test]).value_counts().sort_index()
    pd.testing.assert_series_equal(merged, cohort.value_counts().sort_index())


def test_same_config_same_bytes(two_runs):
    a, b = (_digests(run / "results/smoke/data") for run in two_runs)
    assert a.keys() == b.keys() and len(a) > 10
    assert a == b
