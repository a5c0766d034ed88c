"""Box plots drawn the way the paper draws them.

Quartile boxes with the median, whiskers to the furthest sample within 1.5 IQR, no
fliers, a dashed black line at the full-population log-likelihood, and, where one box
lies far below all others (the paper's Barts, local median about -3.65), the main axis
clipped above it with that box's median written at the bottom edge. The "S" versions
of the figures are drawn with ``clip=False``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display (rule jobs and CI have none)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from synthshare.figures.stats import box_stats  # noqa: E402

DPI = 150
LL_LABEL = "test log-likelihood per record"
REFERENCE_LABEL = "full population"
OFFSCALE_RATIO = 3.0
"""Clip when the boxes' span without the low outlier(s) is under 1/3 of the full span."""
MAX_OFFSCALE = 2

plt.rcParams.update({
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "pdf.fonttype": 42,
    # Same input, same bytes: no creation date in the PDF, no software-version chunk shifts.
    "svg.hashsalt": "synthshare",
})


@dataclass(frozen=True)
class Hue:
    """A kind of box: its key, legend label and colour."""

    key: str
    label: str
    color: str


LOCAL = Hue("local", "local only", "#ff7f0e")
COMBINED = Hue("combined", "combined (local + synthetic)", "#1f77b4")
NO_ETHNICITY = Hue("no_ethnicity", "local only, without ethnicity", "#2ca02c")


@dataclass(frozen=True)
class Box:
    """One box to draw: its x group (tick label), its hue and its sample."""

    group: str
    hue: Hue
    values: np.ndarray


@dataclass(frozen=True)
class DrawnBox:
    """A drawn box: where it is and its statistics (``box_stats`` keys)."""

    group: str
    hue: Hue
    x: float
    stats: dict


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **kwargs) -> tuple[plt.Figure, np.ndarray]:
    """A figure of exactly ``width`` x ``height`` inches (``DPI`` for PNGs) and its axes grid.

    Constrained layout keeps labels inside the canvas without changing its size, so a
    PNG is always ``round(width·DPI)`` x ``round(height·DPI)`` pixels.
    """
    figure, axes = plt.subplots(rows, cols, figsize=(width, height), dpi=DPI, layout="constrained",
                                squeeze=False, **kwargs)
    return figure, axes


def draw_boxes(ax: Axes, groups: Sequence[str], boxes: Sequence[Box], width: float = 0.8) -> list[DrawnBox]:
    """Draw ``boxes`` side by side within their groups at x = 0, 1, ... (group order).

    Boxes of one group are placed in the order given, centred on the group; every box has
    the same width (``width`` divided by the most boxes any group has).
    """
    positions = {g: i for i, g in enumerate(groups)}
    per_group: dict[str, list[Box]] = {g: [] for g in groups}
    for box in boxes:
        if box.group not in positions:
            raise ValueError(f"draw_boxes: box group {box.group!r} not among {list(groups)}")
        per_group[box.group].append(box)
    most = max((len(b) for b in per_group.values()), default=1)
    box_width = width / most
    drawn: list[DrawnBox] = []
    for group, members in per_group.items():
        for i, box in enumerate(members):
            x = positions[group] + (i - (len(members) - 1) / 2) * box_width
            stats = box_stats(box.values, label=f"{group} {box.hue.key}")
            ax.bxp([stats], positions=[x], widths=box_width * 0.85, showfliers=False, patch_artist=True,
                   manage_ticks=False,
                   boxprops={"facecolor": box.hue.color, "edgecolor": "black", "linewidth": 0.8},
                   medianprops={"color": "black", "linewidth": 1.2},
                   whiskerprops={"linewidth": 0.8}, capprops={"linewidth": 0.8})
            drawn.append(DrawnBox(group, box.hue, x, stats))
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_xlim(-0.6, len(groups) - 0.4)
    return drawn


