"""Figures beyond the paper: ll vs ε for every party, ll vs the number of parties M
(uniform splits), the generators' ELBO traces, pooled coefficients vs the simulated truth.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from synthshare.figures.boxplots import new_figure, paired_groups_figure
from synthshare.figures.output import Rendered
from synthshare.figures.paper import epsilon_figure
from synthshare.errors import InputError
from synthshare.figures.readers import read_coef, read_elbo_traces, read_fit_sizes, read_reference, read_truth
from synthshare.figures.samples import local_and_combined
from synthshare.figures.stats import compare
from synthshare.naming import format_number as fmt, uniform_parties, uniform_scenario
from synthshare.variables import FEATURE_LEVELS, FEATURES


def epsilon_every_party(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Log-likelihood vs ε for every party: Fig 6 with a panel per party."""
    return epsilon_figure(ll, reference, settings, name, every_party=True)


# --- ll vs the number of parties M (uniform splits) --------------------------------------

def party_count_figure(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Local only vs combined with all others for uniform splits into M parties.

    Each M's boxes pool the samples of all its parties u1 ... uM (equal-sized, drawn
    from the same population, so exchangeable). One-sided ranked Welch "combined >
    local only" per M (table ``name``, with each party's medians in ``party_medians``).
    """
    epsilon, fraction = float(settings["epsilon"]), float(settings["fraction"])
    ref = read_reference(reference)
    boxed, stars, rows = [], {}, []
    groups = [f"M = {m}" for m in settings["party_counts"]]
    for m, group in zip(settings["party_counts"], groups):
        parties = uniform_parties(m)
        pairs = local_and_combined(ll, parties, m - 1, scenario=uniform_scenario(m), epsilon=epsilon, fraction=fraction)
        local = np.concatenate([pairs[p][0] for p in parties])
        combined = np.concatenate([pairs[p][1] for p in parties])
        test = compare(combined, local, "greater")
        per_party = "; ".join(f"{p}: {np.median(pairs[p][0]):.4f} -> {np.median(pairs[p][1]):.4f}" for p in parties)
        rows.append({"parties": m, "epsilon": epsilon, "fraction": fraction, **test.row("combined", "local"),
                     "party_medians": per_party})
        boxed.append((local, combined))
        stars[group] = test.stars
    figure = paired_groups_figure(groups, boxed, stars, ref,
                                  "number of parties M (uniform random split of the pooled training data)",
                                  f"Uniform splits: local only vs combined with the other M - 1 parties\n"
                                  f"ε = {fmt(epsilon)}, pooled data fraction {fmt(fraction)}; boxes pool all M parties")
    return Rendered({name: figure}, {name: pd.DataFrame(rows)})


# --- ELBO traces ------------------------------------------------------------------------------

def elbo_figure(elbo_paths: Sequence[str | Path], ledger: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """The generators' ELBO per epoch and record: a panel per (scenario, ε, f), a line per
    party (mean over seeds, shaded between the seeds' minimum and maximum). No table.

    ``elbo.csv`` holds the full-data ELBO (a sum over the party's N records); divided by
    N from the privacy ledger, parties of different sizes share one scale.
    """
    traces = read_elbo_traces(elbo_paths)
    keys = ["scenario", "party", "epsilon", "fraction", "seed"]
    sizes = read_fit_sizes(ledger)
    traces = traces.merge(sizes, on=keys, how="left", validate="many_to_one")
    unmatched = traces.loc[traces["N"].isna(), keys].drop_duplicates()
    if len(unmatched):
        fit = unmatched.iloc[0].to_dict()
        raise InputError(f"{ledger}: no ledger row for the generator fit {fit}; expected one per elbo.csv")
    traces["elbo"] = traces["elbo"] / traces["N"]
    keys = sorted(traces[["scenario", "epsilon", "fraction"]].drop_duplicates().itertuples(index=False, name=None))
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    figure, axes = new_figure(4.2 * cols + 1.6, 3.0 * rows + 0.5, rows, cols)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    parties = list(dict.fromkeys(traces["party"]))
    colors = _party_colors(parties)
    for ax, (scenario, epsilon, fraction) in zip(axes.flat, keys):
        panel = traces[(traces["scenario"] == scenario) & (traces["epsilon"] == epsilon) & (traces["fraction"] == fraction)]
        for party, trace in panel.groupby("party", sort=False):
            by_epoch = trace.groupby("epoch")["elbo"].agg(["mean", "min", "max"])
            ax.plot(by_epoch.index, by_epoch["mean"], color=colors[party], linewidth=0.9, label=party)
            if trace["seed"].nunique() > 1:
                ax.fill_between(by_epoch.index, by_epoch["min"], by_epoch["max"], color=colors[party], alpha=0.15,
                                linewidth=0)
        ax.set_title(f"{scenario}, ε = {fmt(epsilon)}, f = {fmt(fraction)}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("ELBO per record")
        ax.grid(linewidth=0.3, alpha=0.6)
    handles = [ax.plot([], [], color=colors[p], label=p)[0] for p in parties]
    figure.legend(handles=handles, loc="outside right center", frameon=False, fontsize=7,
                  ncols=1 if len(parties) <= 20 else 2)
    figure.suptitle("Generator training: ELBO per record and epoch (line: mean over seeds; band: seed range)", fontsize=10)
    return Rendered({name: figure}, {})


def _party_colors(parties: Iterable[str]) -> dict[str, tuple]:
    import matplotlib.pyplot as plt

    parties = list(parties)
    cmap = plt.get_cmap("tab20" if len(parties) > 10 else "tab10")
    return {p: cmap(i % cmap.N) for i, p in enumerate(parties)}


# --- Pooled coefficients vs the simulated ground truth ------------------------------------

COEF_MARGIN = 1.0
"""The coefficient panels' y-axis reaches this far (log relative risk) beyond the truth."""

def reference_levels(terms: Iterable[str]) -> dict[str, str | None]:
    """Each feature's reference level in a fit with these terms: its one level without a term.

    None when that is ambiguous (a level absent from the data also has no term).
    """
    present = set(terms)
    levels = {}
    for feature in FEATURES:
        missing = [lv for lv in FEATURE_LEVELS[feature] if f"{feature}[{lv}]" not in present]
        levels[feature] = missing[0] if len(missing) == 1 else None
    return levels


def truth_in_coding(truth: dict[str, float], reference: dict[str, str | None]) -> dict[str, float]:
    """The ground truth re-expressed with the given reference levels (log relative risks).

    With first-listed references, β'[f, l] = β[f, l] − β[f, r_f] and the intercept gains
    Σ_f β[f, r_f] (β of a first-listed level is 0). Terms of a feature whose reference is
    unknown, and then the intercept, are left out.
    """
    def beta(feature: str, level: str) -> float:
        return 0.0 if level == FEATURE_LEVELS[feature][0] else truth[f"{feature}[{level}]"]

    coded: dict[str, float] = {}
    known = all(r is not None for r in reference.values())
    if known:
        coded["Intercept"] = truth["Intercept"] + sum(beta(f, r) for f, r in reference.items())
    for feature, ref in reference.items():
        if ref is None:
            continue
        for level in FEATURE_LEVELS[feature]:
            if level != ref:
                coded[f"{feature}[{level}]"] = beta(feature, level) - beta(feature, ref)
    return coded


def coefficient_errors(coef: pd.DataFrame, truth: dict[str, float]) -> pd.DataFrame:
    """Per fit and term: the pooled estimate, its SE and the truth in that party's coding.

    A party's reference levels (the most frequent in its local data, kept for its
    combined fits) are read off its last-step terms, where the synthetic data make every
    level present; the step-0 terms are the fallback.

    Returns:
        ``scenario, party, epsilon, fraction, skew, seed, step, term, mean, se, truth, covered``
        (``covered``: the truth lies within mean ± 1.96 SE; ``skew`` NaN outside Fig 5's party).
    """
    fits = ["scenario", "party", "epsilon", "fraction", "skew", "seed"]
    coef = coef[np.isfinite(coef["mean"])]
    out = []
    for key, fit in coef.groupby(fits, sort=True, dropna=False):
        steps = sorted(fit["step"].unique())
        reference = reference_levels(fit.loc[fit["step"] == steps[-1], "term"])
        if any(r is None for r in reference.values()):
            first = reference_levels(fit.loc[fit["step"] == steps[0], "term"])
            reference = {f: reference[f] or first[f] for f in FEATURES}
        coded = truth_in_coding(truth, reference)
        rows = fit[fit["term"].isin(list(coded))].copy()
        rows["truth"] = rows["term"].map(coded)
        out.append(rows)
    result = pd.concat(out, ignore_index=True) if out else coef.assign(truth=np.nan).iloc[:0]
    result["se"] = np.sqrt(result["var"].clip(lower=0))
    result["covered"] = (result["mean"] - result["truth"]).abs() <= 1.96 * result["se"]
    return result[fits + ["step", "term", "mean", "se", "truth", "covered"]]


def coefficient_table(errors: pd.DataFrame) -> pd.DataFrame:
    """Over seeds, per (scenario, party, ε, f, skew, step, term): the truth, the mean estimate,
    bias, RMSE, mean SE and the 95 % interval coverage; ``stage`` names step 0 / last.
    """
    keys = ["scenario", "party", "epsilon", "fraction", "skew", "step", "term"]
    errors = errors.assign(error=errors["mean"] - errors["truth"], squared=(errors["mean"] - errors["truth"]) ** 2)
    table = errors.groupby(keys, sort=True, dropna=False).agg(
        truth=("truth", "first"), estimate=("mean", "mean"), bias=("error", "mean"), mse=("squared", "mean"),
        mean_se=("se", "mean"), coverage=("covered", "mean"), seeds=("seed", "nunique"),
    ).reset_index()
    table["rmse"] = np.sqrt(table.pop("mse"))
    last = table.groupby(["scenario", "party", "epsilon", "fraction", "skew"], dropna=False)["step"].transform("max")
    table.insert(6, "stage", np.where(table["step"] == 0, "local only", np.where(table["step"] == last, "combined", "")))
    return table


def coefficient_figure(coef_path: str | Path, truth_path: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Pooled coefficients (mean over seeds) vs the simulated truth at the reference
    setting: one panel for local only, one for combined with all others; a point per
    (party, term), coloured by feature; the intercept is left out of the panels (its
    scale differs) but kept in the table, which covers every setting of the run.

    The y-axis spans the truth ± ``COEF_MARGIN``: a level without positive outcomes in
    the data drives its estimate towards -∞ (about -20 where the fit stops), which would
    flatten every other point. Such points are drawn as triangles on the axis edge and
    counted in the panel title (▲ above, ▼ below); the summary is the median absolute error, robust to them.
    """
    errors = coefficient_errors(read_coef(coef_path), read_truth(truth_path))
    table = coefficient_table(errors)
    at = table[(table["scenario"] == settings["scenario"]) & (table["epsilon"] == float(settings["epsilon"]))
               & (table["fraction"] == float(settings["fraction"])) & (table["term"] != "Intercept")]
    figure, axes = new_figure(9.6, 4.8, 1, 2, sharex=True, sharey=True)
    cmap = _party_colors(FEATURES)
    low = float(at["truth"].min()) - COEF_MARGIN if len(at) else -1.0
    high = float(at["truth"].max()) + COEF_MARGIN if len(at) else 1.0
    for ax, stage in zip(axes.flat, ("local only", "combined")):
        panel = at[at["stage"] == stage]
        for feature in FEATURES:
            points = panel[panel["term"].str.startswith(f"{feature}[")]
            inside = points["estimate"].between(low, high)
            ax.scatter(points.loc[inside, "truth"], points.loc[inside, "estimate"], s=12, alpha=0.75,
                       color=cmap[feature], label=feature, edgecolors="none")
            for marker, side in (("v", points["estimate"] < low), ("^", points["estimate"] > high)):
                ax.scatter(points.loc[side, "truth"], np.full(int(side.sum()), low if marker == "v" else high), s=22,
                           alpha=0.9, color=cmap[feature], marker=marker, edgecolors="none", clip_on=False)
        beyond = int((~panel["estimate"].between(low, high)).sum())
        error = float(np.median(np.abs(panel["estimate"] - panel["truth"]))) if len(panel) else float("nan")
        note = f", {beyond} off axis (▲▼)" if beyond else ""
        ax.set_title(f"{stage}: median |error| {error:.3f}{note}")
        ax.set_xlabel("true log relative risk (party's reference coding)")
        ax.grid(linewidth=0.3, alpha=0.6)
    axes[0, 0].set_ylim(low, high)
    axes[0, 0].set_ylabel("pooled estimate, mean over seeds")
    for ax in axes.flat:
        x_low, x_high = ax.get_xlim()
        ax.plot([x_low, x_high], [x_low, x_high], color="black", linestyle="--", linewidth=0.8)
    figure.legend(handles=axes[0, 0].get_legend_handles_labels()[0], loc="outside lower center", ncols=len(FEATURES),
                  frameon=False)
    figure.suptitle(f"Coefficients vs simulated truth ({settings['scenario']}, ε = {fmt(settings['epsilon'])}, "
                    f"f = {fmt(settings['fraction'])}); dashed: estimate = truth", fontsize=10)
    return Rendered({name: figure}, {name: table})
