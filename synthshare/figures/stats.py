"""Summaries and significance tests behind the figures (method.md, "Significance").

Box statistics are the paper's: quartile box, median, whiskers to the furthest sample
within 1.5 IQR of the box, no fliers. Tests are Welch's t-test on jointly ranked
samples (``synthshare.figures.welch.ranked_welch``), one-sided "combined > local only"
for Figs 1-3 and 6 and two-sided for Figs 4 and 5; stars at p <= 0.05, 0.01, 0.001.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib import cbook

from synthshare.figures.welch import ranked_welch

WHISKER_IQR = 1.5
STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
ALPHA = 0.05
"""Level at which a claim's test counts as passed (the paper's lowest star level)."""


@dataclass(frozen=True)
class Comparison:
    """Ranked Welch test of sample ``a`` against sample ``b`` (``a`` > ``b`` when one-sided)."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    mean_a: float
    mean_b: float
    statistic: float
    pvalue: float
    alternative: str

    @property
    def stars(self) -> str:
        return significance_stars(self.pvalue)

    def row(self, a: str, b: str) -> dict[str, float | int | str]:
        """Table columns, the samples named ``a`` and ``b`` (e.g. ``combined``, ``local``)."""
        return {
            f"n_{a}": self.n_a, f"n_{b}": self.n_b,
            f"median_{a}": self.median_a, f"median_{b}": self.median_b,
            f"mean_{a}": self.mean_a, f"mean_{b}": self.mean_b,
            "statistic": self.statistic, "pvalue": self.pvalue,
            "alternative": self.alternative, "stars": self.stars,
        }


def box_stats(values: np.ndarray, label: str = "") -> dict:
    """The paper's box of a 1-D sample, as a dict for ``Axes.bxp``.

    Keys ``med, q1, q3, whislo, whishi, mean, label, n`` (fliers dropped: the paper
    draws none). Quartiles are numpy's linear-interpolation percentiles; whiskers reach
    the furthest sample within ``WHISKER_IQR`` · IQR of the box.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"box_stats({label!r}): expected a non-empty 1-D sample of finite values, got shape {values.shape}")
    stats = cbook.boxplot_stats(values, whis=WHISKER_IQR, labels=[label])[0]
    stats["fliers"] = np.empty(0)
    stats["n"] = int(values.size)
    return stats


def significance_stars(pvalue: float) -> str:
    """``***``, ``**``, ``*`` at p <= 0.001, 0.01, 0.05; ``ns`` above; empty for NaN."""
    if not np.isfinite(pvalue):
        return ""
    for level, stars in STAR_LEVELS:
        if pvalue <= level:
            return stars
    return "ns"


def compare(a: np.ndarray, b: np.ndarray, alternative: str = "greater") -> Comparison:
    """Welch's t-test on the jointly ranked samples ``a`` and ``b`` (method.md).

    ``alternative="greater"``: H1 is "a is larger than b" (combined > local only);
    ``"two-sided"`` for Figs 4 and 5. A test that is undefined (both samples constant)
    gives NaN statistic and p-value.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"compare: each sample needs at least 2 values, got {a.size} and {b.size}")
    statistic, pvalue = ranked_welch(a, b, alternative=alternative)
    return Comparison(
        n_a=int(a.size), n_b=int(b.size),
        median_a=float(np.median(a)), median_b=float(np.median(b)),
        mean_a=float(a.mean()), mean_b=float(b.mean()),
        statistic=float(statistic), pvalue=float(pvalue), alternative=alternative,
    )