def find_offscale(drawn: Sequence[DrawnBox], reference: float | None = None,
                  ratio: float = OFFSCALE_RATIO, max_offscale: int = MAX_OFFSCALE) -> list[int]:
    """Indices of boxes lying so far below the rest that the axis is clipped above them.

    The k boxes with the lowest medians (k = 1 ... ``max_offscale`` and at most a fifth
    of the boxes, smallest k first)
    are off scale when each of their medians is below every other box's lower whisker
    (and the reference line) and the other boxes span less than ``1/ratio`` of the
    span of all boxes. Empty when no k qualifies.
    """
    if len(drawn) < 2:
        return []
    top = max(d.stats["whishi"] for d in drawn)
    if reference is not None:
        top = max(top, reference)
    bottom = min(d.stats["whislo"] for d in drawn)
    by_median = sorted(range(len(drawn)), key=lambda i: drawn[i].stats["med"])
    # An outlier is rare by definition: at most one box in five (at least one) is cut off.
    for k in range(1, min(max_offscale, max(1, len(drawn) // 5)) + 1):
        low, rest = by_median[:k], by_median[k:]
        rest_bottom = min(drawn[i].stats["whislo"] for i in rest)
        if reference is not None:
            rest_bottom = min(rest_bottom, reference)
        below = all(drawn[i].stats["med"] < rest_bottom for i in low)
        if below and (top - bottom) > ratio * max(top - rest_bottom, 1e-12):
            return sorted(low)
    return []


def finish_axis(ax: Axes, drawn: Sequence[DrawnBox], reference: float | None, clip: bool,
                stars: dict[str, str] | None = None, describe=lambda box: box.group,
                ylabel: str | None = LL_LABEL) -> list[DrawnBox]:
    """Reference line, y-limits (clipped above off-scale boxes when ``clip``), stars, y label.

    ``stars`` maps a group to the text written above its boxes. ``describe(box)`` names an
    off-scale box in its annotation; ``ylabel`` None leaves the label to the figure (grids).
    Returns the boxes left off the main axis.
    """
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1.0, zorder=0.5)
    offscale = find_offscale(drawn, reference) if clip else []
    kept = [d for i, d in enumerate(drawn) if i not in offscale]
    values = [d.stats["whislo"] for d in kept] + [d.stats["whishi"] for d in kept]
    if reference is not None:
        values.append(reference)
    low, high = min(values), max(values)
    span = max(high - low, 1e-9)
    bottom = low - (0.16 if offscale else 0.05) * span
    top = high + (0.12 if stars else 0.05) * span
    ax.set_ylim(bottom, top)
    if stars:
        for group, text in stars.items():
            members = [d for d in kept if d.group == group]
            if not members or not text:
                continue
            x = float(np.mean([d.x for d in members]))
            y = max(d.stats["whishi"] for d in members) + 0.015 * span
            # White backing: a star may sit on the dashed reference line.
            ax.text(x, min(y, top - 0.06 * span), text, ha="center", va="bottom", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3})
    for index in offscale:
        box = drawn[index]
        ax.annotate(f"{describe(box)}\nmedian {box.stats['med']:.2f}", xy=(box.x, bottom), xycoords="data",
                    xytext=(box.x, bottom + 0.1 * span), textcoords="data", ha="center", va="bottom", fontsize=7,
                    arrowprops={"arrowstyle": "->", "color": box.hue.color, "linewidth": 1.2},
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": box.hue.color, "linewidth": 0.6})
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    return [drawn[i] for i in offscale]


def legend_handles(hues: Sequence[Hue], reference: bool = True) -> list:
    """Legend entries: a patch per hue and the dashed full-population line."""
    handles: list = [Patch(facecolor=h.color, edgecolor="black", linewidth=0.8, label=h.label) for h in hues]
    if reference:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.0, label=REFERENCE_LABEL))
    return handles


def figure_legend(figure: plt.Figure, hues: Sequence[Hue], reference: bool = True, below: bool = False) -> None:
    """One legend for the whole figure, above the panels (``below``: under them, for
    figures whose top carries a title over several panels)."""
    handles = legend_handles(hues, reference)
    # About 2.3 inches per entry; narrow figures get a legend in two rows.
    columns = min(len(handles), max(1, int(figure.get_figwidth() / 2.3)))
    if columns < len(handles):
        columns = math.ceil(len(handles) / 2)
    figure.legend(handles=handles, loc="outside lower center" if below else "outside upper center",
                  ncols=columns, frameon=False)


def grid_labels(figure: plt.Figure, axes: np.ndarray, title: str, xlabel: str, ylabel: str = LL_LABEL) -> None:
    """Shared title and y label of a grid of panels; the x label under each bottom panel
    (a figure-level x label would collide with a legend below the panels)."""
    figure.suptitle(title, fontsize=10)
    figure.supylabel(ylabel, fontsize=9)
    rows, cols = axes.shape
    for r in range(rows):
        for c in range(cols):
            below_hidden = r + 1 == rows or not axes[r + 1, c].get_visible()
            if axes[r, c].get_visible() and below_hidden:
                axes[r, c].set_xlabel(xlabel)


def paired_groups_figure(groups: Sequence[str], pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                         stars: dict[str, str], reference: float | None, xlabel: str, title: str,
                         inches_per_group: float = 1.1) -> plt.Figure:
    """Local only vs combined side by side for each group (Figs 3 and 5, the uniform splits).

    ``pairs[i]`` is (local, combined) log-likelihood samples of ``groups[i]``; ``stars``
    maps a group to the significance text drawn above its pair.
    """
    boxes = [box for group, (local, combined) in zip(groups, pairs)
             for box in (Box(group, LOCAL, local), Box(group, COMBINED, combined))]
    figure, axes = new_figure(max(6.0, inches_per_group * len(groups) + 2.0), 4.4)
    ax = axes[0, 0]
    drawn = draw_boxes(ax, groups, boxes)
    finish_axis(ax, drawn, reference, clip=False, stars=stars)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    figure_legend(figure, (LOCAL, COMBINED))
    return figure
