"""Membership-inference statistics: ROC, AUC with a DeLong interval, TPR at low FPR,
a permutation test between target groups, and the empirical ε lower bound.

Convention: a higher score means "member" (the target was in the generator's
training data). ``members`` are the scores of fits with the target in, ``others`` of
fits without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from synthshare.errors import InputError


def _scores(values, name: str) -> np.ndarray:
    array = np.asarray(values, np.float64).ravel()
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InputError(f"{name}: {array.size} scores, some not finite or none; expected finite scores")
    return array


def roc_points(members, others) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FPR, TPR, thresholds) of the rule "member if score ≥ t" for every distinct t.

    Thresholds descend; the first point is (0, 0) at t = +∞, the last (1, 1). Tied
    scores move both rates at once (one point per distinct score, no interpolation).
    """
    members, others = _scores(members, "members"), _scores(others, "others")
    thresholds = np.unique(np.concatenate([members, others]))[::-1]
    # Counts with score ≥ t, by binary search on the sorted scores.
    tp = members.size - np.searchsorted(np.sort(members), thresholds, side="left")
    fp = others.size - np.searchsorted(np.sort(others), thresholds, side="left")
    fpr = np.concatenate([[0.0], fp / others.size])
    tpr = np.concatenate([[0.0], tp / members.size])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def auc(members, others) -> float:
    """P(member score > other score) + ½·P(equal): the Mann–Whitney U / (n_m·n_o)."""
    members, others = _scores(members, "members"), _scores(others, "others")
    ranks = stats.rankdata(np.concatenate([members, others]))  # average ranks for ties
    u = ranks[: members.size].sum() - members.size * (members.size + 1) / 2
    return float(u / (members.size * others.size))


