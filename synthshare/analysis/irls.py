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
    """Fits the Poisson GLM of one :class:`Design` to many count tables at once.

    The Newton iterations stream through a fixed number of slots (``chunk`` fits side
    by side, batch-last): a fit that converges leaves its slot and the next fit enters,
    so fits needing 5 iterations and fits needing 25 share the vectorised work without
    idling, and the working tables are allocated once.
    """

    def __init__(self, design: Design, chunk: int = _CHUNK) -> None:
        self.design = design
        self.plan = MarginPlan(design)
        self.chunk = int(chunk)
        self._design_matrix: np.ndarray | None = None
        self._cell_entries = self.plan.cell_entries()
        # per cell, the terms its row of X has (intercept + one level per feature); P = none
        P = design.size
        grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(L) for L in design.shape], indexing="ij")]
        terms = [np.zeros_like(grids[0])] + [design.term_index[f][grid] for f, grid in enumerate(grids)]
        self._cell_terms = np.where(np.stack(terms, axis=1) < 0, P, np.stack(terms, axis=1))

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
        if counts.ndim != len(shape) + 2 or counts.shape[1:] != shape + (2,):
            raise ValueError(f"count tables of shape {counts.shape[1:]}; expected {shape + (2,)}")
        B = counts.shape[0]
        P = self.design.size
        out = BatchFit(
            coef=np.zeros((B, P)), var=np.full((B, P), np.nan), present=np.zeros((B, P), bool),
            zero_positive=np.zeros((B, P), bool), iterations=np.zeros(B, np.int64),
            converged=np.zeros(B, bool), rank_deficient=np.zeros(B, bool),
            reference_missing=np.zeros(B, bool),
        )
        if B == 0:
            return out
        # batch-last float copies, made once: every later gather reads whole cell rows
        cells = counts.reshape(B, -1, 2)
        tables = _Tables(np.ascontiguousarray(cells[..., 0].T, dtype=np.float64),
                         np.ascontiguousarray(cells[..., 1].T, dtype=np.float64))
        start = _FirstSteps(B, P)
        for first in range(0, B, self.chunk):
            self._first_step(tables, out, start, first, min(B, first + self.chunk))
        self._newton(tables, out, start, max_iter, tol)
        for index in np.flatnonzero(start.singular):
            self._fit_rank_deficient(counts[index], out, int(index), max_iter, tol)
        return out

    # -- step 1 -------------------------------------------------------------------------
    def _first_step(self, tables: "_Tables", out: BatchFit, start: "_FirstSteps", offset: int, stop: int) -> None:
        """Presence, Xᵀs and statsmodels' first WLS step from μ⁰ = (y + ȳ)/2, for a chunk.

        μ⁰ takes two values (m₁ = (1 + ȳ)/2 on positives, m₀ = ȳ/2 on negatives), so the
        cell sums of w⁰ and w⁰z⁰ are linear in the margins of n and s.
        """
        plan = self.plan
        shape = self.design.shape
        n = tables.n[:, offset:stop].reshape(shape + (stop - offset,))
        s = tables.s[:, offset:stop].reshape(shape + (stop - offset,))
        B = stop - offset
        n_flat = plan.flat_margins(n)
        s_flat = plan.flat_margins(s)
        total_n, total_s = n_flat[0], s_flat[0]
        if (total_n <= 0).any() or (total_s <= 0).any():
            bad = int(np.flatnonzero((total_n <= 0) | (total_s <= 0))[0])
            raise ValueError(
                f"table {offset + bad}: {int(total_n[bad])} records, {int(total_s[bad])} positives; "
                "expected at least one record and one positive (statsmodels' IRLS fails on an all-negative outcome)"
            )
        rows = slice(offset, offset + B)
        for f, ref in enumerate(self.design.reference):
            out.reference_missing[rows] |= plan.one_way(n_flat, f)[ref] <= 0
        present = plan.vector(n_flat) > 0
        xs = plan.vector(s_flat)
        out.present[rows] = present.T
        out.zero_positive[rows] = (present & (xs == 0)).T
        mask = present.astype(np.float64)

        ybar = total_s / total_n
        m1, m0 = (1.0 + ybar) / 2.0, ybar / 2.0
        c1 = m1 * np.log(m1) + 1.0 - m1  # w⁰z⁰ of a positive record: μ log μ + y − μ
        c0 = m0 * np.log(m0) - m0
        negative_flat = n_flat - s_flat
        weight_flat = m1 * s_flat + m0 * negative_flat
        rhs = plan.vector(c1 * s_flat + c0 * negative_flat)
        beta, singular = _masked_solve(plan.gram(weight_flat), rhs, mask)
        start.beta[rows] = beta.T
        start.mask[rows] = mask.T
        start.xs[rows] = xs.T
        start.deviance[rows] = 2.0 * (total_s * (-np.log(m1) - 1.0 + m1) + (total_n - total_s) * m0)
        start.singular[rows] = singular

    # -- steps 2, 3, ... ----------------------------------------------------------------
    def _newton(self, tables: "_Tables", out: BatchFit, start: "_FirstSteps", max_iter: int, tol: float) -> None:
        """Newton steps for all fits, in waves of ``chunk`` fits with similar expected lengths.

        Fits with a zero-positive level run about 20 iterations, the others about 6, so
        fits are ordered by their number of zero-positive levels and processed in waves
        of neighbours: a wave rarely waits for one slow fit, and its tables are one
        contiguous block of columns (no scattered copies). A wave is compacted when
        fewer than half of its fits are still iterating.
        """
        plan = self.plan
        candidates = np.flatnonzero(~start.singular)
        if candidates.size == 0:
            return
        zero_positive = out.zero_positive[candidates].sum(axis=1)
        order = candidates[np.argsort(zero_positive, kind="stable")]
        # one full column permutation reads each cell row once (cheap); subsets would not be
        n_sorted = np.take(tables.n, order, axis=1)
        s_sorted = np.take(tables.s, order, axis=1)
        final_beta = np.zeros((self.design.size, order.size))
        final_flat = np.zeros((plan.flat_size, order.size))
        for first in range(0, order.size, self.chunk):
            block = slice(first, min(order.size, first + self.chunk))
            slots = _Slots(self.design, n_sorted[:, block], s_sorted[:, block], np.arange(block.start, block.stop),
                           order[block], start, plan.flat_size)
            while slots.width:
                mu = self._cell_means(slots.beta, slots.mu, slots.stages)
                np.multiply(slots.n, mu, out=slots.expected)
                plain = plan.flat_margins(slots.expected, out=slots.flat)
                total = plain[0].copy()
                gradient = slots.xs - plan.vector(plain)
                flat = plain
                if self._may_clip(slots.beta, slots.mask):
                    flat = self._clip_corrections(slots, plain, gradient)
                deviance = 2.0 * (total - slots.xs[0] - np.einsum("pb,pb->b", slots.beta, slots.xs))
                with np.errstate(invalid="ignore"):
                    done = np.abs(deviance - slots.deviance) <= tol
                finished = slots.live & (done | (slots.iteration >= max_iter))
                if finished.any():
                    where = np.flatnonzero(finished)
                    position = slots.position[where]
                    final_beta[:, position] = slots.beta[:, where]
                    final_flat[:, position] = plain[:, where]
                    out.iterations[slots.fit[where]] = slots.iteration[where]
                    out.converged[slots.fit[where]] = done[where]
                    slots.live[where] = False
                if not slots.live.any():
                    break
                step, singular = _masked_solve(plan.gram(flat), gradient, slots.mask)
                slots.beta += step
                slots.deviance = deviance
                slots.iteration += 1
                bad = slots.live & singular
                if bad.any():
                    # collinear columns appeared: redo these fits on the slow path
                    start.singular[slots.fit[bad]] = True
                    slots.live[bad] = False
                if slots.live.sum() < slots.width // 2:
                    slots = slots.compact(np.flatnonzero(slots.live))
        for first in range(0, order.size, self.chunk):
            block = slice(first, min(order.size, first + self.chunk))
            fits = order[block]
            keep = ~start.singular[fits]
            self._sandwich(out, fits[keep], final_beta[:, block][:, keep], final_flat[:, block][:, keep],
                           n_sorted[:, block][:, keep], s_sorted[:, block][:, keep], start.mask[fits[keep]].T)

    def _may_clip(self, beta: np.ndarray, mask: np.ndarray) -> bool:
        """Whether some fit may have a cell with μ < ε: a cheap bound η ≥ β₀ + Σ_f min_l β_f[l]."""
        bound = beta[0].copy()
        for index in self.design.term_index:
            terms = index[index >= 0]
            bound += np.minimum(0.0, np.where(mask[terms] > 0, beta[terms], 0.0).min(axis=0))
        return bool((bound < _LOG_EPS + 1.0).any())

    def _clip_corrections(self, slots: "_Slots", flat: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Apply statsmodels' Log-link clipping (μ < ε) to the Gram margins and the gradient.

        Below ε the IRLS weight is ε²/μ instead of μ and the working residual is
        (y − μ)/ε instead of (y − μ)/μ: per cell nμ·(r² − 1) more weight and
        (s − nμ)(r − 1) more gradient, r = ε/μ. Only the few affected cells are touched.
        """
        low = np.less(slots.mu, _EPS, out=slots.low)
        low &= slots.n > 0
        if not low.any():
            return flat
        cells, columns = np.nonzero(low.reshape(-1, slots.width))
        mu = slots.mu.reshape(-1, slots.width)[cells, columns]
        expected = slots.expected.reshape(-1, slots.width)[cells, columns]
        positives = slots.s.reshape(-1, slots.width)[cells, columns]
        ratio = _clip_ratio(mu)
        corrected = flat.copy()
        np.add.at(corrected, (self._cell_entries[cells], columns[:, None]), (expected * (ratio * ratio - 1.0))[:, None])
        extended = np.zeros((gradient.shape[0] + 1, gradient.shape[1]))
        np.add.at(extended, (self._cell_terms[cells], columns[:, None]), ((positives - expected) * (ratio - 1.0))[:, None])
        gradient += extended[:-1]
        return corrected

    def _cell_means(self, beta: np.ndarray, out: np.ndarray | None = None,
                    stages: list[np.ndarray] | None = None) -> np.ndarray:
        """(L_1, ..., L_q, B) μ_c = exp(β₀) Π_f exp(β_f[x_f]): products of exps, no per-cell exp."""
        effects = self.design.level_effects(beta.T)  # per feature (B, L_f)
        mu = np.exp(beta[0])
        last = len(effects) - 1
        for f, effect in enumerate(effects):
            factor = np.exp(effect.T)  # (L_f, B)
            target = out if f == last else (stages[f] if stages is not None else None)
            mu = np.multiply(mu[..., None, :], factor, out=target)
        return mu

    def _sandwich(self, out: BatchFit, fits: np.ndarray, beta: np.ndarray, hessian_flat: np.ndarray,
                  n: np.ndarray, s: np.ndarray, mask: np.ndarray) -> None:
        """Store coefficients and the HC sandwich H⁻¹ M H⁻¹ at the final β of some fits.

        Args:
            fits: (b,) their indices; beta, mask: (P, b); hessian_flat: (flat_size, b) the
                margins of nμ at the final β; n, s: (cells, b) their tables.
        """
        if fits.size == 0:
            return
        plan = self.plan
        shape = self.design.shape
        b = fits.size
        n = n.reshape(shape + (b,))
        s = s.reshape(shape + (b,))
        mu = self._cell_means(beta)
        # Σ_i (y_i − μ)² per cell = (n − s)μ² + s(1 − μ)² for binary y (in place: big tables)
        meat_weight = np.subtract(n, s)
        meat_weight *= mu
        meat_weight *= mu
        residual = np.subtract(1.0, mu)
        residual *= residual
        residual *= s
        meat_weight += residual
        meat_flat = plan.flat_margins(meat_weight)
        if self._may_clip(beta, mask):
            low = (mu < _EPS) & (n > 0)
            if low.any():
                hessian_flat = hessian_flat.copy()
                cells, columns = np.nonzero(low.reshape(-1, b))
                mu_low = mu.reshape(-1, b)[cells, columns]
                n_low = n.reshape(-1, b)[cells, columns]
                h_exact, m_exact = _sandwich_weights(mu_low, n_low, s.reshape(-1, b)[cells, columns])
                entries = (self._cell_entries[cells], columns[:, None])
                np.add.at(hessian_flat, entries, (h_exact - n_low * mu_low)[:, None])
                np.add.at(meat_flat, entries, (m_exact - meat_weight.reshape(-1, b)[cells, columns])[:, None])
        P = self.design.size
        eye = np.eye(P)[..., None]
        both = mask[:, None, :] * mask[None, :, :]
        hessian = plan.gram(hessian_flat) * both + eye * (1.0 - mask[None, :, :])
        meat = plan.gram(meat_flat) * both
        h = np.moveaxis(hessian, -1, 0)  # batch-first for the small dense algebra
        m = np.moveaxis(meat, -1, 0)
        with np.errstate(all="ignore"):
            try:
                bread = np.linalg.inv(h)
            except np.linalg.LinAlgError:
                bread = np.stack([np.linalg.pinv(x) for x in h])
            var = np.einsum("bij,bjk,bik->bi", bread, m, bread)
        out.coef[fits] = (beta * mask).T
        out.var[fits] = np.where(mask.T > 0, var, np.nan)

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


class _Tables:
    """All count tables of a call, batch-last: (cells, B) records and positives as floats."""

    def __init__(self, n: np.ndarray, s: np.ndarray) -> None:
        self.n = n
        self.s = s


class _FirstSteps:
    """Per-fit state after statsmodels' first IRLS step (batch-first)."""

    def __init__(self, B: int, P: int) -> None:
        self.beta = np.zeros((B, P))
        self.mask = np.zeros((B, P))
        self.xs = np.zeros((B, P))
        self.deviance = np.zeros(B)
        self.singular = np.zeros(B, bool)


class _Slots:
    """The working set of one wave: ``width`` fits side by side (batch-last, contiguous)."""

    def __init__(self, design: Design, n: np.ndarray, s: np.ndarray, position: np.ndarray, fit: np.ndarray,
                 start: _FirstSteps, flat_size: int, copy: bool = True) -> None:
        shape = design.shape
        width = n.shape[1]
        self.design = design
        self.width = width
        self.position = position  # column in the sorted tables
        self.fit = fit  # index of the fit in the call
        self.live = np.ones(width, bool)
        self.n = np.ascontiguousarray(n).reshape(shape + (width,))
        self.s = np.ascontiguousarray(s).reshape(shape + (width,))
        self.low = np.empty(shape + (width,), bool)
        self.mu = np.empty(shape + (width,))
        self.expected = np.empty(shape + (width,))
        self.stages = [np.empty(shape[: f + 1] + (width,)) for f in range(len(shape))]
        self.flat = np.empty((flat_size, width))
        if copy:
            self.beta = start.beta[fit].T.copy()
            self.mask = start.mask[fit].T.copy()
            self.xs = start.xs[fit].T.copy()
            self.deviance = start.deviance[fit].copy()
            self.iteration = np.ones(width, dtype=np.int64)

    def compact(self, keep: np.ndarray) -> "_Slots":
        """A narrower working set holding only the slots ``keep``."""
        cells = (-1, self.width)
        narrow = _Slots(self.design, self.n.reshape(cells)[:, keep], self.s.reshape(cells)[:, keep],
                        self.position[keep], self.fit[keep], None, self.flat.shape[0], copy=False)
        narrow.beta = self.beta[:, keep]
        narrow.mask = self.mask[:, keep]
        narrow.xs = self.xs[:, keep]
        narrow.deviance = self.deviance[keep]
        narrow.iteration = self.iteration[keep]
        return narrow


def _masked_solve(gram: np.ndarray, rhs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve gram · x = rhs per fit on the present terms (absent terms: x = 0).

    Args:
        gram: (P, P, B) symmetric positive semi-definite.
        rhs: (P, B).
        mask: (P, B) 1.0 for present terms.

    Returns:
        x: (P, B) and (B,) bool: a Cholesky pivot fell below ``_PIVOT_TOL`` of its
        diagonal entry (collinear present columns; x is then meaningless).
    """
    P = gram.shape[0]
    m = mask.T  # (B, P)
    A = np.moveaxis(gram, -1, 0) * (m[:, :, None] * m[:, None, :])
    diagonal = np.einsum("bii->bi", A)
    diagonal += 1.0 - m  # absent terms: identity rows
    b = rhs.T * m
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        L = _cholesky_flagging(A)
    pivot = np.einsum("bii->bi", L) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        singular = ~(pivot > _PIVOT_TOL * diagonal).all(axis=1)
    if singular.any():
        L = L.copy()
        np.einsum("bii->bi", L)[singular] = 1.0  # keep the substitution finite; the fit is redone
    y = np.empty_like(b)
    for j in range(P):
        y[:, j] = (b[:, j] - np.einsum("bk,bk->b", L[:, j, :j], y[:, :j])) / L[:, j, j]
    x = np.empty_like(b)
    for j in reversed(range(P)):
        x[:, j] = (y[:, j] - np.einsum("bk,bk->b", L[:, j + 1 :, j], x[:, j + 1 :])) / L[:, j, j]
    return (x * m).T, singular


def _cholesky_flagging(A: np.ndarray) -> np.ndarray:
    """Batched Cholesky that continues past non-positive pivots (left as NaN on the diagonal)."""
    B, P, _ = A.shape
    L = np.zeros_like(A)
    for j in range(P):
        pivot = A[:, j, j] - np.einsum("bk,bk->b", L[:, j, :j], L[:, j, :j])
        root = np.sqrt(np.where(pivot > 0, pivot, np.nan))
        L[:, j, j] = root
        safe = np.where(np.isfinite(root), root, 1.0)
        L[:, j + 1 :, j] = (A[:, j + 1 :, j] - np.einsum("bik,bk->bi", L[:, j + 1 :, :j], L[:, j, :j])) / safe[:, None]
    return L


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
