"""Coverage of pooled intervals against a known estimand, with binomial confidence intervals.

An interval of one replicate (one seed/order of one party, step, ε and f) for a term is

    w̄ ± q · √T,

with w̄ and T the study's Rubin pooling (``synthshare.analysis.rubin``; not changed here)
and q the (1 + level)/2 quantile of either the standard normal (the default: the
intervals the study's numbers imply, and those of ``synthshare.figures.beyond``) or
Student's t with Rubin-type degrees of freedom (:func:`rubin_degrees_of_freedom`). It
covers when |w̄ − β*| ≤ q√T, β* the estimand (``synthshare.analysis.estimand``, in the
party's coding). Over R replicates of a group, the coverage is k/R; its confidence
interval is Clopper–Pearson's by default (exact: it covers with at least the stated
probability for every R and p, so "coverage below nominal" is never claimed on a
too-short interval; Wilson's score interval, also offered, is shorter but can fall
short of its level at small R — and R here is seeds × orders, often < 50).

Replicates must be independent for the binomial interval to hold: terms of one fit
are not (they share the data), so coverage is reported per term, never pooled over
terms with a binomial interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from synthshare.errors import InputError

METHODS = ("clopper-pearson", "wilson")
"""Binomial confidence intervals offered by :func:`binomial_interval`."""


def rubin_degrees_of_freedom(between: np.ndarray, within: np.ndarray, count: np.ndarray,
                             fallback: np.ndarray) -> np.ndarray:
    """Degrees of freedom of the t reference distribution of a pooled estimate.

    With r = (1 + 1/K)·b / v̄:

    * the synthetic-data rule T = (1 + 1/K) b − v̄ (Raghunathan, Reiter & Rubin 2003):
      ν = (K − 1)(1 − 1/r)²;
    * the study's fallback T = (1 + 1/K) b + v̄ (the multiple-imputation form, Rubin
      1987): ν = (K − 1)(1 + 1/r)²;
    * K ≤ 1 or b = 0 (no between-fit information; T = v̄): ν = ∞ (normal).

    Args:
        between, within, count, fallback: (...,) b, v̄, K and the fallback flag
            (``synthshare.analysis.rubin.Pooled``).

    Returns:
        (...,) float ν (∞ where the normal applies).
    """
    between, within = np.asarray(between, float), np.asarray(within, float)
    count, fallback = np.asarray(count, float), np.asarray(fallback, bool)
    spread = (1.0 + 1.0 / np.maximum(count, 1.0)) * between
    informative = (count > 1) & (between > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(informative, within / spread, 0.0)  # 1/r
    nu = (count - 1.0) * np.where(fallback, 1.0 + ratio, 1.0 - ratio) ** 2
    return np.where(informative, nu, np.inf)


def interval_quantile(level: float, df: np.ndarray | float | None = None) -> np.ndarray:
    """q: the (1 + level)/2 quantile of N(0, 1) (``df`` None or ∞) or of t with ``df``."""
    if not 0 < level < 1:
        raise InputError(f"coverage: level = {level!r}; expected a number in (0, 1)")
    upper = 0.5 + level / 2.0
    if df is None:
        return np.asarray(stats.norm.ppf(upper))
    df = np.asarray(df, float)
    return np.where(np.isinf(df), stats.norm.ppf(upper), stats.t.ppf(upper, np.where(np.isinf(df), 1.0, df)))


def binomial_interval(successes: np.ndarray, trials: np.ndarray, level: float = 0.95,
                      method: str = "clopper-pearson") -> tuple[np.ndarray, np.ndarray]:
    """Two-sided confidence interval of a binomial proportion k/n.

    Clopper–Pearson: [B⁻¹(α/2; k, n − k + 1), B⁻¹(1 − α/2; k + 1, n − k)] (0 at k = 0,
    1 at k = n). Wilson: (p̂ + z²/2n ± z √(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n).

    Returns:
        (low, high), arrays like ``successes``; NaN where n = 0.
    """
    if method not in METHODS:
        raise InputError(f"coverage: binomial interval method = {method!r}; expected one of {list(METHODS)}")
    k, n = np.asarray(successes, float), np.asarray(trials, float)
    if np.any(k < 0) or np.any(k > n):
        raise InputError("coverage: successes outside 0..trials; expected 0 <= k <= n")
    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "clopper-pearson":
            low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
            high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
        else:
            z = stats.norm.ppf(1 - alpha / 2)
            p = k / n
            centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
            half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
            low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def coverage_table(frame: pd.DataFrame, groups: list[str], level: float = 0.95, df: str | None = None,
                   ci_level: float = 0.95, method: str = "clopper-pearson") -> pd.DataFrame:
    """Coverage of the ``level`` intervals per group and term, over the group's replicates.

    Args:
        frame: one row per replicate interval: ``groups`` columns, ``term``, ``mean``
            (w̄), ``var`` (T), ``estimand`` (β* in the row's coding) and, with ``df``,
            that column (ν; ∞ = normal). Rows without a finite ``var`` or ``estimand``
            (a term the data lack) are not intervals and are left out.
        groups: the grouping columns, e.g. ``[scenario, party, variant, epsilon,
            fraction, step]``.
        level: the intervals' nominal coverage.
        df: None for normal intervals, or the column of degrees of freedom.
        ci_level, method: the binomial confidence interval of the coverage.

    Returns:
        ``groups + [term, intervals, covered, coverage, coverage_low, coverage_high,
        nominal, mean_width, median_width, mean_error]``, sorted by the keys:
        ``intervals`` R, ``covered`` k, ``coverage`` k/R, its interval, ``nominal`` the
        level, widths 2q√T, ``mean_error`` the mean of w̄ − β* (bias).
    """
    needed = [*groups, "term", "mean", "var", "estimand"] + ([df] if df else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"coverage: columns {missing} missing; expected {needed}")
    rows = frame[np.isfinite(frame["var"]) & np.isfinite(frame["estimand"])]
    if (rows["var"] < 0).any():
        raise InputError(f"coverage: column 'var' has a negative value {rows['var'].min()!r}; expected Rubin's T >= 0")
    q = interval_quantile(level, rows[df].to_numpy() if df else None)
    half = q * np.sqrt(rows["var"].to_numpy())
    error = rows["mean"].to_numpy() - rows["estimand"].to_numpy()
    rows = rows[[*groups, "term"]].assign(hit=np.abs(error) <= half, width=2.0 * half, error=error)
    table = rows.groupby([*groups, "term"], sort=True, dropna=False).agg(
        intervals=("hit", "size"), covered=("hit", "sum"), mean_width=("width", "mean"),
        median_width=("width", "median"), mean_error=("error", "mean"),
    ).reset_index()
    table["covered"] = table["covered"].astype(np.int64)
    table["coverage"] = table["covered"] / table["intervals"]
    low, high = binomial_interval(table["covered"].to_numpy(), table["intervals"].to_numpy(), ci_level, method)
    table["coverage_low"], table["coverage_high"], table["nominal"] = low, high, level
    return table[[*groups, "term", "intervals", "covered", "coverage", "coverage_low", "coverage_high", "nominal",
                  "mean_width", "median_width", "mean_error"]]
