"""Rubin's rules for the K fits of one step (method.md, Analysis; the paper's Eq. for pooling).

For K fits with coefficients w_k and variances v_k of a term:

    w̄ = mean_k w_k,   b = Σ_k (w_k − w̄)²/(K − 1),   v̄ = mean_k v_k,
    T = (1 + 1/K)·b − v̄,   replaced by (1 + 1/K)·b + v̄ where T < 0.

(The minus sign is the rule for synthetic data, Raghunathan et al. 2003; the fallback
is the study's.) A term absent from some fits' data (a level no record of that
combined data set has) is pooled over the K_t fits that have it, with K_t in place of
K; with K_t = 1 there is no between-fit variance (b = 0, so T = v̄); with K_t = 0 the
term is absent from the pooled model (predicted as the reference). A fit whose variance
is undefined (NaN: collinear columns, see ``irls.py``) does not count as having the
term; statsmodels' covariance there is noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Pooled:
    """Pooled estimates of a batch of steps, terms in design order.

    Attributes:
        mean: (..., P) w̄ (0 where no fit has the term).
        var: (..., P) T after the fallback (NaN where no fit has the term).
        present: (..., P) some fit has the term.
        fallback: (..., P) T was negative and replaced.
        between: (..., P) b (0 where fewer than 2 fits have the term).
        within: (..., P) v̄ (0 where no fit has the term).
        count: (..., P) K_t, the fits that have the term (interval degrees of freedom,
            ``synthshare.analysis.coverage.rubin_degrees_of_freedom``).
    """

    mean: np.ndarray
    var: np.ndarray
    present: np.ndarray
    fallback: np.ndarray
    between: np.ndarray
    within: np.ndarray
    count: np.ndarray


POOLED_FIELDS = ("mean", "var", "present", "fallback", "between", "within", "count")
"""The fields of :class:`Pooled`, in order."""


def pool_rubin(coef: np.ndarray, var: np.ndarray, present: np.ndarray) -> Pooled:
    """Pool K fits per step.

    Args:
        coef: (..., K, P) coefficients of each fit.
        var: (..., K, P) their variances (HC1).
        present: (..., K, P) whether the fit has the term (NaN variances count as absent).

    Returns:
        :class:`Pooled` with arrays of shape (..., P).
    """
    present = np.asarray(present, bool) & np.isfinite(var)
    count = present.sum(axis=-2)
    has = count > 0
    safe = np.maximum(count, 1)
    w = np.where(present, coef, 0.0)
    mean = w.sum(axis=-2) / safe
    deviation = np.where(present, coef - mean[..., None, :], 0.0)
    between = (deviation**2).sum(axis=-2) / np.maximum(count - 1, 1)
    within = np.where(present, var, 0.0).sum(axis=-2) / safe
    inflation = 1.0 + 1.0 / safe
    total = inflation * between - within
    fallback = has & (total < 0)
    total = np.where(fallback, inflation * between + within, total)
    return Pooled(
        mean=np.where(has, mean, 0.0),
        var=np.where(has, total, np.nan),
        present=has,
        fallback=fallback,
        between=between,
        within=within,
        count=count,
    )
