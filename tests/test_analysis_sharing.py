"""Issue 16's analysis products: Rubin's pieces of every step, the real-data yardstick,
partner selection with local data alone, checked against statsmodels on the records."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from synthshare.analysis.experiment import PartyExperiment, random_orders
from synthshare.analysis.job import JobKey, draw_rng, order_rng, run_scenario, run_skew, split_rng
from synthshare.analysis.selection import heldout_split
from synthshare.analysis.settings import AnalysisSettings, SelectionSettings
from synthshare.analysis.tables import INTERVALS_SCHEMA, LL_SCHEMA, SELECTION_SCHEMA, write_table
from synthshare.errors import InputError
from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design, most_frequent_levels
from tests.oracle import _draw, _fit_vector, _score
from tests.test_glm_fit import random_frame

PARTIES = ["A", "B", "C", "D"]
SETS = 3


def settings(real: bool = True, selection: bool = True, orders: int = 2, draws: int = 5) -> AnalysisSettings:
    return AnalysisSettings(orders=orders, order_seed=15, draws=draws, draw_seed=16, real_sharing=real,
                            selection=SelectionSettings(selection, 0.5, 17))


@pytest.fixture(scope="module")
def scenario():
    """Four parties of 300 records, each with K = 3 synthetic sets of 300 (each frame its
    own random effects: the partners differ), and a test set."""
    rng = np.random.default_rng(2016)
    local = {p: random_frame(rng, 300) for p in PARTIES}
    synthetic = {p: [random_frame(rng, 300) for _ in range(SETS)] for p in PARTIES}
    counts = {p: np.stack([count_cells(s) for s in synthetic[p]]).astype(np.int32) for p in PARTIES}
    return local, synthetic, counts, random_frame(rng, 800)


@pytest.fixture(scope="module")
def job(scenario):
    local, _, counts, test = scenario
    return run_scenario(local, counts, test, JobKey("centres", 1.0, 0.1, 123), settings())


def _frame(tables) -> pd.DataFrame:
    return pa.concat_tables(tables).to_pandas()


def _oracle_fits(frames: list[pd.DataFrame], design: Design):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [_fit_vector(frame, design) for frame in frames]
    coef, var, present = (np.array(x) for x in zip(*fits))
    return coef, var, present & np.isfinite(var)


def _rubin_by_hand(coef, var, present):
    """b, v̄, T (with the study's fallback) and K_t per term, written out term by term."""
    P = coef.shape[1]
    out = {name: np.zeros(P) for name in ("mean", "between", "within", "var", "count")}
    out["var"][:] = np.nan
    for p in range(P):
        w, v = coef[present[:, p], p], var[present[:, p], p]
        K = w.size
        if K == 0:
            continue
        b = float(np.var(w, ddof=1)) if K > 1 else 0.0
        total = (1 + 1 / K) * b - v.mean()
        out["mean"][p], out["between"][p], out["within"][p], out["count"][p] = w.mean(), b, v.mean(), K
        out["var"][p] = total if total >= 0 else (1 + 1 / K) * b + v.mean()
    return out


def _rows(intervals: pd.DataFrame, party: str, source: str, order: int, step: int, design: Design) -> pd.DataFrame:
    rows = intervals[(intervals["party"] == party) & (intervals["source"] == source) & (intervals["order"] == order)
                     & (intervals["step"] == step)]
    assert list(rows["term"]) == list(design.names)
    return rows


def test_every_steps_intervals_are_rubins_rules_of_its_k_fits(scenario, job):
    """Each (order, step) row set equals Rubin's rules, by hand, over statsmodels fits of the
    explicitly concatenated records: local ∪ set k of each of the first j partners."""
    local, synthetic, _, _ = scenario
    intervals = _frame(job.intervals)
    party = "B"
    others = [p for p in PARTIES if p != party]
    design = Design.build(most_frequent_levels(local[party]))
    orders = random_orders(len(others), 2, order_rng(15, party))
    for r, order in enumerate(orders):
        for j in range(1, len(others) + 1):
            frames = [pd.concat([local[party]] + [synthetic[others[o]][k] for o in order[:j]], ignore_index=True)
                      for k in range(SETS)]
            expected = _rubin_by_hand(*_oracle_fits(frames, design))
            rows = _rows(intervals, party, "synthetic", r, j, design)
            np.testing.assert_array_equal(rows["count"].to_numpy(), expected["count"])
            for name in ("mean", "between", "within", "var"):
                np.testing.assert_allclose(rows[name].to_numpy(), expected[name], rtol=1e-6, atol=1e-10, err_msg=name)


def test_real_yardstick_is_statsmodels_on_the_concatenated_real_records(scenario, job):
    local, _, _, test = scenario
    intervals = _frame(job.intervals)
    ll = _frame(job.ll)
    party = "C"
    others = [p for p in PARTIES if p != party]
    design = Design.build(most_frequent_levels(local[party]))
    orders = random_orders(len(others), 2, order_rng(15, party))
    rng = draw_rng(16, 123, f"{party}:real")
    for r, order in enumerate(orders):
        noise = rng.standard_normal((len(others), 5, design.size))  # (O, S, P) per order, as the engine draws
        for j in range(1, len(others) + 1):
            frame = pd.concat([local[party]] + [local[others[o]] for o in order[:j]], ignore_index=True)
            coef, var, present = (x[0] for x in _oracle_fits([frame], design))
            rows = _rows(intervals, party, "real", r, j, design)
            np.testing.assert_allclose(rows["mean"].to_numpy(), np.where(present, coef, 0.0), rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(rows["var"].to_numpy()[present], var[present], rtol=1e-6)
            assert (rows["count"].to_numpy() == present).all() and (rows["between"] == 0).all()
            sample = np.where(present, coef + np.sqrt(np.where(present, var, 0.0)) * noise[j - 1], 0.0)
            got = ll[(ll["party"] == party) & (ll["variant"] == "real") & (ll["order"] == r) & (ll["step"] == j)]
            np.testing.assert_allclose(got["ll"].to_numpy(), _score(test, design, sample), rtol=1e-6)


def _brute_force_selection(local: pd.DataFrame, held: np.ndarray, partners: list[list[pd.DataFrame]], design: Design):
    """The greedy rule written out on records: statsmodels fits, Rubin's means, held-out scores."""
    fit_part, heldout = local[~held], local[held]

    def heldout_ll(frames):
        coef, var, present = _oracle_fits(frames, design)
        pooled = _rubin_by_hand(coef, var, present)
        return float(_score(heldout, design, pooled["mean"][None])[0]) if pooled["count"][0] else -np.inf

    current = heldout_ll([fit_part])
    chosen, history = [], []
    while len(chosen) < len(partners):
        scores = {c: heldout_ll([pd.concat([fit_part] + [partners[o][k] for o in chosen + [c]], ignore_index=True)
                                 for k in range(SETS)])
                  for c in range(len(partners)) if c not in chosen}
        best = max(scores, key=lambda c: (scores[c], -c))
        history.append((current, scores[best]))
        if scores[best] <= current:
            break
        chosen.append(best)
        current = scores[best]
    return chosen, history


def test_selection_agrees_with_a_brute_force_greedy_search(scenario, job):
    local, synthetic, _, test = scenario
    selection = _frame(job.selection)
    ll = _frame(job.ll)
    intervals = _frame(job.intervals)
    assert list(selection.columns) == SELECTION_SCHEMA.names
    took_some = False
    for party in PARTIES:
        others = [p for p in PARTIES if p != party]
        design = Design.build(most_frequent_levels(local[party]))
        held = heldout_split(local[party]["covid_test_result"].to_numpy(), 0.5, split_rng(17, party))
        chosen, history = _brute_force_selection(local[party], held, [synthetic[p] for p in others], design)
        rows = selection[selection["party"] == party]
        assert list(rows["partner"][rows["partner"] != ""]) == [others[c] for c in chosen]
        assert list(rows["round"]) == list(range(len(history)))
        np.testing.assert_allclose(rows[["heldout_before", "heldout_after"]].to_numpy(), np.array(history), rtol=1e-6)
        assert (rows["fit_records"] + rows["heldout_records"] == len(local[party])).all()
        took_some |= bool(chosen)
        # the selected model: all local data ∪ the chosen partners' sets, scored on the test set
        frames = [pd.concat([local[party]] + [synthetic[others[c]][k] for c in chosen], ignore_index=True)
                  for k in range(SETS if chosen else 1)]
        pooled = _rubin_by_hand(*_oracle_fits(frames, design))
        got = intervals[(intervals["party"] == party) & (intervals["source"] == "selected")]
        assert (got["step"] == len(chosen)).all() and (got["order"] == -1).all()
        np.testing.assert_allclose(got["mean"].to_numpy(), pooled["mean"], rtol=1e-6, atol=1e-10)
        sample = _draw(pooled["mean"], pooled["var"], pooled["count"] > 0, 5, draw_rng(16, 123, f"{party}:selected"))
        scored = ll[(ll["party"] == party) & (ll["variant"] == "selected")]
        assert (scored["step"] == len(chosen)).all() and (scored["order"] == -1).all()
        np.testing.assert_allclose(scored["ll"].to_numpy(), _score(test, design, sample), rtol=1e-6)
    assert took_some


def test_heldout_split_is_stratified_and_seeded():
    outcome = np.r_[np.ones(7, bool), np.zeros(20, bool)]
    held = heldout_split(outcome, 0.5, np.random.default_rng(1))
    assert held[outcome].sum() == 3 and held[~outcome].sum() == 10
    np.testing.assert_array_equal(held, heldout_split(outcome, 0.5, np.random.default_rng(1)))
    assert not np.array_equal(held, heldout_split(outcome, 0.5, np.random.default_rng(2)))
    # a single positive stays in the fitting part
    assert not heldout_split(np.r_[True, np.zeros(5, bool)], 0.5, np.random.default_rng(0))[0]


def test_the_papers_rows_do_not_move_and_files_repeat_byte_for_byte(scenario, job, tmp_path):
    local, _, counts, test = scenario
    key = JobKey("centres", 1.0, 0.1, 123)
    plain = run_scenario(local, counts, test, key, settings(real=False, selection=False))
    ll, bare = _frame(job.ll), _frame(plain.ll)
    assert set(ll["variant"]) == {"full", "no_ethnicity", "real", "selected"} and set(bare["variant"]) == {"full", "no_ethnicity"}
    pd.testing.assert_frame_equal(ll[ll["variant"].isin(["full", "no_ethnicity"])].reset_index(drop=True), bare)
    pd.testing.assert_frame_equal(_frame(job.coef), _frame(plain.coef))
    intervals = _frame(job.intervals)
    pd.testing.assert_frame_equal(intervals[intervals["source"].isin(["local", "synthetic"])].reset_index(drop=True),
                                  _frame(plain.intervals))
    assert len(_frame(plain.selection)) == 0
    again = run_scenario(local, counts, test, key, settings())
    for name, schema in (("ll", LL_SCHEMA), ("intervals", INTERVALS_SCHEMA), ("selection", SELECTION_SCHEMA)):
        write_table(getattr(job, name), schema, tmp_path / f"a_{name}.parquet")
        write_table(getattr(again, name), schema, tmp_path / f"b_{name}.parquet")
        assert (tmp_path / f"a_{name}.parquet").read_bytes() == (tmp_path / f"b_{name}.parquet").read_bytes()


def test_intervals_layout(scenario, job):
    local, _, _, _ = scenario
    intervals = _frame(job.intervals)
    assert list(intervals.columns) == INTERVALS_SCHEMA.names
    P = Design.build().size
    per_party = intervals.groupby("party").size()
    # local + R x O synthetic + R x O real + selected, P terms each
    assert (per_party == P * (1 + 2 * 3 + 2 * 3 + 1)).all()
    local_rows = intervals[intervals["source"] == "local"]
    assert (local_rows["order"] == -1).all() and (local_rows["step"] == 0).all()
    absent = intervals["count"] == 0
    assert intervals.loc[absent, "var"].isna().all() and (intervals.loc[absent, "mean"] == 0).all()
    assert intervals.loc[~absent, "var"].notna().all()
    # the last step holds every partner in every order: the same pooled model
    last = intervals[(intervals["source"] == "synthetic") & (intervals["step"] == 3) & (intervals["party"] == "A")]
    means = last.pivot(index="order", columns="term", values="mean").to_numpy()
    np.testing.assert_allclose(means, np.broadcast_to(means[0], means.shape), rtol=1e-10, atol=1e-12)


def test_skew_job_has_selection_but_no_real_yardstick(scenario):
    local, _, counts, _ = scenario
    frames = {0.0: local["A"], 0.5: local["B"]}
    job = run_skew(frames, {p: counts[p] for p in PARTIES}, local["C"], 1.0, 123, settings(orders=1, draws=3))
    ll, intervals, selection = _frame(job.ll), _frame(job.intervals), _frame(job.selection)
    assert set(ll["variant"]) == {"full", "no_ethnicity", "selected"}
    assert set(intervals["source"]) == {"local", "synthetic", "selected"}
    assert sorted(selection["skew"].unique()) == [0.0, 0.5] and (selection["party"] == "skewed").all()
    assert set(selection["partner"]) <= set(PARTIES) | {""}


def test_settings_keys_are_checked():
    section = {"orders": 2, "order_seed": 1, "draws": 3, "draw_seed": 4, "real_sharing": True,
               "selection": {"enabled": True, "heldout_fraction": 0.5, "seed": 17}}
    assert AnalysisSettings.from_config(section).selection == SelectionSettings(True, 0.5, 17)
    with pytest.raises(InputError, match=r"analysis\.selection: unknown keys \['extra'\], missing keys \['seed'\]"):
        AnalysisSettings.from_config({**section, "selection": {"enabled": True, "heldout_fraction": 0.5, "extra": 1}})
    with pytest.raises(InputError, match=r"analysis\.selection\.heldout_fraction: 1\.0; expected a number > 0 and < 1"):
        AnalysisSettings.from_config({**section, "selection": {"enabled": True, "heldout_fraction": 1.0, "seed": 1}})
    with pytest.raises(InputError, match=r"analysis\.real_sharing: 'yes'; expected true or false"):
        AnalysisSettings.from_config({**section, "real_sharing": "yes"})


def test_a_party_too_small_to_split_is_named(scenario):
    local, _, counts, test = scenario
    tiny = {"A": local["A"].iloc[:1], "B": local["B"]}
    with pytest.raises(InputError, match=r"a\.parquet: 1 local records cannot be split"):
        run_scenario(tiny, {"A": counts["A"], "B": counts["B"]}, test, JobKey("centres", 1.0, 0.1, 1), settings(),
                     sources={"local:A": "a.parquet"})


def test_experiment_exposes_the_pooled_pieces_its_draws_use(scenario):
    local, _, counts, test = scenario
    orders = random_orders(3, 2, np.random.default_rng(3))
    result = PartyExperiment(count_cells(test), draws=4).run(
        count_cells(local["A"]), np.stack([counts[p] for p in "BCD"]), orders, most_frequent_levels(local["A"]),
        np.random.default_rng(0))
    assert result.steps.mean.shape == (2, 3, Design.build().size) == result.steps.count.shape
    np.testing.assert_array_equal(result.steps.mean[:, -1], result.last_mean)
    np.testing.assert_array_equal(result.steps.var[0, -1], result.var_last)
    assert ((result.steps.count == SETS) | (result.steps.count == 0) | ~result.steps.present).all()


def test_schema_defaults_enable_both_and_make_valid_settings():
    from synthshare.config import check_config, load_schema
    from tests.conftest import REPO

    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    analysis = check_config({"run": "x"}, schema)["analysis"]
    assert analysis["real_sharing"] is True
    assert analysis["selection"] == {"enabled": True, "heldout_fraction": 0.5, "seed": 17}
    assert AnalysisSettings.from_config(analysis).selection.enabled
    with pytest.raises(InputError, match=r"analysis\.selection\.heldout_fraction = 0: must be > 0 and < 1"):
        check_config({"run": "x", "analysis": {"selection": {"heldout_fraction": 0}}}, schema, "c.yaml")
    with pytest.raises(InputError, match=r"unknown key analysis\.selection\.rounds"):
        check_config({"run": "x", "analysis": {"selection": {"rounds": 3}}}, schema, "c.yaml")
