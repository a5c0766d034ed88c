"""The paper's Figures 1-6 and S1-S4 with the p-values behind them (method.md, "Figures").

Every function takes the analysis stage's ``ll.parquet`` and ``reference.parquet`` and
the product's settings (``synthshare.figures.catalogue``) and returns a
:class:`~synthshare.figures.output.Rendered` (figures + tables). The y-axis is always
the per-record average Poisson log-likelihood on the evaluation set; the dashed line is
the full-population fit's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthshare.figures.boxplots import (
    COMBINED, LOCAL, NO_ETHNICITY, Box, draw_boxes, figure_legend, finish_axis, grid_labels, new_figure,
    paired_groups_figure,
)
from synthshare.figures.output import Rendered
from synthshare.figures.readers import read_reference
from synthshare.figures.samples import (
    local_and_combined, local_only, percent, rank_by_local_median, representative_parties, steps_of, summary_row,
)
from synthshare.figures.stats import compare
from synthshare.naming import format_number as fmt

STEP_LABEL = "other parties' synthetic data added"


def _title_setting(epsilon: float, fraction: float) -> str:
    return f"ε = {fmt(epsilon)}, local data fraction f = {fmt(fraction)}"


def _last_step(settings: dict[str, Any]) -> int:
    return len(settings["parties"]) - 1


# --- Fig 1 (S1, S3): every party, local only vs combined with all others -----------------

def party_comparison(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Fig 1 (or S1): per party, local only vs combined with all others, sorted by local median.

    One-sided ranked Welch test "combined > local only" per party (table ``name``). With
    ``settings["full_figure"]`` also the unclipped version (S3).
    """
    epsilon, fraction = float(settings["epsilon"]), float(settings["fraction"])
    samples = local_and_combined(ll, settings["parties"], _last_step(settings), scenario="centres",
                                 epsilon=epsilon, fraction=fraction)
    ref = read_reference(reference)
    order = rank_by_local_median({p: s[0] for p, s in samples.items()})
    comparisons = {p: compare(samples[p][1], samples[p][0], "greater") for p in order}
    table = pd.DataFrame([{"party": p, "epsilon": epsilon, "fraction": fraction,
                           **comparisons[p].row("combined", "local")} for p in order])
    stars = {p: comparisons[p].stars for p in order}
    boxes = [Box(p, hue, samples[p][i]) for p in order for i, hue in enumerate((LOCAL, COMBINED))]
    title = f"Local only vs combined with all other parties\n{_title_setting(epsilon, fraction)}"
    rendered = Rendered(tables={name: table})
    rendered.figures[name] = _party_figure(order, boxes, ref, stars, title, clip=True)
    if settings.get("full_figure"):
        rendered.figures[settings["full_figure"]] = _party_figure(order, boxes, ref, stars, title + " (full range)", clip=False)
    return rendered


def _party_figure(order: list[str], boxes: list[Box], reference: float, stars: dict[str, str], title: str, clip: bool):
    figure, axes = new_figure(max(6.0, 0.55 * len(order) + 1.8), 4.4)
    ax = axes[0, 0]
    drawn = draw_boxes(ax, order, boxes)
    finish_axis(ax, drawn, reference, clip, stars=stars, describe=lambda b: f"{b.group}, {b.hue.label}")
    ax.set_xlabel("party (sorted by local-only median)")
    ax.tick_params(axis="x", labelrotation=40)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.set_title(title)
    figure_legend(figure, (LOCAL, COMBINED))
    return figure


# --- Fig 2 (S2, S4): log-likelihood vs number of parties added ---------------------------

