"""The audit's figures: ROC curves on log axes, and per-target AUCs (outliers vs typical).

- :func:`roc_figure`: one panel per audited party (row) and attack (column); per arm
  the ROC of the vulnerable targets' fits pooled (solid) and, for the DP arms, the
  optimal attacker's curve under the ledger's (ε, δ) (dotted, same colour; TPR ≤
  e^ε·FPR + δ and its complement, :func:`synthshare.audit.metrics.optimal_tpr`); the
  grey diagonal is guessing. Log axes: points at FPR = 0 or TPR = 0 are not drawn.
- :func:`per_target_figure`: per party and attack, every target's AUC over its own
  fits, by arm; vulnerable targets filled, typical ones open, the permutation p-value
  of "vulnerable > typical" per arm above.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synthshare.audit.metrics import optimal_tpr  # noqa: E402
from synthshare.audit.scores import ATTACK_LABELS, ATTACKS  # noqa: E402
from synthshare.audit.settings import CONTROL  # noqa: E402
from synthshare.naming import format_number  # noqa: E402

_FLOOR = 1e-3
"""Lower end of the log axes."""


def _arms(frame: pd.DataFrame) -> list[str]:
    """DP arms by ε, then the control."""
    arms = sorted(set(frame["arm"]) - {CONTROL}, key=lambda a: float(a[3:]))
    return arms + ([CONTROL] if CONTROL in set(frame["arm"]) else [])


def _colours(arms: list[str]) -> dict[str, str]:
    palette = plt.get_cmap("viridis")(np.linspace(0.15, 0.75, max(1, len(arms) - 1)))
    colours = {arm: matplotlib.colors.to_hex(palette[i]) for i, arm in enumerate(a for a in arms if a != CONTROL)}
    colours[CONTROL] = "#d62728"
    return colours


def _label(arm: str) -> str:
    return "non-DP control" if arm == CONTROL else f"DP ε = {arm[3:]}"


def _parties(frame: pd.DataFrame) -> list[tuple[str, float]]:
    return sorted({(p, float(f)) for p, f in zip(frame["party"], frame["fraction"])}, key=lambda k: (k[1], k[0]))


def roc_figure(roc: pd.DataFrame, summary: pd.DataFrame, group: str = "vulnerable") -> plt.Figure:
    parties, arms = _parties(summary), _arms(summary)
    colours = _colours(arms)
    figure, axes = plt.subplots(len(parties), len(ATTACKS), figsize=(3.6 * len(ATTACKS), 3.3 * len(parties)),
                                squeeze=False, sharex=True, sharey=True)
    grid = np.logspace(np.log10(_FLOOR), 0, 200)
    for i, (party, fraction) in enumerate(parties):
        for j, attack in enumerate(ATTACKS):
            ax = axes[i, j]
            ax.plot(grid, grid, color="0.6", lw=0.8)
            for arm in arms:
                where = ((roc["party"] == party) & (roc["fraction"] == fraction) & (roc["arm"] == arm)
                         & (roc["attack"] == attack) & (roc["group"] == group))
                points = roc[where]
                row = summary[(summary["party"] == party) & (summary["fraction"] == fraction) & (summary["arm"] == arm)
                              & (summary["attack"] == attack) & (summary["group"] == group)].iloc[0]
                ax.step(points["fpr"], points["tpr"], where="post", color=colours[arm], lw=1.4,
                        label=f"{_label(arm)}: AUC {row['auc']:.2f} [{row['auc_low']:.2f}, {row['auc_high']:.2f}]")
                if arm != CONTROL:
                    ax.plot(grid, optimal_tpr(grid, float(row["epsilon"]), float(row["delta"])), color=colours[arm],
                            lw=1.0, ls=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(_FLOOR, 1)
            ax.set_ylim(_FLOOR, 1.05)
            ax.legend(fontsize=6, loc="lower right")
            if i == 0:
                ax.set_title(ATTACK_LABELS[attack], fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{party}, f = {format_number(fraction)}\nTPR")
            if i == len(parties) - 1:
                ax.set_xlabel("FPR")
    figure.suptitle(f"Membership inference on the {group} targets (dotted: optimal attacker under the ledger's ε, δ)",
                    fontsize=10)
    figure.tight_layout()
    return figure


def per_target_figure(per_target: pd.DataFrame, outliers: pd.DataFrame) -> plt.Figure:
    parties, arms = _parties(per_target), _arms(per_target)
    colours = _colours(arms)
    figure, axes = plt.subplots(len(parties), len(ATTACKS), figsize=(3.6 * len(ATTACKS), 3.0 * len(parties)),
                                squeeze=False, sharey=True)
    for i, (party, fraction) in enumerate(parties):
        for j, attack in enumerate(ATTACKS):
            ax = axes[i, j]
            ax.axhline(0.5, color="0.6", lw=0.8)
            for k, arm in enumerate(arms):
                rows = per_target[(per_target["party"] == party) & (per_target["fraction"] == fraction)
                                  & (per_target["arm"] == arm) & (per_target["attack"] == attack)]
                for group, offset, face in (("vulnerable", -0.12, colours[arm]), ("typical", 0.12, "none")):
                    values = rows.loc[rows["group"] == group, "auc"].to_numpy()
                    spread = np.linspace(-0.06, 0.06, values.size) if values.size > 1 else np.zeros(values.size)
                    ax.scatter(k + offset + spread, values, s=18, facecolors=face, edgecolors=colours[arm], lw=1.0,
                               label=group if (k == 0 and i == 0 and j == 0) else None)
                test = outliers[(outliers["party"] == party) & (outliers["fraction"] == fraction)
                                & (outliers["arm"] == arm) & (outliers["attack"] == attack)]
                if not test.empty:
                    ax.text(k, 1.04, f"p={test['pvalue'].iloc[0]:.2g}", ha="center", fontsize=6)
            ax.set_xticks(range(len(arms)), ["non-DP control" if a == CONTROL else f"ε = {a[3:]}" for a in arms],
                          fontsize=7)
            ax.set_ylim(-0.02, 1.1)
            if i == 0:
                ax.set_title(ATTACK_LABELS[attack], fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{party}, f = {format_number(fraction)}\nper-target AUC")
    axes[0, 0].legend(fontsize=6, loc="lower left")
    figure.suptitle("Per-target AUC: vulnerable (filled) vs typical (open) targets; p: permutation test vulnerable > typical",
                    fontsize=10)
    figure.tight_layout()
    return figure
