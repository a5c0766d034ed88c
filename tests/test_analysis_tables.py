"""The analysis files: streaming stacking, the rule scripts run standalone, the reference fit."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthshare.analysis import fit_poisson
from synthshare.analysis.design import most_frequent_levels
from synthshare.analysis.tables import LL_SCHEMA, stack_files, write_table
from synthshare.errors import InputError
from tests.test_analysis_poisson import random_frame

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ll_part(party: str, rows: int) -> pa.Table:
    return pa.table({
        "scenario": ["centres"] * rows, "party": [party] * rows, "epsilon": [1.0] * rows, "fraction": [0.1] * rows,
        "skew": [float("nan")] * rows, "seed": [123] * rows, "variant": ["full"] * rows,
        "order": np.zeros(rows, np.int32), "step": np.ones(rows, np.int32), "draw": np.arange(rows, dtype=np.int32),
        "ll": np.linspace(-1, 0, rows),
    }, schema=LL_SCHEMA)


def test_stacking_streams_in_bounded_batches(tmp_path):
    paths = []
    for i, rows in enumerate([1000, 2500, 10]):
        path = tmp_path / f"job{i}" / "ll.parquet"
        write_table([ll_part(f"p{i}", rows)], LL_SCHEMA, path)
        paths.append(path)
    target = tmp_path / "ll.parquet"
    assert stack_files(paths, LL_SCHEMA, target, batch_rows=700) == 3510
    stacked = pd.read_parquet(target)
    expected = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(stacked, expected)
    assert pq.ParquetFile(target).metadata.num_row_groups >= 6  # never one batch for everything


def test_stacking_names_a_file_with_missing_columns(tmp_path):
    bad = tmp_path / "bad.parquet"
    pq.write_table(ll_part("x", 3).drop(["variant"]), bad)
    with pytest.raises(InputError, match=r"bad\.parquet: missing column\(s\) \['variant'\]"):
        stack_files([bad], LL_SCHEMA, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@pytest.fixture(scope="module")
def job_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    rng = np.random.default_rng(0)
    paths = {"test": root / "test.parquet"}
    random_frame(rng, 600).to_parquet(paths["test"])
    for party in ("A", "B", "C"):
        random_frame(rng, 200).assign(assessment_center=party).to_parquet(root / f"local_{party}.parquet")
        sets = pd.concat([random_frame(rng, 200).assign(set=k) for k in range(3)], ignore_index=True)
        sets.assign(assessment_center=party).to_parquet(root / f"synthetic_{party}.parquet")
    return root, paths


def test_analyse_scenario_script_runs_standalone(job_files, tmp_path):
    root, paths = job_files
    command = [
        sys.executable, str(REPO / "scripts" / "analyse_scenario.py"), "--parties", "A", "B", "C",
        "--local", *[str(root / f"local_{p}.parquet") for p in "ABC"],
        "--synthetic", *[str(root / f"synthetic_{p}.parquet") for p in "ABC"],
        "--test", str(paths["test"]), "--epsilon", "1", "--fraction", "0.1", "--seed", "123",
        "--orders", "2", "--draws", "4", "--out-ll", str(tmp_path / "ll.parquet"), "--out-coef", str(tmp_path / "coef.parquet"),
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    ll = pd.read_parquet(tmp_path / "ll.parquet")
    assert len(ll) == 3 * (2 * 4 + 2 * 2 * 4)
    assert np.isfinite(ll["ll"]).all()


def test_analyse_scenario_script_reports_bad_input_in_one_line(job_files, tmp_path):
    root, paths = job_files
    broken = tmp_path / "local_B.parquet"
    pd.read_parquet(root / "local_B.parquet").assign(sex="unknown").to_parquet(broken)
    command = [
        sys.executable, str(REPO / "scripts" / "analyse_scenario.py"), "--parties", "A", "B",
        "--local", str(root / "local_A.parquet"), str(broken),
        "--synthetic", str(root / "synthetic_A.parquet"), str(root / "synthetic_B.parquet"),
        "--test", str(paths["test"]), "--epsilon", "1", "--fraction", "0.1", "--seed", "1",
        "--orders", "1", "--draws", "2", "--out-ll", str(tmp_path / "ll.parquet"), "--out-coef", str(tmp_path / "coef.parquet"),
    ]
    process = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert process.returncode == 1
    assert f"{broken}: column 'sex' has value 'unknown'; expected one of ['Female', 'Male']" in process.stderr
    assert not (tmp_path / "ll.parquet").exists()


def test_fit_reference_script(job_files, tmp_path):
    root, paths = job_files
    train = pd.concat([pd.read_parquet(root / f"local_{p}.parquet") for p in "ABC"], ignore_index=True)
    train_path = tmp_path / "train.parquet"
    train.to_parquet(train_path)
    outputs = SimpleNamespace(reference=tmp_path / "reference.parquet", coef=tmp_path / "reference_coef.parquet")
    inputs = {"train": str(train_path), "test": str(paths["test"])}
    load_script("fit_reference").main(_Named(inputs), outputs, str(tmp_path / "log.txt"))
    reference = pd.read_parquet(outputs.reference)
    assert list(reference["evaluation"]) == ["global_test"]
    coef = pd.read_parquet(outputs.coef)
    fit = fit_poisson(train, most_frequent_levels(train))
    np.testing.assert_allclose(coef["coef"].to_numpy(), fit.coef.to_numpy())
    # ll at the MLE on the test set, per record, from the cell table
    assert -1.0 < reference["ll"].iloc[0] < 0.0


class _Named(dict):
    """Snakemake's named input list: attribute access plus keys()."""

    def __getattr__(self, name):
        return self[name]
