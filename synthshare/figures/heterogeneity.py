"""The heterogeneity sweep's products (issue 16): gain from partners vs between-centre SD.

Inputs: one ``ll.parquet`` per level of the sweep (``synthshare.sweep``), each the
whole pipeline on a cohort whose centres' log relative risks deviate with that SD. At
each level and for every centre party (the reference ε and f):

* the gain of random orders: median log-likelihood at step j − local only, every j
  (Fig 2's curves), and at the last step (all partners);
* the gain of partner selection with local data alone (variant ``selected``: the
  partners chosen greedily on a held-out half of the party's data, then the full
  local data ∪ their synthetic sets scored on the test set like every other step);
* the paper's "a good party peaks after 1–2 partners, then drops" claim
  (``synthshare.figures.claims.good_party_peaks_early``), and whether selection avoids
  the drop where random orders suffer it: for each party whose random-order curve peaks
  before the last step and ends significantly lower (one-sided ranked Welch, peak >
  last), whether the selected model beats the last step (one-sided ranked Welch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib import ticker
from scipy import stats as sps

from synthshare.figures.boxplots import new_figure
from synthshare.figures.claims import good_party_peaks_early
from synthshare.figures.output import Rendered
from synthshare.figures.readers import read_ll, samples_by
from synthshare.figures.samples import local_only, representative_parties
from synthshare.figures.stats import ALPHA, compare
from synthshare.naming import format_number as fmt

GAIN_COLUMNS = ("sd", "party", "local_median", "last_median", "peak_step", "peak_median", "drop_pvalue",
                "selected_partners", "selected_median", "selected_vs_last_pvalue")


def level_tables(ll: str | Path, sd: float, parties: Sequence[str], epsilon: float,
                 fraction: float) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """One level's rows of :data:`GAIN_COLUMNS` (one per party) and its Fig 2 curves: the
    median test log-likelihood per party and step over seeds × orders × draws (variant
    ``full``: step 0 local only, steps 1… random orders). ``ll.parquet`` is read once."""
    where = {"scenario": "centres", "epsilon": float(epsilon), "fraction": float(fraction)}
    full = read_ll(ll, columns=("party", "step", "ll"), party=list(parties), variant="full", **where)
    chosen = read_ll(ll, columns=("party", "seed", "step", "ll"), party=list(parties), variant="selected", **where)
    samples = samples_by(full, ["party", "step"])
    selected = samples_by(chosen, "party")
    rows = []
    for party in parties:
        steps = sorted(step for (p, step) in samples if p == party)
        medians = {step: float(np.median(samples[(party, step)])) for step in steps}
        last = steps[-1]
        peak = max((s for s in steps if s >= 1), key=lambda s: medians[s])
        drop = compare(samples[(party, peak)], samples[(party, last)], "greater").pvalue if peak != last else np.nan
        picked = selected.get(party)
        partners = chosen.loc[chosen["party"] == party].groupby("seed")["step"].first()
        rows.append({
            "sd": float(sd), "party": party, "local_median": medians[0], "last_median": medians[last],
            "peak_step": int(peak), "peak_median": medians[peak], "drop_pvalue": float(drop),
            "selected_partners": float(partners.mean()) if len(partners) else np.nan,
            "selected_median": float(np.median(picked)) if picked is not None else np.nan,
            "selected_vs_last_pvalue": (compare(picked, samples[(party, last)], "greater").pvalue
                                        if picked is not None else np.nan),
        })
    curves = full.groupby(["party", "step"], sort=True)["ll"].median().rename("median").reset_index()
    return rows, curves


def sweep_claims(paths: Sequence[str | Path], sds: Sequence[float], table: pd.DataFrame, settings: dict[str, Any]) -> pd.DataFrame:
    """Per level: the paper's "good party peaks early" claim, and whether selection avoids
    the drop; over levels: does the gain of all partners shrink as heterogeneity grows."""
    rows = []
    s = {"parties": list(settings["parties"]), "epsilon": float(settings["epsilon"]), "fraction": float(settings["fraction"])}
    for sd, ll in zip(sds, paths, strict=True):
        peak = good_party_peaks_early(Path(ll), s)
        rows.append({"sd": float(sd), "claim_id": "good_party_peaks_early",
                     "claim": "A party with a good local fit gains from 1-2 parties' data, then drops",
                     "value": peak["value"], "pvalue": peak["pvalue"], "holds": peak["holds"], "detail": peak["detail"]})
        level = table[table["sd"] == float(sd)]
        dropping = level[(level["peak_step"] < len(s["parties"]) - 1) & (level["drop_pvalue"] <= ALPHA)]
        if dropping.empty:
            rows.append({"sd": float(sd), "claim_id": "selection_avoids_drop",
                         "claim": "Choosing partners with local data alone avoids the drop of random orders",
                         "value": np.nan, "pvalue": np.nan, "holds": None,
                         "detail": "not tested at this level: no party's random-order curve drops significantly after its peak"})
        else:
            better = int((dropping["selected_vs_last_pvalue"] <= ALPHA).sum())
            pvalue = float(sps.binomtest(better, len(dropping), 0.5, alternative="greater").pvalue)
            detail = "; ".join(f"{r.party}: peak at {r.peak_step}, selected {r.selected_partners:.1f} partners, "
                               f"selected - last {r.selected_median - r.last_median:+.4f} (p = {r.selected_vs_last_pvalue:.2g})"
                               for r in dropping.itertuples())
            rows.append({"sd": float(sd), "claim_id": "selection_avoids_drop",
                         "claim": "Choosing partners with local data alone avoids the drop of random orders",
                         "value": better / len(dropping), "pvalue": pvalue,
                         "holds": bool(better / len(dropping) > 0.5 and pvalue <= ALPHA), "detail": detail})
    gains = table.assign(gain=table["last_median"] - table["local_median"])
    rho, p = sps.spearmanr(gains["sd"], gains["gain"]) if gains["sd"].nunique() > 1 else (np.nan, np.nan)
    one_sided = float(p / 2 if rho < 0 else 1 - p / 2) if np.isfinite(p) else np.nan
    rows.append({"sd": np.nan, "claim_id": "gain_shrinks_with_heterogeneity",
                 "claim": "The gain from all partners' synthetic data shrinks as centres' relative risks differ more",
                 "value": float(rho), "pvalue": one_sided, "holds": bool(rho < 0 and one_sided <= ALPHA) if np.isfinite(one_sided) else None,
                 "detail": "Spearman correlation of the SD with each party's median gain at the last step; p one-sided (rho < 0); "
                           + ", ".join(f"SD {fmt(sd)}: median gain {g['gain'].median():+.4f}" for sd, g in gains.groupby("sd"))})
    return pd.DataFrame(rows, columns=["sd", "claim_id", "claim", "value", "pvalue", "holds", "detail"])


def robust_limits(values: np.ndarray, reach: float = 3.0) -> tuple[float, float]:
    """y-limits that keep the bulk of ``values``: the quartiles ± ``reach`` IQRs, within the
    data, always including 0. A party whose local-only fit is catastrophic (a level
    without positive records: its draws give log-likelihoods like −1e34) would otherwise
    flatten every other curve; such points are drawn as triangles on the axis edge."""
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return -1.0, 1.0
    q1, q3 = np.percentile(finite, [25, 75])
    spread = max(q3 - q1, 1e-3)
    low = max(finite.min(), q1 - reach * spread)
    high = min(finite.max(), q3 + reach * spread)
    low, high = min(low, 0.0), max(high, 0.0)
    margin = 0.05 * (high - low)
    return low - margin, high + margin


def _edge_markers(ax, x: np.ndarray, y: np.ndarray, limits: tuple[float, float], colour: str) -> int:
    """Triangles on the axis edge for the points beyond ``limits``; returns their number."""
    low, high = limits
    above, below = y > high, y < low
    ax.scatter(x[above], np.full(int(above.sum()), high), marker="^", s=24, color=colour, clip_on=False, zorder=5)
    ax.scatter(x[below], np.full(int(below.sum()), low), marker="v", s=24, color=colour, clip_on=False, zorder=5)
    return int(above.sum() + below.sum())


def heterogeneity_figures(paths: Sequence[str | Path], settings: dict[str, Any]) -> Rendered:
    """``heterogeneity_gain``: per party the gain (median − local-only median) of all
    partners (random orders, last step) and of the selected partners, vs the SD;
    ``heterogeneity_steps``: Fig 2's gain-by-step curves of every party, one panel per
    SD, the good local party in black and each party's selected model as a marker at its
    mean number of chosen partners."""
    sds = [float(v) for v in settings["sds"]]
    parties = list(settings["parties"])
    epsilon, fraction = float(settings["epsilon"]), float(settings["fraction"])
    levels = [level_tables(ll, sd, parties, epsilon, fraction) for sd, ll in zip(sds, paths, strict=True)]
    table = pd.DataFrame([row for rows, _ in levels for row in rows], columns=list(GAIN_COLUMNS))
    all_curves = {sd: curves for sd, (_, curves) in zip(sds, levels)}
    claims = sweep_claims(paths, sds, table, settings)

    gain_fig, gain_axes = new_figure(6.4, 4.2)
    ax = gain_axes[0, 0]
    offsets = {"all partners (random orders)": -0.012, "selected partners": 0.012}
    series = (("all partners (random orders)", "last_median"), ("selected partners", "selected_median"))
    limits = robust_limits(np.concatenate([(table[c] - table["local_median"]).to_numpy() for _, c in series]))
    off_axis = 0
    for (label, column), colour in zip(series, ("C0", "C3")):
        x = (table["sd"] + offsets[label]).to_numpy()
        y = (table[column] - table["local_median"]).to_numpy()
        inside = (y >= limits[0]) & (y <= limits[1])
        ax.scatter(x[inside], y[inside], s=10, alpha=0.6, color=colour, edgecolors="none", label=f"{label}: a party")
        off_axis += _edge_markers(ax, x, y, limits, colour)
        medians = (table.assign(gain=y).groupby("sd")["gain"].median())
        ax.plot(medians.index + offsets[label], medians.to_numpy(), color=colour, linewidth=1.5)
    ax.set_ylim(*limits)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(sds, [fmt(v) for v in sds])
    ax.set_xlabel("between-centre SD of the log relative risks")
    ax.set_ylabel("gain in median test log-likelihood\n(combined − local only)")
    ax.grid(linewidth=0.3, alpha=0.6)
    ax.legend(fontsize=7, frameon=False)
    note = f"; {off_axis} off axis (▲▼)" if off_axis else ""
    ax.set_title(f"Gain vs heterogeneity (ε = {fmt(epsilon)}, f = {fmt(fraction)}; lines: medians{note})", fontsize=9)

    steps_fig, steps_axes = new_figure(4.0 * len(sds), 4.0, 1, len(sds), sharey=True)
    gains = [curve["median"].to_numpy() - float(table[(table["sd"] == sd) & (table["party"] == p)]["local_median"].iloc[0])
             for sd, curves in all_curves.items() for p, curve in curves.groupby("party")]
    step_limits = robust_limits(np.concatenate(gains + [(table["selected_median"] - table["local_median"]).to_numpy()]))
    for ax, sd, ll in zip(steps_axes.flat, sds, paths, strict=True):
        curves = all_curves[sd]
        off_axis = 0
        local = local_only(ll, parties, scenario="centres", epsilon=epsilon, fraction=fraction)
        good = list(representative_parties(local))[-1]
        level = table[table["sd"] == sd].set_index("party")
        for party, curve in curves.groupby("party"):
            base = float(level.loc[party, "local_median"])
            highlight = party == good
            ax.plot(curve["step"], curve["median"] - base, color="black" if highlight else "C0",
                    linewidth=1.6 if highlight else 0.6, alpha=1.0 if highlight else 0.5,
                    label=f"{good} (good local fit)" if highlight else None, zorder=3 if highlight else 2)
            ax.scatter([level.loc[party, "selected_partners"]], [level.loc[party, "selected_median"] - base], marker="x",
                       s=22 if highlight else 10, color="C3" if not highlight else "darkred", zorder=4,
                       label="selected partners" if highlight else None)
            gain = curve["median"].to_numpy() - base
            off_axis += int(((gain < step_limits[0]) | (gain > step_limits[1])).any())
        ax.set_ylim(*step_limits)
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        note = f"; {off_axis} part{'y leaves' if off_axis == 1 else 'ies leave'} the axis" if off_axis else ""
        ax.set_title(f"SD {fmt(sd)}{note}", fontsize=9)
        ax.set_xlabel("partners added (step)")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(linewidth=0.3, alpha=0.6)
    steps_axes[0, 0].set_ylabel("median gain over local only")
    steps_axes[0, 0].legend(fontsize=7, frameon=False, loc="lower right")
    steps_fig.suptitle(f"Fig 2's curves per heterogeneity level (every party; ε = {fmt(epsilon)}, f = {fmt(fraction)})",
                       fontsize=10)
    return Rendered({"heterogeneity_gain": gain_fig, "heterogeneity_steps": steps_fig},
                    {"heterogeneity_gain": table, "heterogeneity_claims": claims})
