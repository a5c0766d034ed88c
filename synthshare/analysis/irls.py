"""Batched Poisson IRLS on count tables, step for step the iteration statsmodels runs.

statsmodels' ``GLM(..., family=Poisson()).fit()`` (IRLS, the study's call) does, from
μ⁰ = (y + ȳ)/2 per record (``Family.starting_mu``):

    repeat k = 1, 2, ...:  w = μ, z = η + (y − μ)/μ;  β_k = argmin Σ w (z − xβ)²;
                           μ = exp(Xβ_k);  D_k = 2 Σ [y log(y/μ) − (y − μ)]
    until |D_k − D_{k−1}| ≤ 1e-8 (``np.allclose`` with atol = tol = 1e-8, rtol = 0)
    or k = 100 (then ``converged`` is False),

and returns β_k. For k ≥ 2 the weighted least-squares step is the Newton step
β_k = β_{k−1} + H⁻¹g with g = Xᵀ(y − μ), H = Xᵀ diag(μ) X (canonical link). On a count
table (n_c records, s_c positives per cell; binary y):

    g = Xᵀ(s − nμ),  H = Xᵀ diag(nμ) X,  D = 2 Σ_c [n_c μ_c − s_c − s_c η_c],

and the first step, whose μ⁰ differs between a cell's positives and negatives, uses
the cell sums of w⁰ and w⁰z⁰ = μ⁰ log μ⁰ + y − μ⁰ (m₁ = (1 + ȳ)/2 for y = 1,
m₀ = ȳ/2 for y = 0). Replaying the same iteration matters beyond the converged
optimum: a level with zero positives has no finite MLE, and the coefficient
statsmodels reports (about −20 to −25) is wherever this iteration stops.

Covariance, as ``fit(cov_type="HC1")`` computes it for a GLM: statsmodels' GLM results
have no ``cov_HC1``, so ``get_robustcov_results`` falls back to
``cov_white_simple(use_correction=False)``: the sandwich H⁻¹ M H⁻¹ at the final β with
H from ``model.hessian`` and M = Σ_i score_i score_iᵀ; **no n/(n − p) factor** (GLM
"HC1" equals "HC0"; checked numerically). Per cell, Σ_i (y_i − μ_c)² = s_c(1 − 2μ_c) +
n_c μ_c² (binary y), so M = Xᵀ diag(s(1 − 2μ) + nμ²) X.

Levels absent from a data set get no term (patsy on string columns builds columns
only for observed levels): their coefficient is held at 0 and their variance is NaN.
A design whose present columns are collinear (tiny data) leaves the fast path: it is
replayed with least squares on the cell rows (the minimum-norm solution statsmodels'
``lstsq`` picks) and flagged ``rank_deficient`` with NaN variances, because
statsmodels' own covariance there is ``inv`` of a singular matrix (noise or an error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthshare.analysis.design import Design
from synthshare.analysis.margins import MarginPlan

MAX_ITER = 100
"""statsmodels' default ``maxiter`` for IRLS."""
TOL = 1e-8
"""statsmodels' default ``tol``: absolute tolerance on the change of the deviance."""
_PIVOT_TOL = 1e-10
"""A Cholesky pivot below this fraction of its diagonal entry means collinear columns."""
_EPS = float(np.finfo(float).eps)
"""statsmodels' FLOAT_EPS: the Log link clips μ at this value in its derivatives."""
_LOG_EPS = float(np.log(_EPS))
_CHUNK = 256
"""Fits per vectorised chunk: keeps the (2,240 × chunk) working tables in cache."""


@dataclass
class BatchFit:
    """Results of B fits, terms in ``design.names`` order.

    Attributes:
        coef: (B, P) coefficients; 0 for terms absent from a fit's data.
        var: (B, P) HC1 variances; NaN for absent terms and rank-deficient fits.
        present: (B, P) whether the data identify the term (level observed; intercept always).
        zero_positive: (B, P) a present level whose records are all negative: statsmodels'
            coefficient for it is a stopping point of the iteration, not an estimate.
        iterations: (B,) IRLS iterations (statsmodels' ``fit_history['iteration']``).
        converged: (B,) statsmodels' ``converged``.
        rank_deficient: (B,) present columns are collinear (see module docstring).
        reference_missing: (B,) a reference level has no records; statsmodels (patsy)
            refuses such a fit ("specified level ... not found"); the coefficients here
            then use the absent reference anyway and mean nothing.
    """

    coef: np.ndarray
    var: np.ndarray
    present: np.ndarray
    zero_positive: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    rank_deficient: np.ndarray
    reference_missing: np.ndarray


