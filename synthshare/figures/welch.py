"""Welch's t-test on jointly ranked samples (method.md, "Significance").

The study ranks both samples together (average ranks for ties) and runs Welch's
unequal-variance t-test on the ranks: one-sided "combined > local only" for Figs 1-3
and 6, two-sided for Figs 4 and 5. With ranks the test is insensitive to the heavy
lower tail of the log-likelihood draws (a draw that predicts λ ≫ 1 for a test record
scores far below the rest).

    t = (r̄_a − r̄_b) / sqrt(s_a²/n_a + s_b²/n_b),
    ν = (s_a²/n_a + s_b²/n_b)² / [ (s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1) ]

(Welch–Satterthwaite degrees of freedom), p from Student's t with ν degrees of freedom.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

ALTERNATIVES = ("greater", "less", "two-sided")


def joint_ranks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) of ``a`` and ``b`` within their union."""
    ranks = stats.rankdata(np.concatenate([a, b]), method="average")
    return ranks[: a.size], ranks[a.size :]


def welch_t(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided") -> tuple[float, float]:
    """Welch's t statistic and p-value of H1 "mean(a) > mean(b)" (``greater``), ``less`` or ``two-sided``.

    Returns (NaN, NaN) when both samples are constant (the statistic is undefined).
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}; expected one of {list(ALTERNATIVES)}")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Welch's test needs at least 2 values per sample, got {a.size} and {b.size}")
    va = a.var(ddof=1) / a.size
    vb = b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0:
        return float("nan"), float("nan")
    statistic = (a.mean() - b.mean()) / np.sqrt(se2)
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    if alternative == "greater":
        pvalue = stats.t.sf(statistic, df)
    elif alternative == "less":
        pvalue = stats.t.cdf(statistic, df)
    else:
        pvalue = 2.0 * stats.t.sf(abs(statistic), df)
    return float(statistic), float(min(1.0, pvalue))


def ranked_welch(a: np.ndarray, b: np.ndarray, alternative: str = "greater") -> tuple[float, float]:
    """Welch's t-test on the joint ranks of ``a`` and ``b``.

    Args:
        a, b: 1-D samples (e.g. combined and local-only log-likelihood draws). NaN
            values (draws of a model with an undefined variance) are left out.
        alternative: ``greater`` (H1: a tends to be larger, the study's one-sided
            "combined > local only"), ``less`` or ``two-sided``.

    Returns:
        (t statistic, p-value).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a[~np.isnan(a)]
    b = b[~np.isnan(b)]
    ranks_a, ranks_b = joint_ranks(a, b)
    return welch_t(ranks_a, ranks_b, alternative)