def steps_figure(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Fig 2 (or S2): log-likelihood vs the number of other parties' synthetic sets added.

    Panels for the bad, intermediate and good party by local-only median; with
    ``settings["full_figure"]`` every party (S4). Table ``name``: every party and step
    with the one-sided ranked Welch test "step j > step j-1" (the paper's Table S4).
    """
    epsilon, fraction = float(settings["epsilon"]), float(settings["fraction"])
    where = {"scenario": "centres", "epsilon": epsilon, "fraction": fraction}
    last = _last_step(settings)
    local = local_only(ll, settings["parties"], **where)
    roles = representative_parties(local)
    ranked = rank_by_local_median(local)
    ref = read_reference(reference)
    full_name = settings.get("full_figure")
    shown = ranked if full_name else list(roles)
    panels: dict[str, dict[int, np.ndarray]] = {}
    rows = []
    for party in ranked:  # one party at a time: at paper scale a party has 1.5 M rows
        by_step = steps_of(ll, party, last, **where)
        for step, values in by_step.items():
            row = {"party": party, "role": roles.get(party, ""), "epsilon": epsilon, "fraction": fraction,
                   "step": step, **summary_row(values)}
            if step > 0:
                test = compare(values, by_step[step - 1], "greater")
                row.update(statistic=test.statistic, pvalue=test.pvalue, alternative=test.alternative, stars=test.stars)
            rows.append(row)
        if party in roles or full_name:
            panels[party] = by_step
        del by_step
    table = pd.DataFrame(rows)
    title = f"Log-likelihood as other parties' synthetic data is added ({_title_setting(epsilon, fraction)})"
    rendered = Rendered(tables={name: table})
    rendered.figures[name] = _steps_grid(list(roles), panels, roles, ref, title, clip=True, cols=3)
    if full_name:
        rendered.figures[full_name] = _steps_grid(shown, panels, roles, ref, title + ", every party", clip=False, cols=4)
    return rendered


def _steps_grid(parties: list[str], panels: dict[str, dict[int, np.ndarray]], roles: dict[str, str],
                reference: float, title: str, clip: bool, cols: int):
    cols = min(cols, len(parties))
    rows = math.ceil(len(parties) / cols)
    steps = max(len(v) for v in panels.values())
    width = max(3.2, 0.28 * steps + 1.4) * cols
    figure, axes = new_figure(width, 3.0 * rows + 0.6, rows, cols)
    for ax in axes.flat[len(parties):]:
        ax.set_visible(False)
    for ax, party in zip(axes.flat, parties):
        by_step = panels[party]
        groups = [str(s) for s in by_step]
        boxes = [Box(str(s), LOCAL if s == 0 else COMBINED, v) for s, v in by_step.items()]
        drawn = draw_boxes(ax, groups, boxes, width=0.7)
        finish_axis(ax, drawn, reference, clip, describe=lambda b: "local only", ylabel=None)
        ax.set_title(f"{party} ({roles[party]})" if party in roles else party)
        if len(groups) > 10:
            for label in ax.get_xticklabels()[1::2]:
                label.set_visible(False)
    grid_labels(figure, axes, title + "; 0 = local only", STEP_LABEL)
    figure_legend(figure, (LOCAL, COMBINED), below=True)
    return figure


# --- Fig 3: one party across local data fractions --------------------------------------

def fraction_figure(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Fig 3: the fraction party, local only vs combined at every local data fraction f.

    One-sided ranked Welch "combined > local only" per f (table ``name``).
    """
    party, epsilon = settings["party"], float(settings["epsilon"])
    ref = read_reference(reference)
    pairs, stars, rows = [], {}, []
    groups = [percent(f) for f in settings["fractions"]]
    for fraction, group in zip(settings["fractions"], groups):
        local, combined = local_and_combined(ll, [party], _last_step(settings), scenario="centres",
                                             epsilon=epsilon, fraction=float(fraction))[party]
        test = compare(combined, local, "greater")
        rows.append({"party": party, "epsilon": epsilon, "fraction": float(fraction), **test.row("combined", "local")})
        pairs.append((local, combined))
        stars[group] = test.stars
    figure = paired_groups_figure(groups, pairs, stars, ref, "local data fraction f (every party subsampled)",
                                  f"{party}: local only vs combined across local data sizes\nε = {fmt(epsilon)}",
                                  inches_per_group=1.2)
    return Rendered({name: figure}, {name: pd.DataFrame(rows)})


# --- Fig 4: local, local without ethnicity, combined ------------------------------------

def ethnicity_figure(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Fig 4: the fraction party at f = 1: local only, local only without ethnicity, combined.

    Two-sided ranked Welch tests between every pair (table ``name``).
    """
    party, epsilon, fraction = settings["party"], float(settings["epsilon"]), float(settings["fraction"])
    where = {"scenario": "centres", "epsilon": epsilon, "fraction": fraction}
    local, combined = local_and_combined(ll, [party], _last_step(settings), **where)[party]
    no_ethnicity = local_only(ll, [party], variant="no_ethnicity", **where)[party]
    ref = read_reference(reference)
    samples = {"local": local, "no_ethnicity": no_ethnicity, "combined": combined}
    rows = []
    for a, b in (("combined", "local"), ("no_ethnicity", "local"), ("combined", "no_ethnicity")):
        test = compare(samples[a], samples[b], "two-sided")
        rows.append({"party": party, "epsilon": epsilon, "fraction": fraction, "a": a, "b": b, **test.row("a", "b")})
    hues = (LOCAL, NO_ETHNICITY, COMBINED)
    groups = ["local only", "local only,\nwithout ethnicity", "combined"]
    boxes = [Box(g, h, samples[h.key]) for g, h in zip(groups, hues)]
    figure, axes = new_figure(6.0, 4.6)
    ax = axes[0, 0]
    drawn = draw_boxes(ax, groups, boxes, width=0.5)
    finish_axis(ax, drawn, ref, clip=False)
    ax.set_title(f"{party}, all local data (f = {fmt(fraction)}, ε = {fmt(epsilon)})")
    figure_legend(figure, hues)
    return Rendered({name: figure}, {name: pd.DataFrame(rows)})


# --- Fig 5: the skewed party --------------------------------------------------------------

def skew_figure(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str) -> Rendered:
    """Fig 5: the skewed party, local only vs combined at every skew fraction.

    The skewed party receives every centre's synthetic data (last step = number of
    centres) and is scored on the South Asian records of test half B (dashed line: the
    full-population fit on that set). Two-sided ranked Welch per skew fraction.
    """
    epsilon = float(settings["epsilon"])
    last = len(settings["parties"])
    ref = read_reference(reference, evaluation="skew_eval")
    pairs, stars, rows = [], {}, []
    groups = [percent(s) for s in settings["skews"]]
    for skew, group in zip(settings["skews"], groups):
        local, combined = local_and_combined(ll, ["skewed"], last, scenario="skew", epsilon=epsilon,
                                             fraction=1.0, skew=float(skew))["skewed"]
        test = compare(combined, local, "two-sided")
        rows.append({"party": "skewed", "epsilon": epsilon, "skew": float(skew), **test.row("combined", "local")})
        pairs.append((local, combined))
        stars[group] = test.stars
    figure = paired_groups_figure(groups, pairs, stars, ref,
                                  "share of (South Asian, positive) records kept\n(smaller = stronger skew)",
                                  f"Skewed party: local only vs combined with all centres (ε = {fmt(epsilon)})\n"
                                  "scored on the South Asian records of test half B")
    return Rendered({name: figure}, {name: pd.DataFrame(rows)})


# --- Fig 6: the ε sweep ------------------------------------------------------------------

def epsilon_figure(ll: str | Path, reference: str | Path, settings: dict[str, Any], name: str,
                   every_party: bool = False) -> Rendered:
    """Fig 6: combined at every ε vs local only, for the bad/intermediate/good party.

    ``every_party``: a panel per party instead (the "ll vs ε for every party" figure).
    Local only is scored at the reference ε (it involves no sharing: effectively ε = 0).
    One-sided ranked Welch "combined at ε > local only" (table ``name``).
    """
    parties, fraction = settings["parties"], float(settings["fraction"])
    ref_eps = float(settings["reference_epsilon"])
    last = _last_step(settings)
    base = local_and_combined(ll, parties, last, scenario="centres", epsilon=ref_eps, fraction=fraction)
    local = {p: v[0] for p, v in base.items()}
    roles = representative_parties(local)
    shown = rank_by_local_median(local) if every_party else list(roles)
    combined = {ref_eps: {p: v[1] for p, v in base.items()}}
    for epsilon in settings["epsilons"]:
        if float(epsilon) != ref_eps:
            pairs = local_and_combined(ll, shown, last, scenario="centres", epsilon=float(epsilon), fraction=fraction)
            combined[float(epsilon)] = {p: v[1] for p, v in pairs.items()}
    epsilons = [float(e) for e in settings["epsilons"]]
    ref = read_reference(reference)
    rows = []
    cols = 4 if every_party else 3
    cols = min(cols, len(shown))
    nrows = math.ceil(len(shown) / cols)
    figure, axes = new_figure(max(3.4 * cols, 6.0), 3.2 * nrows + 0.6, nrows, cols)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, party in zip(axes.flat, shown):
        groups = ["local\nonly"] + [f"ε = {fmt(e)}" for e in epsilons]
        boxes = [Box(groups[0], LOCAL, local[party])]
        stars = {}
        for epsilon, group in zip(epsilons, groups[1:]):
            test = compare(combined[epsilon][party], local[party], "greater")
            rows.append({"party": party, "role": roles.get(party, ""), "epsilon": epsilon, "fraction": fraction,
                         **test.row("combined", "local")})
            boxes.append(Box(group, COMBINED, combined[epsilon][party]))
            stars[group] = test.stars
        drawn = draw_boxes(ax, groups, boxes, width=0.6)
        finish_axis(ax, drawn, ref, clip=True, stars=stars, describe=lambda b: "local only", ylabel=None)
        ax.set_title(f"{party} ({roles[party]})" if party in roles else party)
    grid_labels(figure, axes, f"Combined with all other parties vs local only across ε (f = {fmt(fraction)})",
                "privacy level ε of the shared data")
    figure_legend(figure, (LOCAL, COMBINED), below=True)
    return Rendered({name: figure}, {name: pd.DataFrame(rows)})
