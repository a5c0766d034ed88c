"""TEST FIXTURE: fabricated analysis-stage files for the figures stage.

Writes ``analysis/ll.parquet``, ``analysis/reference.parquet``, ``analysis/coef.parquet``, ``analysis/intervals.parquet``, the centres' local data,
``data/truth.json``, ``privacy/ledger.csv`` and every generator fit's ``elbo.csv`` with the
exact schema of docs/architecture.md, for any config's grid. The numbers are made up:
log-likelihoods follow simple formulas with controllable effects (``Effects``) so that
the claims logic can be checked in both directions. Nothing here is a result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from synthshare.grid import centre_parties, model_settings, parties_of, skew_enabled
from synthshare.naming import format_number as fmt
from synthshare.variables import FEATURE_LEVELS, FEATURES

REFERENCE_LL = -0.50
SKEW_REFERENCE_LL = -0.60


@dataclass(frozen=True)
class Effects:
    """Signs of the fabricated effects: +1 = the paper's direction, -1 = the opposite."""

    sharing: float = 1.0        # combined closer to the reference than local only
    data_size: float = 1.0      # the gain grows as f shrinks
    epsilon: float = 1.0        # larger ε, better combined
    skew: float = 1.0           # stronger skew, larger correction
    outlier: bool = True        # the worst party's local fit is far off (the paper's Barts)


def _local_mean(index: int, fraction: float, effects: Effects) -> float:
    base = REFERENCE_LL - 0.03 - 0.01 * index
    if effects.outlier and index == 0:
        base = -3.6
    # Smaller local data, worse local fit; with data_size = -1 the local fit barely
    # depends on f (so the gain shrinks as f shrinks instead).
    return base - (0.02 * (1 / fraction - 1) if effects.data_size > 0 else 0.0)


def _step_mean(local: float, step: int, last: int, epsilon: float, fraction: float, effects: Effects) -> float:
    if step == 0:
        return local
    # Combined converges to a level just below the reference; larger ε, closer (or further).
    limit = REFERENCE_LL - 0.02 * (effects.epsilon * (2.0 / epsilon) if effects.epsilon > 0 else epsilon)
    if effects.data_size < 0:
        limit -= 0.03 * (1 / fraction - 1)
    target = limit if effects.sharing > 0 else local - 0.05
    return local + (target - local) * (1 - np.exp(-step / 1.5))


def fabricate_ll(config: dict, draws: int = 10, orders: int = 3, effects: Effects = Effects(), seed: int = 0) -> pd.DataFrame:
    """Every row of ``ll.parquet`` the config's grid implies (schema of docs/architecture.md)."""
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in config["seeds"]]
    frames = []

    def rows(scenario, party, epsilon, fraction, skew, variant, steps_means, spread):
        for seed_value in seeds:
            for step, mean in steps_means:
                order_values = [-1] if step == 0 else list(range(orders))
                n = len(order_values) * draws
                frames.append(pd.DataFrame({
                    "scenario": scenario, "party": party, "epsilon": float(epsilon), "fraction": float(fraction),
                    "skew": float(skew), "seed": seed_value, "variant": variant,
                    "order": np.repeat(order_values, draws), "step": step, "draw": np.tile(np.arange(draws), len(order_values)),
                    "ll": mean + spread(step) * rng.standard_normal(n),
                }))

    for setting in model_settings(config):
        parties = parties_of(config, setting.scenario)
        last = len(parties) - 1
        for index, party in enumerate(parties):
            local = _local_mean(index, setting.fraction, effects)
            means = [(j, _step_mean(local, j, last, setting.epsilon, setting.fraction, effects)) for j in range(last + 1)]
            spread = lambda j, lo=local: 0.05 * abs(lo - REFERENCE_LL) + 0.01 if j == 0 else 0.01
            rows(setting.scenario, party, setting.epsilon, setting.fraction, np.nan, "full", means, spread)
            if setting.scenario == "centres":
                rows(setting.scenario, party, setting.epsilon, setting.fraction, np.nan, "no_ethnicity",
                     [(0, local + 0.01)], lambda j: 0.01)
    if skew_enabled(config):
        last = len(centre_parties(config))
        for skew in config["skew"]["fractions"]:
            damage = 0.2 * (1 - float(skew)) if effects.skew > 0 else 0.2 * float(skew)
            local = SKEW_REFERENCE_LL - 0.01 - damage
            means = [(0, local), (last, SKEW_REFERENCE_LL - 0.02)]
            rows("skew", "skewed", config["reference"]["epsilon"], 1.0, skew, "full", means, lambda j: 0.01)
    frame = pd.concat(frames, ignore_index=True)
    frame["seed"] = frame["seed"].astype("int64")
    frame["order"] = frame["order"].astype("int64")
    frame["step"] = frame["step"].astype("int64")
    frame["draw"] = frame["draw"].astype("int64")
    return frame