class PoissonBatchSolver:
    """Fits the Poisson GLM of one :class:`Design` to many count tables at once."""

    def __init__(self, design: Design, chunk: int = _CHUNK) -> None:
        self.design = design
        self.plan = MarginPlan(design)
        self.chunk = int(chunk)
        self._design_matrix: np.ndarray | None = None

    # -- public -------------------------------------------------------------------------
    def fit(self, counts: np.ndarray, max_iter: int = MAX_ITER, tol: float = TOL) -> BatchFit:
        """Fit every table of a batch.

        Args:
            counts: (B, L_1, ..., L_q, 2) records and positives per cell (``cells.py``).
                Every table needs at least one record and one positive (statsmodels
                fails on an all-negative outcome: its first deviance is NaN).

        Returns:
            A :class:`BatchFit` of B fits.
        """
        counts = np.asarray(counts)
        shape = self.design.shape
        if counts.shape[1:] != shape + (2,):
            raise ValueError(f"count tables of shape {counts.shape[1:]}; expected {shape + (2,)}")
        B = counts.shape[0]
        P = self.design.size
        out = BatchFit(
            coef=np.zeros((B, P)), var=np.full((B, P), np.nan), present=np.zeros((B, P), bool),
            zero_positive=np.zeros((B, P), bool), iterations=np.zeros(B, np.int64),
            converged=np.zeros(B, bool), rank_deficient=np.zeros(B, bool),
            reference_missing=np.zeros(B, bool),
        )
        for start in range(0, B, self.chunk):
            stop = min(B, start + self.chunk)
            self._fit_chunk(counts[start:stop], out, start, max_iter, tol)
        return out

    # -- fast path ----------------------------------------------------------------------
    def _fit_chunk(self, counts: np.ndarray, out: BatchFit, offset: int, max_iter: int, tol: float) -> None:
        q = len(self.design.shape)
        plan = self.plan
        # batch-last working copies
        n = np.ascontiguousarray(np.moveaxis(counts[..., 0], 0, -1), dtype=np.float64)
        s = np.ascontiguousarray(np.moveaxis(counts[..., 1], 0, -1), dtype=np.float64)
        B = n.shape[-1]
        n_flat = plan.flat_margins(n)
        n_margins = plan.vector(n_flat)  # (P, B)
        xs = plan.vector(plan.flat_margins(s))
        for f, ref in enumerate(self.design.reference):
            missing = plan.one_way(n_flat, f)[ref] <= 0
            out.reference_missing[offset : offset + B] |= missing
        total_n = n_margins[0]
        total_s = xs[0]
        if (total_n <= 0).any() or (total_s <= 0).any():
            bad = int(np.flatnonzero((total_n <= 0) | (total_s <= 0))[0])
            raise ValueError(
                f"table {offset + bad}: {int(total_n[bad])} records, {int(total_s[bad])} positives; "
                "expected at least one record and one positive (statsmodels' IRLS fails on an all-negative outcome)"
            )
        present = n_margins > 0
        out.present[offset : offset + B] = present.T
        out.zero_positive[offset : offset + B] = (present & (xs == 0)).T
        mask = present.astype(np.float64)

        # Step 1 from statsmodels' starting μ⁰ = (y + ȳ)/2.
        ybar = total_s / total_n
        m1, m0 = (1.0 + ybar) / 2.0, ybar / 2.0
        negatives = n - s
        w0 = s * m1 + negatives * m0
        wz0 = s * (m1 * np.log(m1) + 1.0 - m1) + negatives * (m0 * np.log(m0) - m0)
        dev_prev = 2.0 * (total_s * (-np.log(m1) - 1.0 + m1) + (total_n - total_s) * m0)
        flat0 = plan.flat_margins(w0)
        beta, singular = _masked_solve(plan.gram(flat0), plan.vector(plan.flat_margins(wz0)), mask)

        active = np.arange(B)  # chunk positions still iterating
        bad = np.zeros(B, bool)
        bad[singular] = True
        state_n, state_s, state_xs, state_mask = n, s, xs, mask
        for iteration in range(1, max_iter + 1):
            mu = self._cell_means(beta)
            expected = state_n * mu
            if self._may_clip(beta, state_mask):
                # statsmodels clips μ at machine ε in the link derivative: below it the
                # IRLS weight is ε²/μ and the working residual (y − μ)/ε (see _clipped)
                ratio = _clip_ratio(mu)
                total = expected.reshape(-1, expected.shape[-1]).sum(axis=0)
                flat = plan.flat_margins(expected * ratio * ratio)
                gradient = plan.vector(plan.flat_margins((state_s - expected) * ratio))
            else:
                flat = plan.flat_margins(expected)
                total = flat[0]
                gradient = None
            dev = 2.0 * (total - state_xs[0] - np.einsum("pb,pb->b", beta, state_xs))
            with np.errstate(invalid="ignore"):
                done = np.abs(dev - dev_prev) <= tol
            if iteration == max_iter:
                finished = np.ones(active.size, bool)
            else:
                finished = done | bad[active]
            if finished.any():
                self._finish(out, offset, active[finished], beta[:, finished], mu[..., finished],
                             state_n[..., finished], state_s[..., finished],
                             state_mask[:, finished], iteration, done[finished])
            keep = ~finished
            if not keep.any():
                break
            if gradient is None:
                gradient = state_xs - plan.vector(flat)
            if not keep.all():
                active = active[keep]
                beta, flat, dev, gradient = beta[:, keep], flat[:, keep], dev[keep], gradient[:, keep]
                state_n, state_s = state_n[..., keep], state_s[..., keep]
                state_xs, state_mask = state_xs[:, keep], state_mask[:, keep]
            step, singular = _masked_solve(plan.gram(flat), gradient, state_mask)
            bad[active[singular]] = True
            beta = beta + step
            dev_prev = dev
        slow = np.flatnonzero(bad)
        for position in slow:
            self._fit_rank_deficient(counts[position], out, offset + position, max_iter, tol)

    def _may_clip(self, beta: np.ndarray, mask: np.ndarray) -> bool:
        """Whether some fit may have a cell with μ < ε: a cheap bound η ≥ β₀ + Σ_f min_l β_f[l]."""
        bound = beta[0].copy()
        for index in self.design.term_index:
            terms = index[index >= 0]
            lowest = np.minimum(0.0, np.where(mask[terms] > 0, beta[terms], 0.0).min(axis=0))
            bound += lowest
        return bool((bound < _LOG_EPS + 1.0).any())

    def _cell_means(self, beta: np.ndarray) -> np.ndarray:
        """(L_1, ..., L_q, B) μ_c = exp(β₀) Π_f exp(β_f[x_f]): products of exps, no per-cell exp."""
        effects = self.design.level_effects(beta.T)  # per feature (B, L_f)
        mu = np.exp(beta[0])
        for effect in effects:
            factor = np.exp(effect.T)  # (L_f, B)
            mu = mu[..., None, :] * factor
        return mu

    def _finish(self, out: BatchFit, offset: int, positions: np.ndarray, beta: np.ndarray, mu: np.ndarray,
                n: np.ndarray, s: np.ndarray, mask: np.ndarray, iteration: int, converged: np.ndarray) -> None:
        """Store coefficients and the HC sandwich H⁻¹ M H⁻¹ at the final β."""
        plan = self.plan
        hessian_weight, meat_weight = _sandwich_weights(mu, n, s)
        P = self.design.size
        eye = np.eye(P)[..., None]
        both = mask[:, None, :] * mask[None, :, :]
        hessian = plan.gram(plan.flat_margins(hessian_weight)) * both + eye * (1.0 - mask[None, :, :])
        meat = plan.gram(plan.flat_margins(meat_weight)) * both
        # batch-first for the small dense algebra
        h = np.moveaxis(hessian, -1, 0)
        m = np.moveaxis(meat, -1, 0)
        with np.errstate(all="ignore"):
            try:
                bread = np.linalg.inv(h)
            except np.linalg.LinAlgError:
                bread = np.stack([np.linalg.pinv(x) for x in h])
            var = np.einsum("bij,bjk,bik->bi", bread, m, bread)
        var = np.where(mask.T > 0, var, np.nan)
        index = offset + positions
        out.coef[index] = beta.T * mask.T
        out.var[index] = var
        out.iterations[index] = iteration
        out.converged[index] = converged

    # -- slow path: collinear present columns -------------------------------------------
    def design_matrix(self) -> np.ndarray:
        """(cells, P) the dense 0/1 design, one row per cell in C order."""
        if self._design_matrix is None:
            grids = np.meshgrid(*[np.arange(L) for L in self.design.shape], indexing="ij")
            X = np.zeros((grids[0].size, self.design.size))
            X[:, 0] = 1.0
            rows = np.arange(grids[0].size)
            for f, grid in enumerate(grids):
                term = self.design.term_index[f][grid.reshape(-1)]
                X[rows[term >= 0], term[term >= 0]] = 1.0
            self._design_matrix = X
        return self._design_matrix

    def _fit_rank_deficient(self, table: np.ndarray, out: BatchFit, index: int, max_iter: int, tol: float) -> None:
        """statsmodels' IRLS with ``lstsq`` (minimum-norm steps) on the non-empty cells."""
        n = table[..., 0].reshape(-1).astype(np.float64)
        s = table[..., 1].reshape(-1).astype(np.float64)
        rows = n > 0
        n, s = n[rows], s[rows]
        present = out.present[index]
        X = self.design_matrix()[rows][:, present]
        ybar = s.sum() / n.sum()
        m1, m0 = (1.0 + ybar) / 2.0, ybar / 2.0
        weight = s * m1 + (n - s) * m0
        # cell-mean working response: Σ_i w_i z_i / Σ_i w_i (same normal equations)
        response = (s * (m1 * np.log(m1) + 1.0 - m1) + (n - s) * (m0 * np.log(m0) - m0)) / weight
        dev_prev = 2.0 * (s.sum() * (-np.log(m1) - 1.0 + m1) + (n - s).sum() * m0)
        converged = False
        for iteration in range(1, max_iter + 1):
            root = np.sqrt(weight)
            beta = np.linalg.lstsq(X * root[:, None], response * root, rcond=-1)[0]
            eta = X @ beta
            mu = np.exp(eta)
            dev = 2.0 * np.sum(n * mu - s - s * eta)
            if abs(dev - dev_prev) <= tol:
                converged = True
                break
            dev_prev = dev
            ratio = _clip_ratio(mu)
            weight = n * mu * ratio * ratio
            response = eta + (s - n * mu) * ratio / weight
        coef = np.zeros(self.design.size)
        coef[present] = beta
        out.coef[index] = coef
        out.var[index] = np.nan
        out.iterations[index] = iteration
        out.converged[index] = converged
        out.rank_deficient[index] = True


