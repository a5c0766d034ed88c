"""Coverage of the pooled 95 % intervals against the estimand (issue 16; docs/coverage.md).

Every pooled interval of the analysis stage (``analysis/intervals.parquet``: one row per
party, ε, f, seed, source, order, step and term) is compared with the coefficient its
estimator converges to: the Kullback–Leibler projection of the *mixture of populations*
its data come from (``synthshare.analysis.estimand.mixture_estimands``): at step 0 the
party's own centre, at step j its centre plus the first j partners of the order, each
weighted by its records (a partner's synthetic set is as large as its data and meant to
follow its population; real-data sharing uses the same records). For a simulated cohort
with one set of relative risks this is each centre's own slope coefficients at step 0;
with centre-specific risks (``heterogeneity``) or omitted centre effects it moves as
partners are added, and the interval must follow it. Sources: ``synthetic`` (the paper's
Rubin pooling of DP synthetic data), ``real`` (the yardstick: the partners' real data,
one fit, its own HC1 variance) and ``local`` (step 0).

Replicates: the distinct sets of partners of a step over the orders, per generator seed
(:func:`distinct_replicates`: orders that share the first j partners fit the same data;
at the last step all orders do, so it has one replicate per seed). They are still *not*
independent (sets of one seed share synthetic sets; every replicate shares the party's
local data), so the binomial intervals of the table are too narrow for them; they are
the exact intervals of the proportion had they been independent, and the figure shows
no interval on the average. The real-data yardstick does not depend on ε or the
generator seed, so it is counted once per set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from matplotlib import ticker

from synthshare.analysis.coverage import coverage_table
from synthshare.analysis.estimand import centre_tables, mixture_estimands
from synthshare.analysis.experiment import random_orders
from synthshare.analysis.job import order_rng
from synthshare.cohort.simulated import load_parameters
from synthshare.figures.boxplots import new_figure
from synthshare.figures.output import Rendered
from synthshare.glm.design import Design, most_frequent_levels
from synthshare.naming import format_number as fmt
from synthshare.sweep import apply_overrides

LEVEL = 0.95
"""Nominal coverage of the study's intervals (w̄ ± 1.96 √T)."""

SOURCES = ("synthetic", "real")
"""Sources of combined-data intervals drawn: the paper's DP synthetic data, and the
real-data sharing yardstick."""


def read_intervals(path: str | Path, scenario: str, fraction: float) -> pd.DataFrame:
    """The interval rows of one scenario at one fraction (full model): step 0 and the
    orders' steps (sources ``local``, ``synthetic``, ``real``)."""
    frame = pq.read_table(path, filters=[("scenario", "=", scenario), ("fraction", "=", float(fraction))]).to_pandas()
    # the selected partners' model (source "selected") has no order; its coverage is not drawn
    return frame[frame["source"].isin(("local", *SOURCES))].reset_index(drop=True)


def cohort_parameters(parameters_path: str | Path, truth_path: str | Path) -> tuple[dict, dict]:
    """The parameters a simulated cohort was drawn with (the file plus the sweep's recorded
    overrides, ``truth.json``'s ``parameter_overrides``) and its truth."""
    truth = json.loads(Path(truth_path).read_text())
    parameters = apply_overrides(load_parameters(parameters_path), truth.get("parameter_overrides", {}))
    return parameters, truth


