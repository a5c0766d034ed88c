"""The audit's tables from the shadow fits' scores (results/<run>/audit/).

Input: the scores tables of every (party, fraction, arm) job stacked
(:func:`synthshare.audit.scores.score_outputs` plus ``party, fraction, arm, epsilon,
delta``). Per party × fraction × arm × attack and target group (``vulnerable``,
``typical``, ``all``), pooling the group's targets (independent fits):

- ``summary``: AUC with DeLong interval, TPR at FPR 0.1 and 0.01, the empirical ε
  lower bound (Clopper–Pearson, threshold chosen on one half of the fits and evaluated
  on the other: :func:`synthshare.audit.metrics.epsilon_lower_bound`) beside the
  ledger's ε (``epsilon``, ∞ for the control) and δ, and the one-sided p-value of
  AUC > 0.5 (Mann–Whitney U test, the AUC's own test: exact for small tie-free samples,
  and valid where DeLong's standard error degenerates to 0 at AUC = 1), and the
  stratified test: the mean of the group's per-target AUCs (``target_auc``) with its
  permutation p-value (``target_auc_pvalue``: member labels permuted within each target,
  :func:`stratified_auc_pvalue`). The pooled metrics use one threshold for all targets;
  the stratified test compares each target's in-fits only with its own out-fits (the DP
  game is played per target), so target-to-target differences in score level cost it
  no power;
- ``per_target``: each target's AUC over its own in- and out-fits;
- ``outliers``: per party × fraction × arm × attack, mean per-target AUC of the
  vulnerable and the typical targets and the permutation p-value of vulnerable > typical;
- ``roc``: the ROC points of every summary row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from synthshare.audit import metrics
from synthshare.audit.scores import ATTACKS
from synthshare.errors import InputError

GROUPS = ("vulnerable", "typical", "all")
KEYS = ["party", "fraction", "arm"]
FPR_LIMITS = (0.1, 0.01)
PERMUTATIONS = 10_000


def _split(frame: pd.DataFrame, attack: str) -> tuple[np.ndarray, np.ndarray]:
    members = frame.loc[frame["member"], attack].to_numpy(np.float64)
    others = frame.loc[~frame["member"], attack].to_numpy(np.float64)
    return members, others


def stratified_auc_pvalue(frame: pd.DataFrame, attack: str, permutations: int = PERMUTATIONS,
                          seed: int = 0) -> tuple[float, float]:
    """(mean per-target AUC, one-sided permutation p-value of it exceeding 1/2).

    Under "no membership signal" a target's in- and out-fit scores are exchangeable, so
    its member labels are permuted within the target (its counts kept); each target's AUC
    is the rank sum of its members, (Σ ranks − m(m + 1)/2)/(m·o), as in
    :func:`synthshare.audit.metrics.auc`. p = (1 + #{permuted mean ≥ observed})/(1 + P).
    """
    rng = np.random.default_rng(seed)
    observed, permuted = [], np.zeros(permutations)
    for _, rows in frame.groupby("target", sort=True):
        member = rows["member"].to_numpy(bool)
        m, o = int(member.sum()), int((~member).sum())
        if m == 0 or o == 0:
            raise InputError(f"audit scores: target {rows['target'].iloc[0]} has {m} in- and {o} out-fits; expected both")
        ranks = stats.rankdata(rows[attack].to_numpy(np.float64))
        scale, offset = 1.0 / (m * o), m * (m + 1) / 2
        observed.append((ranks[member].sum() - offset) * scale)
        picks = np.argsort(rng.random((permutations, ranks.size)), axis=1)[:, :m]
        permuted += (ranks[picks].sum(axis=1) - offset) * scale
    count = len(observed)
    value = float(np.mean(observed))
    pvalue = float((1 + np.sum(permuted / count >= value - 1e-12)) / (1 + permutations))
    return value, pvalue


def _group_rows(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    return frame if group == "all" else frame[frame["group"] == group]


def audit_tables(scores: pd.DataFrame, level: float, seed: int) -> dict[str, pd.DataFrame]:
    """``summary``, ``per_target``, ``outliers`` and ``roc`` (see the module docstring)."""
    needed = set(KEYS) | {"epsilon", "delta", "target", "group", "member", *ATTACKS}
    missing = sorted(needed - set(scores.columns))
    if missing:
        raise InputError(f"audit scores: missing columns {missing}")
    summary, per_target, outliers, roc = [], [], [], []
    for (party, fraction, arm), job in scores.groupby(KEYS, sort=True):
        epsilon, delta = float(job["epsilon"].iloc[0]), float(job["delta"].iloc[0])
        for attack in ATTACKS:
            for group in GROUPS:
                rows = _group_rows(job, group)
                if rows.empty:
                    continue
                members, others = _split(rows, attack)
                interval = metrics.auc_interval(members, others, level)
                bound = metrics.epsilon_lower_bound(members, others, delta, level, seed)
                target_auc, target_pvalue = stratified_auc_pvalue(rows, attack, PERMUTATIONS, seed)
                summary.append({
                    "party": party, "fraction": fraction, "arm": arm, "attack": attack, "group": group,
                    "targets": int(rows["target"].nunique()), "members": members.size, "others": others.size,
                    "auc": interval.auc, "auc_low": interval.lower, "auc_high": interval.upper,
                    "auc_pvalue": float(stats.mannwhitneyu(members, others, alternative="greater").pvalue),
                    "target_auc": target_auc, "target_auc_pvalue": target_pvalue,
                    **{f"tpr_at_fpr_{limit:g}": metrics.tpr_at_fpr(members, others, limit) for limit in FPR_LIMITS},
                    "epsilon_lower_bound": bound.epsilon, "bound_threshold": bound.threshold,
                    "bound_true_positives": bound.true_positives, "bound_false_positives": bound.false_positives,
                    "bound_members": bound.members, "bound_others": bound.others,
                    "epsilon": epsilon, "delta": delta,
                })
                fpr, tpr, _ = metrics.roc_points(members, others)
                roc.append(pd.DataFrame({"party": party, "fraction": fraction, "arm": arm, "attack": attack,
                                         "group": group, "fpr": fpr, "tpr": tpr}))
            target_auc = {}
            for target, rows in job.groupby("target", sort=True):
                members, others = _split(rows, attack)
                value = metrics.auc(members, others)
                target_auc[int(target)] = (rows["group"].iloc[0], value)
                per_target.append({
                    "party": party, "fraction": fraction, "arm": arm, "attack": attack, "target": int(target),
                    "group": rows["group"].iloc[0], "vulnerability": float(rows["vulnerability"].iloc[0]),
                    "fits": int(members.size), "auc": value,
                })
            vulnerable = [a for g, a in target_auc.values() if g == "vulnerable"]
            typical = [a for g, a in target_auc.values() if g == "typical"]
            outliers.append({
                "party": party, "fraction": fraction, "arm": arm, "attack": attack,
                "vulnerable_auc": float(np.mean(vulnerable)) if vulnerable else math.nan,
                "typical_auc": float(np.mean(typical)) if typical else math.nan,
                "pvalue": (metrics.permutation_pvalue(vulnerable, typical, PERMUTATIONS, seed)
                           if vulnerable and typical else math.nan),
            })
    return {
        "summary": pd.DataFrame(summary), "per_target": pd.DataFrame(per_target),
        "outliers": pd.DataFrame(outliers), "roc": pd.concat(roc, ignore_index=True),
    }