def _masked_solve(gram: np.ndarray, rhs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve gram · x = rhs per fit on the present terms (absent terms: x = 0).

    Args:
        gram: (P, P, B) symmetric positive semi-definite.
        rhs: (P, B).
        mask: (P, B) 1.0 for present terms.

    Returns:
        x: (P, B) and (B,) bool: a pivot fell below ``_PIVOT_TOL`` of its diagonal
        (collinear present columns; x is then meaningless).
    """
    P = gram.shape[0]
    eye = np.eye(P)[..., None]
    A = gram * (mask[:, None, :] * mask[None, :, :]) + eye * (1.0 - mask[None, :, :])
    b = rhs * mask
    L = np.zeros_like(A)
    singular = np.zeros(A.shape[-1], bool)
    for j in range(P):
        pivot = A[j, j] - np.einsum("kb,kb->b", L[j, :j], L[j, :j])
        low = ~(pivot > _PIVOT_TOL * A[j, j])
        if low.any():
            singular |= low
            pivot = np.where(low, 1.0, pivot)
        root = np.sqrt(pivot)
        L[j, j] = root
        if j + 1 < P:
            L[j + 1 :, j] = (A[j + 1 :, j] - np.einsum("ikb,kb->ib", L[j + 1 :, :j], L[j, :j])) / root
    y = np.empty_like(b)
    for j in range(P):
        y[j] = (b[j] - np.einsum("kb,kb->b", L[j, :j], y[:j])) / L[j, j]
    x = np.empty_like(b)
    for j in reversed(range(P)):
        x[j] = (y[j] - np.einsum("kb,kb->b", L[j + 1 :, j], x[j + 1 :])) / L[j, j]
    return x * mask, singular


def _clip_ratio(mu: np.ndarray) -> np.ndarray:
    """max(μ, ε)/μ: 1 except where statsmodels' Log link clips μ (μ < ε ≈ 2.2e-16)."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.maximum(1.0, _EPS / np.maximum(mu, np.finfo(float).tiny))


def _sandwich_weights(mu: np.ndarray, n: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell weights of statsmodels' observed Hessian and of the score outer product.

    With m̃ = max(μ, ε) (the Log link's clipping), statsmodels' per-record factors are
    hessian (m̃²/μ)(1 + (y − μ)(m̃ − μ)/(μ m̃)) and score (y − μ) m̃/μ. For μ ≥ ε
    they reduce to μ and y − μ, so the cell sums are nμ and
    Σ(y − μ)² = (n − s)μ² + s(1 − μ)² (binary y).
    """
    negatives = n - s
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        clipped = np.maximum(mu, _EPS)
        scale = clipped / np.maximum(mu, np.finfo(float).tiny)
        k = (clipped - mu) / (mu * clipped)
        a = clipped * scale
        hessian = negatives * a * (1.0 - mu * k) + s * a * (1.0 + (1.0 - mu) * k)
        meat = negatives * clipped * clipped + s * ((1.0 - mu) * scale) ** 2
    return hessian, meat