def fabricate_truth() -> dict[str, float]:
    """Ground-truth coefficients with first-listed references (truth.json's ``coefficients``)."""
    rng = np.random.default_rng(1)
    truth = {"Intercept": -1.7}
    for feature in FEATURES:
        for level in FEATURE_LEVELS[feature][1:]:
            truth[f"{feature}[{level}]"] = float(np.round(rng.normal(0, 0.3), 3))
    return truth


def fabricate_coef(config: dict, truth: dict[str, float], seed: int = 2) -> pd.DataFrame:
    """Pooled coefficients at step 0 and the last step, each party in its own reference coding:
    the second level of ``age_group`` is the reference (as the most frequent level would be),
    and at step 0 the last ethnicity level is absent (no term), as in small local data."""
    rng = np.random.default_rng(seed)
    rows = []
    for setting in model_settings(config):
        parties = parties_of(config, setting.scenario)
        for party in parties:
            for seed_value in config["seeds"]:
                for step, noise in ((0, 0.2), (len(parties) - 1, 0.05)):
                    reference = {f: FEATURE_LEVELS[f][1 if f == "age_group" else 0] for f in FEATURES}
                    beta = lambda f, lv: 0.0 if lv == FEATURE_LEVELS[f][0] else truth[f"{f}[{lv}]"]
                    coded = {"Intercept": truth["Intercept"] + sum(beta(f, r) for f, r in reference.items())}
                    for f in FEATURES:
                        for lv in FEATURE_LEVELS[f]:
                            if lv != reference[f] and not (step == 0 and f == "ethnicity" and lv == FEATURE_LEVELS[f][-1]):
                                coded[f"{f}[{lv}]"] = beta(f, lv) - beta(f, reference[f])
                    for term, value in coded.items():
                        rows.append({"scenario": setting.scenario, "party": party, "epsilon": setting.epsilon,
                                     "fraction": setting.fraction, "seed": int(seed_value), "step": step, "term": term,
                                     "mean": value + noise * rng.standard_normal(), "var": noise ** 2,
                                     "skew": np.nan, "variant": "full"})
                    if step == 0:
                        # The model without ethnicity: another coding, to be left out of the truth table.
                        rows.append({**rows[-1], "term": "sex[Male]", "mean": 9.0, "variant": "no_ethnicity"})
    return pd.DataFrame(rows)


def elbo_paths(config: dict, results: Path) -> list[Path]:
    """Every generator fit's elbo.csv under ``results`` (the layout of docs/architecture.md)."""
    return [
        results / f"generator/{s.scenario}/eps{fmt(s.epsilon)}/f{fmt(s.fraction)}/seed{seed}/{party}/elbo.csv"
        for s in model_settings(config) for seed in config["seeds"] for party in parties_of(config, s.scenario)
    ]