def _placements(members: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: V10_i = mean_j ψ(X_i, Y_j), V01_j = mean_i ψ(X_i, Y_j),
    ψ(x, y) = [x > y] + ½[x = y]."""
    sorted_others, sorted_members = np.sort(others), np.sort(members)
    below = np.searchsorted(sorted_others, members, side="left")
    equal = np.searchsorted(sorted_others, members, side="right") - below
    v10 = (below + 0.5 * equal) / others.size
    above = members.size - np.searchsorted(sorted_members, others, side="right")
    tied = np.searchsorted(sorted_members, others, side="right") - np.searchsorted(sorted_members, others, side="left")
    v01 = (above + 0.5 * tied) / members.size
    return v10, v01


@dataclass(frozen=True)
class AucInterval:
    auc: float
    lower: float
    upper: float
    standard_error: float


def auc_interval(members, others, level: float = 0.95) -> AucInterval:
    """AUC with DeLong's (DeLong, DeLong & Clarke-Pearson 1988) normal interval.

    Var(AUC) = Var(V10)/n_m + Var(V01)/n_o with the structural components of
    :func:`_placements` (sample variances, ddof = 1); the interval is clipped to [0, 1].
    Needs at least two scores on each side.
    """
    members, others = _scores(members, "members"), _scores(others, "others")
    if members.size < 2 or others.size < 2:
        raise InputError(f"auc_interval: {members.size} member and {others.size} other scores; expected >= 2 each")
    v10, v01 = _placements(members, others)
    value = float(np.mean(v10))
    se = math.sqrt(np.var(v10, ddof=1) / members.size + np.var(v01, ddof=1) / others.size)
    z = stats.norm.ppf(0.5 + level / 2)
    return AucInterval(value, max(0.0, value - z * se), min(1.0, value + z * se), se)


def tpr_at_fpr(members, others, fpr_limit: float) -> float:
    """Largest TPR of a threshold rule whose FPR is at most ``fpr_limit`` (no interpolation)."""
    fpr, tpr, _ = roc_points(members, others)
    return float(np.max(tpr[fpr <= fpr_limit + 1e-12]))


def permutation_pvalue(group_a, group_b, permutations: int = 10000, seed: int = 0) -> float:
    """One-sided p-value of mean(a) − mean(b) > 0 under exchangeable labels.

    E.g. per-target AUCs of the outliers (a) against the typical records (b).
    p = (1 + #{permuted difference ≥ observed}) / (1 + permutations), which is valid
    (never below the exact permutation p-value in expectation).
    """
    a, b = _scores(group_a, "group_a"), _scores(group_b, "group_b")
    pooled = np.concatenate([a, b])
    observed = a.mean() - b.mean()
    rng = np.random.default_rng(seed)
    index = np.argsort(rng.random((permutations, pooled.size)), axis=1)[:, : a.size]
    taken = pooled[index].sum(axis=1)
    differences = taken / a.size - (pooled.sum() - taken) / b.size
    return float((1 + np.sum(differences >= observed - 1e-12)) / (1 + permutations))


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval: the α/2 and 1 − α/2 quantiles of
    Beta(k, n − k + 1) and Beta(k + 1, n − k) (0 at k = 0, 1 at k = n)."""
    if trials < 1 or not 0 <= successes <= trials:
        raise InputError(f"clopper_pearson: {successes} of {trials}; expected 0 <= successes <= trials, trials >= 1")
    alpha = 1.0 - level
    lower = 0.0 if successes == 0 else float(special.betaincinv(successes, trials - successes + 1, alpha / 2))
    upper = 1.0 if successes == trials else float(special.betaincinv(successes + 1, trials - successes, 1 - alpha / 2))
    return lower, upper


def _epsilon_at(tp: int, fp: int, n_members: int, n_others: int, delta: float, level: float) -> float:
    """The larger of the two one-sided bounds at one threshold (0 if neither is positive).

    ε ≥ log((TPR_lo − δ)/FPR_hi) and, for the complementary test,
    ε ≥ log((TNR_lo − δ)/FNR_hi) = log((1 − FPR_hi − δ)/(1 − TPR_lo)), with TPR, FPR
    Clopper–Pearson bounds at ``level``.
    """
    tpr_lo, tpr_hi = clopper_pearson(tp, n_members, level)
    fpr_lo, fpr_hi = clopper_pearson(fp, n_others, level)
    bounds = [0.0]
    if tpr_lo - delta > 0 and fpr_hi > 0:
        bounds.append(math.log((tpr_lo - delta) / fpr_hi))
    tnr_lo, fnr_hi = 1.0 - fpr_hi, 1.0 - tpr_lo
    if tnr_lo - delta > 0 and fnr_hi > 0:
        bounds.append(math.log((tnr_lo - delta) / fnr_hi))
    return max(bounds)


@dataclass(frozen=True)
class EpsilonBound:
    epsilon: float
    """Empirical lower bound on ε (≥ 0), evaluated on the held-out half."""
    threshold: float
    """Score threshold chosen on the selection half."""
    true_positives: int
    false_positives: int
    members: int
    others: int


def epsilon_lower_bound(members, others, delta: float, level: float = 0.95, seed: int = 0) -> EpsilonBound:
    """Empirical ε lower bound of a threshold attack, with a held-out threshold.

    The fits are split at random (``seed``) into two halves on each side; the threshold
    maximising the bound on the first half is applied to the second, where
    ε_lb = max(log((TPR_lo − δ)/FPR_hi), log((1 − FPR_hi − δ)/(1 − TPR_lo)), 0)
    with Clopper–Pearson bounds at ``level`` (the (ε, δ)-DP hypothesis-testing
    inequalities TPR ≤ e^ε·FPR + δ and TNR ≤ e^ε·FNR + δ, Kairouz et al. 2015). Choosing
    on one half and evaluating on the other keeps the intervals valid.
    """
    members, others = _scores(members, "members"), _scores(others, "others")
    if members.size < 2 or others.size < 2:
        raise InputError(f"epsilon_lower_bound: {members.size} member and {others.size} other scores; expected >= 2 each")
    rng = np.random.default_rng(seed)
    m_perm, o_perm = rng.permutation(members.size), rng.permutation(others.size)
    m_sel, m_eval = members[m_perm[: members.size // 2]], members[m_perm[members.size // 2:]]
    o_sel, o_eval = others[o_perm[: others.size // 2]], others[o_perm[others.size // 2:]]
    best, best_threshold = -1.0, math.inf
    for threshold in np.unique(np.concatenate([m_sel, o_sel])):
        value = _epsilon_at(int(np.sum(m_sel >= threshold)), int(np.sum(o_sel >= threshold)),
                            m_sel.size, o_sel.size, delta, level)
        if value > best:  # ties keep the lowest such threshold (ascending, strict >): deterministic
            best, best_threshold = value, float(threshold)
    tp, fp = int(np.sum(m_eval >= best_threshold)), int(np.sum(o_eval >= best_threshold))
    return EpsilonBound(
        epsilon=_epsilon_at(tp, fp, m_eval.size, o_eval.size, delta, level), threshold=best_threshold,
        true_positives=tp, false_positives=fp, members=int(m_eval.size), others=int(o_eval.size),
    )


def optimal_tpr(fpr, epsilon: float, delta: float) -> np.ndarray:
    """The most TPR any attacker reaches at ``fpr`` against an (ε, δ)-DP release:
    min(1, e^ε·FPR + δ, 1 − e^{−ε}·(1 − δ − FPR)) (both hypothesis-testing inequalities)."""
    fpr = np.asarray(fpr, np.float64)
    first = math.exp(epsilon) * fpr + delta
    second = 1.0 - math.exp(-epsilon) * (1.0 - delta - fpr)
    return np.clip(np.minimum(first, second), 0.0, 1.0)