def with_estimands(intervals: pd.DataFrame, local: Mapping[str, pd.DataFrame], parameters: dict, truth: dict,
                   orders: int, order_seed: int) -> pd.DataFrame:
    """``intervals`` of the centres' parties with the column ``estimand`` (β* in the party's coding).

    Args:
        intervals: rows of one scenario ``centres`` at one fraction.
        local: party -> its local data at that fraction, in the scenario's party order
            (sizes, reference levels; the order defines the partners' indices).
        orders, order_seed: the analysis settings (the orders are recomputed exactly as
            the analysis drew them, ``synthshare.analysis.job.order_rng``).
    """
    parties = list(local)
    unit = centre_tables(parameters, truth, parties)
    sizes = np.array([len(local[p]) for p in parties], float)
    parts = []
    for index, party in enumerate(parties):
        rows = intervals[intervals["party"] == party]
        if rows.empty:
            continue
        design = Design.build(most_frequent_levels(local[party]))
        partners = [i for i in range(len(parties)) if i != index]
        order_table = random_orders(len(partners), orders, order_rng(order_seed, party))
        keys = rows[["order", "step"]].drop_duplicates().sort_values(["order", "step"]).to_numpy()
        weights = np.zeros((len(keys), len(parties)))
        weights[:, index] = sizes[index]
        for n, (order, step) in enumerate(keys):
            if step > 0:
                chosen = [partners[i] for i in order_table[order, :step]]
                weights[n, chosen] = sizes[chosen]
        # one projection per distinct mixture (orders repeat sets)
        unique, inverse = np.unique(weights, axis=0, return_inverse=True)
        beta = mixture_estimands(unit, unique, design)[inverse.ravel()]
        lookup = pd.DataFrame(beta, columns=list(design.names))
        lookup["order"], lookup["step"] = keys[:, 0], keys[:, 1]
        # the centres a row's data come from (own + partners): orders of one party sharing
        # the set fit the same data, and real-data sharing of two parties with the same
        # centres is one data set (at the last step, all)
        lookup["centres_key"] = ["".join("1" if w > 0 else "0" for w in unique[i]) for i in inverse.ravel()]
        long = lookup.melt(id_vars=["order", "step", "centres_key"], var_name="term", value_name="estimand")
        parts.append(rows.merge(long, on=["order", "step", "term"], how="left", validate="many_to_one"))
    return pd.concat(parts, ignore_index=True) if parts else intervals.assign(estimand=np.nan)


def distinct_replicates(frame: pd.DataFrame) -> pd.DataFrame:
    """One interval per distinct replicate: per party, a step's set of partners once per
    generator seed and ε (two orders whose first j partners are the same set fit the same
    data: at the last step every order does), and real-data and step-0 intervals once per
    party and set (they depend on neither ε nor the seed)."""
    fixed = frame["source"].isin(["real", "local"])
    first = (frame["epsilon"] == frame["epsilon"].min()) & (frame["seed"] == frame["seed"].min())
    kept = frame[~fixed | first]
    return kept.drop_duplicates(["scenario", "party", "fraction", "epsilon", "seed", "source", "step", "centres_key", "term"])


def data_sets(frame: pd.DataFrame) -> pd.Series:
    """Which data set each interval was fitted on: real-data sharing and step 0 by the set
    of centres whose real records it holds (parties sharing the same centres fit the same
    records, in their own coding); DP synthetic data by party, seed, ε and partner set (a
    party's own records differ, though partners' synthetic sets are shared)."""
    real = frame["source"].isin(["real", "local"])
    synthetic_key = (frame["party"] + "|" + frame["seed"].astype(str) + "|" + frame["epsilon"].astype(str) + "|"
                     + frame["centres_key"])
    return pd.Series(np.where(real, frame["centres_key"], synthetic_key), index=frame.index)