def fabricate_run(results: Path, config: dict, effects: Effects = Effects(), draws: int = 10, orders: int = 3) -> dict:
    """Write every input of the figures stage under ``results`` (= results/<run>); return the paths."""
    analysis = results / "analysis"
    analysis.mkdir(parents=True, exist_ok=True)
    ll = fabricate_ll(config, draws=draws, orders=orders, effects=effects)
    ll.to_parquet(analysis / "ll.parquet", index=False)
    pd.DataFrame({"evaluation": ["global_test", "skew_eval"], "ll": [REFERENCE_LL, SKEW_REFERENCE_LL]}).to_parquet(
        analysis / "reference.parquet", index=False)
    truth = fabricate_truth()
    fabricate_coef(config, truth).to_parquet(analysis / "coef.parquet", index=False)
    (results / "data").mkdir(parents=True, exist_ok=True)
    cohort = _small_cohort()
    # the fabricated coefficients beside a real simulated cohort's truth (the coverage
    # product's estimand needs its scale, intercept and cut points)
    (results / "data/truth.json").write_text(json.dumps({**cohort.truth, "coefficients": truth, "source": "test fixture"}))
    local = fabricate_local(results, config, cohort.frame)
    fabricate_intervals(config, local).to_parquet(analysis / "intervals.parquet", index=False)
    rng = np.random.default_rng(3)
    paths = elbo_paths(config, results)
    ledger = []
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = int(rng.integers(100, 1000))
        epochs = np.arange(1, 21)
        elbo = size * (-5 - 3 * np.exp(-epochs / 5) + 0.02 * rng.standard_normal(20))
        pd.DataFrame({"epoch": epochs, "elbo": elbo}).to_csv(path, index=False)
        fit = path.parent.relative_to(results / "generator").parts  # scenario, eps<ε>, f<f>, seed<seed>, party
        ledger.append({"scenario": fit[0], "party": fit[4], "epsilon_target": float(fit[1][3:]),
                       "fraction": float(fit[2][1:]), "seed": int(fit[3][4:]), "N": size, "sigma": 1.0})
    (results / "privacy").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ledger).to_csv(results / "privacy/ledger.csv", index=False)
    return {"ll": analysis / "ll.parquet", "reference": analysis / "reference.parquet", "coef": analysis / "coef.parquet",
            "truth": results / "data/truth.json", "elbo": [str(p) for p in paths], "ledger": results / "privacy/ledger.csv",
            "intervals": analysis / "intervals.parquet", "parameters": str(REPO / COHORT_PARAMETERS),
            "local": [str(path) for path in local.values()]}


COHORT_PARAMETERS = "config/cohort_simulated.yaml"
REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def _small_cohort():
    """A real simulated cohort at scale 0.25 (the source of the fabricated local data)."""
    from synthshare.cohort.simulated import load_parameters, simulate_cohort

    return simulate_cohort(load_parameters(REPO / COHORT_PARAMETERS), scale=0.25, seed=20240716)


def fabricate_local(results: Path, config: dict, cohort: pd.DataFrame) -> dict[tuple[float, str], Path]:
    """The centres' local data at every fraction, as ``data/local/centres/f<f>/<party>.parquet``:
    the first ⌈f·n⌉ records of each centre (fraction-major, as the coverage product reads them)."""
    from synthshare.grid import centre_fractions
    from synthshare.variables import CENTRE_COLUMN

    written = {}
    for fraction in centre_fractions(config):
        for party in centre_parties(config):
            records = cohort[cohort[CENTRE_COLUMN] == party]
            path = results / f"data/local/centres/f{fmt(fraction)}/{party}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            records.head(int(np.ceil(fraction * len(records)))).to_parquet(path, index=False)
            written[(fraction, party)] = path
    return written


def fabricate_intervals(config: dict, local: dict[tuple[float, str], Path], orders: int = 3, seed: int = 4) -> pd.DataFrame:
    """``intervals.parquet`` rows (schema of docs/architecture.md) for the centres: made-up
    means N(0, 0.3²) and variances around 0.02 in each party's design (its most frequent
    levels), step 0 (``local``) and steps 1… of every order (``synthetic``, ``real``)."""
    from synthshare.glm.design import Design, most_frequent_levels

    rng = np.random.default_rng(seed)
    rows = []
    parties = centre_parties(config)
    for setting in model_settings(config):
        if setting.scenario != "centres":
            continue
        for party in parties:
            names = Design.build(most_frequent_levels(pd.read_parquet(local[(setting.fraction, party)]))).names
            for seed_value in config["seeds"]:
                keys = [("local", -1, 0)] + [(source, r, j) for source in ("synthetic", "real")
                                             for r in range(orders) for j in range(1, len(parties))]
                for source, order, step in keys:
                    for term in names:
                        rows.append(("centres", party, setting.epsilon, setting.fraction, np.nan, int(seed_value), source,
                                     order, step, term, 0.3 * rng.standard_normal(), 0.02 * rng.uniform(0.5, 1.5),
                                     0.01, 0.01, 3 if source == "synthetic" else 1, False))
    return pd.DataFrame(rows, columns=["scenario", "party", "epsilon", "fraction", "skew", "seed", "source", "order", "step",
                                       "term", "mean", "var", "between", "within", "count", "fallback"])

