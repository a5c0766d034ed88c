"""The coverage product: the estimand of every interval row, and the orders it assumes.

The coverage figure recomputes each interval's partners from the analysis settings
(``synthshare.analysis.job.order_rng``); these tests hold it to the analysis' own rows:
the real-data yardstick's interval at (order r, step j) must be the GLM fit of the
party's data ∪ the recomputed first j partners' real data, and each row's estimand the
projection of exactly that mixture of centres."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthshare.analysis.estimand import centre_tables, mixture_estimands, population_estimand
from synthshare.analysis.experiment import random_orders
from synthshare.analysis.job import JobKey, order_rng, run_scenario
from synthshare.analysis.settings import AnalysisSettings, SelectionSettings
from synthshare.analysis.tables import INTERVALS_SCHEMA
from synthshare.cohort.simulated import simulate_cohort
from synthshare.figures.coverage import coverage_tables, distinct_replicates, with_estimands
from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design, most_frequent_levels
from synthshare.glm.fit import fit_poisson
from synthshare.variables import CENTRE_COLUMN

PARTIES = ["Barts", "Leeds", "Newcastle", "Oxford"]
ORDERS, ORDER_SEED = 3, 15


@pytest.fixture(scope="module")
def job(cohort_parameters):
    cohort = simulate_cohort(cohort_parameters, scale=0.1, seed=20240716)
    frame = cohort.frame
    local = {p: frame[frame[CENTRE_COLUMN] == p].reset_index(drop=True) for p in PARTIES}
    rng = np.random.default_rng(5)
    # stand-ins for synthetic sets (K = 2 bootstrap resamples): only the real yardstick is checked here
    synthetic = {p: np.stack([count_cells(local[p].sample(len(local[p]), replace=True, random_state=int(rng.integers(1 << 30))))
                              for _ in range(2)]) for p in PARTIES}
    settings = AnalysisSettings(orders=ORDERS, order_seed=ORDER_SEED, draws=3, draw_seed=16, real_sharing=True,
                                selection=SelectionSettings(False, 0.5, 17))
    tables = run_scenario(local, synthetic, frame.sample(2000, random_state=1), JobKey("centres", 1.0, 0.1, 123), settings)
    intervals = pd.concat([t.cast(INTERVALS_SCHEMA).to_pandas() for t in tables.intervals], ignore_index=True)
    return cohort, local, intervals


def test_real_rows_follow_the_recomputed_orders(job):
    _, local, intervals = job
    real = intervals[intervals["source"] == "real"]
    for index, party in enumerate(PARTIES):
        partners = [p for p in PARTIES if p != party]
        orders = random_orders(len(partners), ORDERS, order_rng(ORDER_SEED, party))
        reference = most_frequent_levels(local[party])
        for order, step in [(0, 1), (1, 2), (2, 3)]:
            data = pd.concat([local[party], *[local[partners[i]] for i in orders[order, :step]]], ignore_index=True)
            fit = fit_poisson(data, reference)
            rows = real[(real["party"] == party) & (real["order"] == order) & (real["step"] == step)].set_index("term")
            np.testing.assert_allclose(rows.loc[fit.coef.index, "mean"], fit.coef.to_numpy(), rtol=1e-6, atol=1e-8)


def test_each_row_gets_the_projection_of_its_mixture(job, cohort_parameters):
    cohort, local, intervals = job
    frame = with_estimands(intervals, local, cohort_parameters, cohort.truth, ORDERS, ORDER_SEED)
    assert len(frame) == len(intervals)
    present = frame[np.isfinite(frame["var"])]
    assert present["estimand"].notna().all()
    unit = centre_tables(cohort_parameters, cohort.truth, PARTIES)
    sizes = np.array([len(local[p]) for p in PARTIES], float)
    party = "Leeds"
    design = Design.build(most_frequent_levels(local[party]))
    # step 0: the centre's own population (its slopes are the simulator's: one centre is log-linear)
    own = np.zeros((1, len(PARTIES)))
    own[0, PARTIES.index(party)] = 1.0
    expected0 = dict(zip(design.names, mixture_estimands(unit, own, design)[0]))
    step0 = frame[(frame["party"] == party) & (frame["step"] == 0)]
    np.testing.assert_allclose(step0["estimand"].to_numpy(), [expected0[t] for t in step0["term"]], atol=1e-10)
    truth = population_estimand(cohort_parameters, cohort.truth, centres=[party])
    assert expected0["sex[Male]"] == pytest.approx(truth["sex[Male]"], abs=1e-9) or design.reference_levels()["sex"] != "Female"
    # order 1, step 2: own + the first two partners of that order, by their records
    partners = [i for i in range(len(PARTIES)) if PARTIES[i] != party]
    orders = random_orders(len(partners), ORDERS, order_rng(ORDER_SEED, party))
    weights = np.zeros((1, len(PARTIES)))
    weights[0, PARTIES.index(party)] = sizes[PARTIES.index(party)]
    for i in orders[1, :2]:
        weights[0, partners[i]] = sizes[partners[i]]
    expected = dict(zip(design.names, mixture_estimands(unit, weights, design)[0]))
    got = frame[(frame["party"] == party) & (frame["order"] == 1) & (frame["step"] == 2) & (frame["source"] == "real")]
    np.testing.assert_allclose(got["estimand"].to_numpy(), [expected[t] for t in got["term"]], atol=1e-10)


def test_coverage_tables_count_the_yardstick_once(job, cohort_parameters):
    cohort, local, intervals = job
    doubled = pd.concat([intervals, intervals.assign(seed=124)], ignore_index=True)
    frame = with_estimands(doubled, local, cohort_parameters, cohort.truth, ORDERS, ORDER_SEED)
    kept = distinct_replicates(frame)
    # every party's distinct sets of first-j partners over the orders
    sets = {}
    for index, party in enumerate(PARTIES):
        orders = random_orders(len(PARTIES) - 1, ORDERS, order_rng(ORDER_SEED, party))
        for step in range(1, len(PARTIES)):
            sets[(party, step)] = len({frozenset(o[:step].tolist()) for o in orders})
    per_party, overall = coverage_tables(frame)
    for step in range(1, len(PARTIES)):
        distinct = sum(sets[(p, step)] for p in PARTIES)
        at = overall[(overall["term"] == "Intercept") & (overall["step"] == step)].set_index("source")["intervals"]
        assert int(at["real"]) == distinct and int(at["synthetic"]) == 2 * distinct  # two seeds, real once
    # at the last step every party's real-data sharing holds all centres: one data set
    last = overall[(overall["term"] == "Intercept") & (overall["step"] == len(PARTIES) - 1)].set_index("source")
    assert int(last.loc["real", "intervals"]) == len(PARTIES) and int(last.loc["real", "data_sets"]) == 1
    assert int(last.loc["synthetic", "data_sets"]) == 2 * len(PARTIES)
    assert sets[(PARTIES[0], len(PARTIES) - 1)] == 1
    assert len(kept[(kept["source"] == "local") & (kept["term"] == "Intercept")]) == len(PARTIES)
    assert ((overall["coverage_low"] <= overall["coverage"]) & (overall["coverage"] <= overall["coverage_high"])).all()
