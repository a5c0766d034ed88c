"""Utility of a pooled model: Monte Carlo draws and the per-record test log-likelihood.

method.md, Analysis: draw S coefficient vectors from N(w̄, diag(T)) and compute, on an
evaluation set E, the average Poisson log-likelihood

    ll(β) = (1/|E|) Σ_{i∈E} [y_i η_i − exp(η_i) − ln y_i!],   η_i = x_iβ.

With binary y, ln y! = 0, and on E's count table (n_c records, s_c positives per cell)

    ll(β) = (1/|E|) [ (Xᵀs)·β − Σ_c n_c exp(η_c) ],

and exp(η_c) = exp(β₀) Π_f exp(β_f[x_f]) factorises over the features, so the sum over
the 2,240 cells is a chain of small contractions (the first one a matrix product over
the draws) instead of 2,240 exponentials per draw. Terms absent from the pooled model
have effect 0 (their level is predicted as the reference).
"""

from __future__ import annotations

import numpy as np

from synthshare.glm.design import Design
from synthshare.glm.margins import MarginPlan


def draw_coefficients(mean: np.ndarray, var: np.ndarray, present: np.ndarray, draws: int,
                      rng: np.random.Generator) -> np.ndarray:
    """S draws from N(w̄, diag(T)) per pooled model.

    Args:
        mean, var, present: (..., P) from :func:`synthshare.analysis.rubin.pool_rubin`.
        draws: S.
        rng: the only source of randomness; consumes (..., S, P) standard normals.

    Returns:
        (..., S, P) coefficients; absent terms are 0. A NaN variance (a rank-deficient
        fit) gives NaN draws for that term.
    """
    mean = np.asarray(mean, dtype=np.float64)
    shape = mean.shape[:-1] + (draws, mean.shape[-1])
    noise = rng.standard_normal(shape)
    scale = np.sqrt(np.where(present, var, 0.0))[..., None, :]
    return np.where(present[..., None, :], mean[..., None, :] + scale * noise, 0.0)


class EvaluationSet:
    """An evaluation set's count table, ready to score many coefficient vectors."""

    def __init__(self, counts: np.ndarray, design: Design) -> None:
        """
        Args:
            counts: (L_1, ..., L_q, 2) records and positives over ``design.features``.
        """
        if counts.shape != design.shape + (2,):
            raise ValueError(f"evaluation counts of shape {counts.shape}; expected {design.shape + (2,)}")
        self.design = design
        self.records = int(counts[..., 0].sum())
        if self.records == 0:
            raise ValueError("evaluation set is empty")
        plan = MarginPlan(design)
        positives = counts[..., 1].astype(np.float64)[..., None]
        self._xs = plan.vector(plan.flat_margins(positives))[:, 0]  # (P,) Xᵀs
        self._n = counts[..., 0].astype(np.float64)

    def loglik(self, coef: np.ndarray) -> np.ndarray:
        """Per-record average log-likelihood of each coefficient vector.

        Args:
            coef: (..., P) coefficients in design order.

        Returns:
            (...) float64.
        """
        coef = np.asarray(coef, dtype=np.float64)
        batch = coef.shape[:-1]
        flat = coef.reshape(-1, coef.shape[-1])
        linear = flat @ self._xs
        effects = self.design.level_effects(flat)  # per feature (D, L_f)
        # Σ_c n_c Π_f a_f[x_f]: contract the first axis by a matrix product, then the rest
        first = np.exp(effects[0])  # (D, L_1)
        rest = self._n.reshape(self._n.shape[0], -1)
        table = first @ rest  # (D, Π_{f>1} L_f)
        for effect in effects[1:]:
            levels = effect.shape[-1]
            table = table.reshape(table.shape[0], levels, -1)
            table = np.einsum("dlr,dl->dr", table, np.exp(effect))
        expected = np.exp(flat[:, 0]) * table[:, 0]
        return ((linear - expected) / self.records).reshape(batch)
