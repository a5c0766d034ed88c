"""The analysis stage under Snakemake on config/smoke.yaml, with stand-in synthetic data.

The generator stage is another module; here its output contract (``synthetic.parquet``:
K stacked sets with a ``set`` column, N_m rows each) is met by resampling each party's
local records, so the analysis rules, scripts and file contracts run end to end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from synthshare.analysis.tables import COEF_SCHEMA, INTERVALS_SCHEMA, LL_SCHEMA, SELECTION_SCHEMA
from tests.conftest import copy_workflow, run_cut_smoke

SNAKEFILE = '''
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/analyse.smk"


rule stand_in_synthetic:
    input:
        local=lambda w: RunPaths(w.run).local(w.scenario, w.fraction, w.party),
    output:
        PATHS.generator_file("synthetic", "{scenario}", "{epsilon}", "{fraction}", "{seed}", "{party}"),
    params:
        sets=config["generator"]["synthetic_sets"],
    run:
        import numpy as np
        import pandas as pd

        frame = pd.read_parquet(input.local)
        rng = np.random.default_rng([int(wildcards.seed), len(frame)])
        parts = [frame.iloc[rng.integers(0, len(frame), len(frame))].assign(set=k) for k in range(params.sets)]
        pd.concat(parts, ignore_index=True).to_parquet(output[0])


rule analysis_only:
    input:
        rules.analysis.input,
    default_target: True
'''


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """config/smoke.yaml cut to one seed and ε (every analysis rule still runs), for speed."""
    def cut(config: dict) -> None:
        config.update(seeds=[123], epsilons=[1.0])
        config["uniform"]["party_counts"] = [2]

    workdir = copy_workflow(tmp_path_factory.mktemp("analysis"))
    run_cut_smoke(workdir, "analysis_test", SNAKEFILE, cut)
    return workdir


@pytest.mark.slow
def test_smoke_workflow_writes_the_tidy_tables(smoke_run):
    config = yaml.safe_load((smoke_run / "config/analysis_test.yaml").read_text())
    analysis = smoke_run / "results/smoke/analysis"
    ll = pq.read_table(analysis / "ll.parquet")
    assert ll.schema.names == LL_SCHEMA.names and ll.schema.field("ll").type == "double"
    frame = ll.to_pandas()
    draws = config["analysis"]["draws"]
    orders = config["analysis"]["orders"]
    centres = frame[frame["scenario"] == "centres"]
    parties = config["parties"]
    # one (ε, f) per setting x seed; per party: 2 variants x S at step 0, R x (M−1) x S after,
    # as many for the real-data yardstick, S for the selected partners
    settings = centres.groupby(["epsilon", "fraction", "seed"]).ngroups
    paper = centres[centres["variant"].isin(["full", "no_ethnicity"])]
    assert len(paper) == settings * len(parties) * (2 * draws + orders * (len(parties) - 1) * draws)
    assert (centres["variant"] == "real").sum() == settings * len(parties) * orders * (len(parties) - 1) * draws
    assert (centres["variant"] == "selected").sum() == settings * len(parties) * draws
    assert (centres.loc[centres["step"] == 0, "order"] == -1).all()
    assert centres["step"].max() == len(parties) - 1
    skew = frame[frame["scenario"] == "skew"]
    assert set(skew["variant"]) == {"full", "no_ethnicity", "selected"}  # no real partner data in the skew job
    assert sorted(skew["skew"].unique()) == sorted(config["skew"]["fractions"])
    assert skew["step"].max() == len(parties) and (skew["party"] == "skewed").all() and (skew["fraction"] == 1.0).all()
    assert set(frame["scenario"]) == {"centres", "skew"} | {f"uniform{m}" for m in config["uniform"]["party_counts"]}
    assert frame["ll"].notna().mean() > 0.99


@pytest.mark.slow
def test_smoke_workflow_reference_and_coefficients(smoke_run):
    analysis = smoke_run / "results/smoke/analysis"
    reference = pd.read_parquet(analysis / "reference.parquet")
    assert list(reference["evaluation"]) == ["global_test", "skew_eval"]
    assert np.isfinite(reference["ll"]).all() and (reference["ll"] < 0).all()
    coef = pd.read_parquet(analysis / "coef.parquet")
    assert list(coef.columns) == COEF_SCHEMA.names
    assert {"Intercept"} <= set(coef["term"]) and set(coef["variant"]) == {"full", "no_ethnicity"}
    intervals = pd.read_parquet(analysis / "intervals.parquet")
    assert list(intervals.columns) == INTERVALS_SCHEMA.names
    assert set(intervals["source"]) == {"local", "synthetic", "real", "selected"}
    assert set(intervals.loc[intervals["scenario"] == "skew", "source"]) == {"local", "synthetic", "selected"}
    selection = pd.read_parquet(analysis / "selection.parquet")
    assert list(selection.columns) == SELECTION_SCHEMA.names and set(selection["scenario"]) == set(intervals["scenario"])
    logs = list((smoke_run / "results/smoke/logs/analyse").glob("centres_*.log"))
    assert logs and all("fits=" in log.read_text() for log in logs)