def coverage_tables(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per party, over parties) coverage tables of :func:`synthshare.analysis.coverage.coverage_table`,
    with ``data_sets``: how many distinct data sets the group's intervals were fitted on
    (:func:`data_sets`; fewer than ``intervals`` means replicates share their data)."""
    frame = distinct_replicates(frame)
    frame = frame.assign(epsilon=np.where(frame["source"] == "synthetic", frame["epsilon"], np.nan))
    frame = frame.assign(data_set=data_sets(frame))
    tables = []
    for groups in (["scenario", "fraction", "source", "epsilon", "party", "step"],
                   ["scenario", "fraction", "source", "epsilon", "step"]):
        table = coverage_table(frame, groups, LEVEL)
        present = frame[np.isfinite(frame["var"]) & np.isfinite(frame["estimand"])]
        counts = present.groupby([*groups, "term"], dropna=False)["data_set"].nunique().rename("data_sets").reset_index()
        table = table.merge(counts, on=[*groups, "term"], how="left", validate="one_to_one")
        columns = list(table.columns)
        columns.insert(columns.index("intervals") + 1, columns.pop(columns.index("data_sets")))
        tables.append(table[columns])
    return tables[0], tables[1]


def _mean_curve(table: pd.DataFrame, column: str) -> pd.Series:
    """Mean of ``column`` over parties and slope terms by step, step 0 from the local rows."""
    slopes = table[table["term"] != "Intercept"]
    return slopes.groupby("step")[column].mean()


def coverage_figure(intervals_path: str | Path, truth_path: str | Path, parameters_path: str | Path,
                    local_paths: Sequence[str | Path], settings: dict[str, Any], name: str) -> Rendered:
    """Coverage of the pooled 95 % intervals vs the number of partners: (a) one line per ε
    at the reference f, (b) one line per f at the reference ε, both with the real-data
    yardstick (dashed) and the nominal 0.95 (dotted); (c) the mean interval width of (a).
    Each point is the mean over parties and slope terms (the intercept left out: its
    scale differs) of the per-term coverage over the distinct replicates.

    Args:
        local_paths: the centres' local data, fraction-major (``settings["fractions"]`` ×
            ``settings["parties"]``).
    """
    parties, fractions = list(settings["parties"]), [float(f) for f in settings["fractions"]]
    paths = iter(local_paths)
    local = {f: {p: pd.read_parquet(next(paths)) for p in parties} for f in fractions}
    if next(paths, None) is not None:
        raise ValueError(f"{name}: more local data files than fractions × parties")
    parameters, truth = cohort_parameters(parameters_path, truth_path)
    tables = []
    for fraction in fractions:
        intervals = read_intervals(intervals_path, "centres", fraction)
        if not intervals.empty:
            tables.append(with_estimands(intervals, local[fraction], parameters, truth, settings["orders"], settings["order_seed"]))
    per_party, overall = coverage_tables(pd.concat(tables, ignore_index=True))
    ref_eps, ref_frac = float(settings["epsilon"]), float(settings["fraction"])
    figure, axes = new_figure(13.5, 4.2, 1, 3, sharex=True)
    by_eps, by_frac, width_ax = axes.flat
    at_ref = per_party[per_party["fraction"] == ref_frac]
    local_rows = lambda frame: frame[frame["source"] == "local"]  # noqa: E731
    real_rows = lambda frame: frame[frame["source"] == "real"]  # noqa: E731
    for ax, column in ((by_eps, "coverage"), (width_ax, "mean_width")):
        start = _mean_curve(local_rows(at_ref), column)
        for i, eps in enumerate(sorted(at_ref.loc[at_ref["source"] == "synthetic", "epsilon"].unique())):
            curve = pd.concat([start, _mean_curve(at_ref[(at_ref["source"] == "synthetic") & (at_ref["epsilon"] == eps)], column)])
            ax.plot(curve.index, curve.to_numpy(), color=f"C{i}", marker="o", markersize=3, label=f"DP synthetic, ε = {fmt(eps)}")
        curve = pd.concat([start, _mean_curve(real_rows(at_ref), column)])
        ax.plot(curve.index, curve.to_numpy(), color="black", linestyle="--", label="real data shared")
    for i, fraction in enumerate(fractions):
        rows = per_party[per_party["fraction"] == fraction]
        start = _mean_curve(local_rows(rows), "coverage")
        synthetic = rows[(rows["source"] == "synthetic") & (rows["epsilon"] == ref_eps)]
        if synthetic.empty:
            continue
        curve = pd.concat([start, _mean_curve(synthetic, "coverage")])
        by_frac.plot(curve.index, curve.to_numpy(), color=f"C{i + 4}", marker="o", markersize=3, label=f"DP synthetic, f = {fmt(fraction)}")
        curve = pd.concat([start, _mean_curve(real_rows(rows), "coverage")])
        by_frac.plot(curve.index, curve.to_numpy(), color=f"C{i + 4}", linestyle="--", linewidth=1,
                     label=f"real data shared, f = {fmt(fraction)}")
    for ax in (by_eps, by_frac):
        ax.axhline(LEVEL, color="grey", linestyle=":", linewidth=1, label="nominal 0.95")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("coverage of the 95 % interval")
        ax.legend(fontsize=6.5, frameon=False, loc="lower left")
    by_eps.set_title(f"by ε (f = {fmt(ref_frac)})", fontsize=9)
    by_frac.set_title(f"by local data fraction (ε = {fmt(ref_eps)})", fontsize=9)
    width_ax.set_title(f"mean interval width (f = {fmt(ref_frac)})", fontsize=9)
    width_ax.set_ylabel("mean interval width (log scale)")
    width_ax.set_yscale("log")
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")
    width_ax.yaxis.set_major_formatter(plain)
    width_ax.yaxis.set_minor_formatter(plain)
    width_ax.tick_params(axis="y", which="minor", labelsize=6)
    for ax in axes.flat:
        ax.set_xlabel("partners added (step)")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(linewidth=0.3, alpha=0.6)
    figure.suptitle(f"Interval coverage against the estimand (centres; mean over {len(parties)} parties and their "
                    "slope terms)", fontsize=10)
    return Rendered({name: figure}, {name: overall, f"{name}_by_party": per_party})
