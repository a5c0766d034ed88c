"""The analysis files: streaming stacking, the rule scripts run standalone, the reference fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthshare.glm import fit_poisson
from synthshare.glm.design import most_frequent_levels
from synthshare.analysis.tables import INTERVALS_SCHEMA, LL_SCHEMA, SELECTION_SCHEMA, stack_files, write_table
from synthshare.errors import InputError
from synthshare.paths import ANALYSIS_JOB_FILES
from tests.script_jobs import load_script, script_job
from tests.test_glm_fit import random_frame

REPO = Path(__file__).resolve().parents[1]


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


def _scenario_job(root, paths, parties, tmp_path, orders, draws, local=None):
    local = local or {p: root / f"local_{p}.parquet" for p in parties}
    return script_job(
        input={"local": [local[p] for p in parties], "synthetic": [root / f"synthetic_{p}.parquet" for p in parties],
               "test": paths["test"]},
        params={"scenario": "centres", "parties": list(parties), "epsilon": 1.0, "fraction": 0.1, "seed": 123,
                "settings": {"orders": orders, "order_seed": 15, "draws": draws, "draw_seed": 16, "real_sharing": True,
                             "selection": {"enabled": True, "heldout_fraction": 0.5, "seed": 17}}},
        output={name: tmp_path / f"{name}.parquet" for name in ANALYSIS_JOB_FILES}, log=tmp_path / "log.txt")


def test_analyse_scenario_script_main(job_files, tmp_path):
    root, paths = job_files
    load_script("analyse_scenario").main(_scenario_job(root, paths, "ABC", tmp_path, orders=2, draws=4))
    ll = pd.read_parquet(tmp_path / "ll.parquet")
    # per party: 2 variants x S at step 0, R x (M − 1) x S synthetic and as many real, S selected
    assert len(ll) == 3 * (2 * 4 + 2 * 2 * 4 * 2 + 4)
    assert np.isfinite(ll["ll"]).all()
    intervals = pd.read_parquet(tmp_path / "intervals.parquet")
    assert list(intervals.columns) == INTERVALS_SCHEMA.names and set(intervals["source"]) == {"local", "synthetic", "real", "selected"}
    selection = pd.read_parquet(tmp_path / "selection.parquet")
    assert list(selection.columns) == SELECTION_SCHEMA.names and set(selection["party"]) <= set("ABC")
    # the collector stacks every job's files, the new tables too
    outputs = {name: tmp_path / "run" / f"{name}.parquet" for name in ANALYSIS_JOB_FILES}
    inputs = {name: [tmp_path / f"{name}.parquet"] * 2 for name in ANALYSIS_JOB_FILES}
    load_script("collect_analysis").main(script_job(inputs, {}, outputs, tmp_path / "collect.txt"))
    for name in ANALYSIS_JOB_FILES:
        stacked = pd.read_parquet(outputs[name])
        once = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(stacked, pd.concat([once, once], ignore_index=True))


def test_analyse_scenario_script_reports_bad_input_in_one_line(job_files, tmp_path, capfd):
    root, paths = job_files
    broken = tmp_path / "local_B.parquet"
    pd.read_parquet(root / "local_B.parquet").assign(sex="unknown").to_parquet(broken)
    job = _scenario_job(root, paths, "AB", tmp_path, orders=1, draws=2, local={"A": root / "local_A.parquet", "B": broken})
    with pytest.raises(SystemExit) as stopped:
        load_script("analyse_scenario").main(job)
    assert stopped.value.code == 1
    assert f"{broken}: column 'sex' has value 'unknown'; expected one of ['Female', 'Male']" in capfd.readouterr().err
    assert not (tmp_path / "ll.parquet").exists()


def test_fit_reference_script(job_files, tmp_path):
    root, paths = job_files
    train = pd.concat([pd.read_parquet(root / f"local_{p}.parquet") for p in "ABC"], ignore_index=True)
    train_path = tmp_path / "train.parquet"
    train.to_parquet(train_path)
    outputs = {"reference": tmp_path / "reference.parquet", "coef": tmp_path / "reference_coef.parquet"}
    inputs = {"train": train_path, "test": paths["test"], "skew_eval": []}
    load_script("fit_reference").main(script_job(inputs, {}, outputs, tmp_path / "log.txt"))
    reference = pd.read_parquet(outputs["reference"])
    assert list(reference["evaluation"]) == ["global_test"]
    coef = pd.read_parquet(outputs["coef"])
    fit = fit_poisson(train, most_frequent_levels(train))
    np.testing.assert_allclose(coef["coef"].to_numpy(), fit.coef.to_numpy())
    # ll at the MLE on the test set, per record, from the cell table
    assert -1.0 < reference["ll"].iloc[0] < 0.0
