"""The party experiment: statsmodels' loop reproduced draw by draw, order invariance, seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from synthshare.glm.cells import count_cells, count_sets
from synthshare.glm.design import most_frequent_levels
from synthshare.analysis.experiment import PartyExperiment, random_orders
from tests.oracle import statsmodels_party_experiment
from synthshare.analysis.job import JobKey, run_scenario
from synthshare.analysis.settings import AnalysisSettings, SelectionSettings
from synthshare.analysis.tables import LL_SCHEMA
from tests.test_glm_fit import random_frame


@pytest.fixture(scope="module")
def toy():
    """A party with 250 local records and 3 other parties with K = 3 synthetic sets of 150."""
    rng = np.random.default_rng(42)
    local = random_frame(rng, 250)
    synthetic = [[random_frame(rng, 150, base_rate=0.25) for _ in range(3)] for _ in range(3)]
    test = random_frame(rng, 500)
    counts = np.stack([np.stack([count_cells(s) for s in sets]) for sets in synthetic])
    return local, synthetic, counts, test


def test_engine_reproduces_the_statsmodels_loop(toy):
    local, synthetic, counts, test = toy
    orders = random_orders(3, 2, np.random.default_rng(1))
    reference = most_frequent_levels(local)
    result = PartyExperiment(count_cells(test), draws=8).run(
        count_cells(local), counts, orders, reference, np.random.default_rng(5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local_ll, combined = statsmodels_party_experiment(
            local, synthetic, orders, reference, test, 8, np.random.default_rng(5))
    for variant in ("full", "no_ethnicity"):
        np.testing.assert_allclose(result.local[variant], local_ll[variant], rtol=1e-6)
    np.testing.assert_allclose(result.combined, combined, rtol=1e-6)


def test_last_step_does_not_depend_on_the_order(toy):
    local, _, counts, test = toy
    orders = random_orders(3, 6, np.random.default_rng(2))
    assert len({tuple(o) for o in orders}) > 1
    result = PartyExperiment(count_cells(test), draws=4).run(
        count_cells(local), counts, orders, most_frequent_levels(local), np.random.default_rng(0))
    np.testing.assert_allclose(result.last_mean, np.broadcast_to(result.last_mean[0], result.last_mean.shape), rtol=1e-10, atol=1e-12)


def test_orders_are_permutations_shared_across_seeds():
    orders = random_orders(15, 100, np.random.default_rng([15, 7]))
    assert orders.shape == (100, 15)
    assert all(sorted(o) == list(range(15)) for o in orders.tolist())
    np.testing.assert_array_equal(orders, random_orders(15, 100, np.random.default_rng([15, 7])))


def test_scenario_tables_layout_and_determinism(toy):
    local, synthetic, counts, test = toy
    parties = ["A", "B", "C"]
    frames = {"A": local, "B": random_frame(np.random.default_rng(3), 200), "C": random_frame(np.random.default_rng(4), 180)}
    synth = {p: counts[i] for i, p in enumerate(parties)}
    settings = AnalysisSettings(orders=2, order_seed=15, draws=5, draw_seed=16, real_sharing=False,
                                selection=SelectionSettings(False, 0.5, 17))
    a = run_scenario(frames, synth, test, JobKey("centres", 1.0, 0.1, 123), settings)
    b = run_scenario(frames, synth, test, JobKey("centres", 1.0, 0.1, 123), settings)
    c = run_scenario(frames, synth, test, JobKey("centres", 1.0, 0.1, 124), settings)
    ll = pd.concat([t.to_pandas() for t in a.ll], ignore_index=True)
    assert list(ll.columns) == LL_SCHEMA.names
    # per party: 2 variants x 5 draws at step 0, 2 orders x 2 steps x 5 draws
    assert len(ll) == 3 * (2 * 5 + 2 * 2 * 5)
    local_rows = ll[ll["step"] == 0]
    assert (local_rows["order"] == -1).all() and set(local_rows["variant"]) == {"full", "no_ethnicity"}
    assert set(ll.loc[ll["step"] > 0, "variant"]) == {"full"} and ll["skew"].isna().all()
    for x, y in zip(a.ll, b.ll):
        pd.testing.assert_frame_equal(x.to_pandas(), y.to_pandas())
    # another generator seed: the same orders, other draws
    assert not a.ll[0].column("ll").equals(c.ll[0].column("ll"))
    coef = pd.concat([t.to_pandas() for t in a.coef])
    assert set(coef["step"]) == {0, 2} and (coef.loc[coef["step"] == 2, "variant"] == "full").all()


def test_unequal_numbers_of_synthetic_sets_are_an_error(toy):
    local, _, counts, test = toy
    from synthshare.errors import InputError

    with pytest.raises(InputError, match=r"b\.parquet: 2 synthetic sets; expected 3 like a\.parquet"):
        run_scenario({"A": local, "B": local}, {"A": counts[0], "B": counts[1][:2]}, test, JobKey("centres", 1.0, 0.1, 1),
                     AnalysisSettings(orders=1, order_seed=1, draws=2, draw_seed=1, real_sharing=False,
                                      selection=SelectionSettings(False, 0.5, 1)),
                     sources={"synthetic:A": "a.parquet", "synthetic:B": "b.parquet"})


def test_synthetic_sets_from_a_stacked_frame_match(toy):
    _, synthetic, counts, _ = toy
    stacked = pd.concat([s.assign(set=k) for k, s in enumerate(synthetic[0])], ignore_index=True)
    np.testing.assert_array_equal(count_sets(stacked, 3), counts[0])


def test_data_without_positives_give_nan_not_a_crash():
    """statsmodels raises on an all-negative outcome; the experiment records NaN for that
    model and leaves such fits out of Rubin's rules."""
    rng = np.random.default_rng(9)
    local = random_frame(rng, 40)
    local["covid_test_result"] = False
    synth = np.stack([np.stack([count_cells(random_frame(rng, 100)) for _ in range(3)]) for _ in range(2)])
    synth[0, 1, ..., 1] = 0  # with the local data: a combined set without positives
    result = PartyExperiment(count_cells(random_frame(rng, 300)), 4).run(
        count_cells(local), synth, np.array([[0, 1], [1, 0]]), most_frequent_levels(local), rng)
    assert np.isnan(result.local["full"]).all() and np.isnan(result.local["no_ethnicity"]).all()
    assert np.isfinite(result.combined).all()
    assert result.summary.failed == 3  # two local variants and one combined set
