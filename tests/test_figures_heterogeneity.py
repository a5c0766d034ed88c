"""The heterogeneity sweep's figures, tables and claims on fabricated ll files (nothing here is a result)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthshare.figures.heterogeneity import GAIN_COLUMNS, heterogeneity_figures
from synthshare.grid import centre_parties
from tests.figures_fixture import fabricate_ll
from tests.test_figures_catalogue import load

SDS = (0.0, 0.2)


def _level(config: dict, drop: bool, selected_gain: float, seed: int) -> pd.DataFrame:
    """A level's ll rows: the fixture's, plus selected-partners rows (2 partners, as good as
    step 1 plus ``selected_gain``); with ``drop`` every party's curve peaks at step 1 and
    then falls below it."""
    frame = fabricate_ll(config, draws=20, orders=3, seed=seed)
    centres = frame[(frame["scenario"] == "centres") & (frame["variant"] == "full")]
    if drop:
        rng = np.random.default_rng(seed)
        for _, group in centres.groupby(["party", "epsilon", "fraction"]):
            peak = group.loc[group["step"] == 1, "ll"].mean()
            later = group.index[group["step"] >= 2]
            frame.loc[later, "ll"] = peak - 0.02 * (frame.loc[later, "step"] - 1) + 0.005 * rng.standard_normal(len(later))
    selected = []
    for _, group in centres.groupby(["party", "epsilon", "fraction", "seed"]):
        # the selected model: as good as step 1 of the orders, shifted by selected_gain
        first = group[group["step"] == 1]
        selected.append(first.assign(variant="selected", step=2, order=-1, ll=first["ll"].to_numpy() + selected_gain))
    return pd.concat([frame, *selected], ignore_index=True)


@pytest.fixture
def sweep(tmp_path):
    config = load("smoke.yaml")
    paths = []
    for index, (sd, drop) in enumerate(zip(SDS, (False, True))):
        path = tmp_path / f"ll_{index}.parquet"
        _level(config, drop, selected_gain=0.0, seed=index).to_parquet(path)
        paths.append(path)
    settings = {"sds": list(SDS), "parties": centre_parties(config), "epsilon": config["reference"]["epsilon"],
                "fraction": config["reference"]["fraction"]}
    return paths, settings


def test_tables_figures_and_claims(sweep):
    paths, settings = sweep
    rendered = heterogeneity_figures(paths, settings)
    assert set(rendered.figures) == {"heterogeneity_gain", "heterogeneity_steps"}
    table = rendered.tables["heterogeneity_gain"]
    assert list(table.columns) == list(GAIN_COLUMNS)
    assert len(table) == len(SDS) * len(settings["parties"])
    assert (table["selected_partners"] == 2).all()
    flat, dropping = table[table["sd"] == 0.0], table[table["sd"] == 0.2]
    # the fixture's curves rise to the last step; the "drop" level peaks at step 1
    assert (flat["peak_step"] > 1).all() and (dropping["peak_step"] == 1).all()
    assert (dropping["drop_pvalue"] < 0.05).all()
    claims = rendered.tables["heterogeneity_claims"].set_index(["claim_id", "sd"], drop=False)
    assert claims.loc[("selection_avoids_drop", 0.0), "holds"] is None  # nothing drops at SD 0
    avoided = claims.loc[("selection_avoids_drop", 0.2)]
    # the selected model (as good as the peak) beats the fallen last step for every party
    assert avoided["holds"] and avoided["value"] == 1.0
    shrink = rendered.tables["heterogeneity_claims"].query("claim_id == 'gain_shrinks_with_heterogeneity'").iloc[0]
    assert shrink["value"] < 0 and shrink["holds"]
    for figure in rendered.figures.values():
        figure.clear()


def test_selection_that_does_not_help_is_reported(tmp_path, sweep):
    paths, settings = sweep
    config = load("smoke.yaml")
    _level(config, True, selected_gain=-0.5, seed=1).to_parquet(paths[1])
    claims = heterogeneity_figures(paths, settings).tables["heterogeneity_claims"]
    row = claims[(claims["claim_id"] == "selection_avoids_drop") & (claims["sd"] == 0.2)].iloc[0]
    assert row["value"] == 0.0 and not row["holds"]
    assert np.isfinite(row["pvalue"])
