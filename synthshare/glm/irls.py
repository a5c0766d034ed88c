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
"HC1" equals "HC0"; checked numerically). Per cell, Σ_i (y_i − μ_c)² = n_c μ_c² −
2 s_c μ_c + s_c (binary y), so M = Xᵀ diag(nμ² − 2sμ + s) X.

Below machine ε statsmodels' Log link clips μ in its derivatives (``Link._clean``): the
IRLS weight becomes ε²/μ, the working residual (y − μ)/ε, and the observed Hessian and
score change likewise. Cells with μ < ε appear when several zero-positive levels meet;
they are found and corrected one by one (``_clip_corrections``, ``_sandwich_weights``).

Speed: every margin needed (score, Hessian, meat) is a margin of n ⊙ μ (or s ⊙ μ,
n ⊙ μ²) with μ = exp(β₀) Π_f exp(β_f[x_f]) a product of per-level factors, so
:class:`~synthshare.glm.margins.FactorMargins` gets them from two small matrix
products per fit without forming μ over the cells. Fits are solved in waves of
``chunk``, ordered by their number of zero-positive levels (≈ 6 vs ≈ 20 iterations).
Given warm starts, a fit whose table has no zero-positive level (a unique finite MLE,
which statsmodels returns up to its tolerance) is instead solved by Newton from its
start to full convergence (``_newton_warm``); measured ≈ 4.7 steps from the previous
step's fit vs ≈ 5-6 replayed iterations, because one more party still moves rare-level
coefficients by ~0.3.

Two implementations of this iteration: the compiled per-fit kernel of
:mod:`synthshare.glm.irls_kernel` (numba; the default, ``PoissonBatchSolver(kernel=
"numba")``, ~4x the numpy path; it reads int32 views of the count tables in place)
and the batched numpy code of this module (``kernel="numpy"``), kept as the reference
it is tested against (tests/test_glm_irls_kernel.py). Designs of fewer than 3 features
use numpy.

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

from synthshare.glm.design import Design
from synthshare.glm.irls_kernel import KernelTables, run_kernel
from synthshare.glm.margins import FactorMargins, MarginPlan

KERNELS = ("numba", "numpy")
"""Implementations of the same iteration: compiled per fit, or the batched numpy reference."""

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
"""Fits per wave (batched matrix products of this many (Λ × R) tables; measured best)."""
WARM_STEP_TOL = 1e-8
"""Warm-started Newton stops once its step is at most this in every coefficient: the
returned β + δ is then within ~δ² of the MLE and the Hessian taken at β is off by a
relative ~|Xδ| ≤ 6e-8 (the standard errors likewise), well inside the 1e-6 agreement."""
WARM_MAX_ITER = 12
"""A warm-started fit not converged after this many Newton steps is replayed instead."""


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
        failed: (B,) no record or no positive: statsmodels raises (its first deviance is
            NaN); coefficients and variances are NaN and no term is present.
        warm: (B,) solved to the MLE by Newton from a given start instead of replaying
            statsmodels' iteration (``iterations`` then counts those Newton steps).
    """

    coef: np.ndarray
    var: np.ndarray
    present: np.ndarray
    zero_positive: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    rank_deficient: np.ndarray
    reference_missing: np.ndarray
    failed: np.ndarray
    warm: np.ndarray


class PoissonBatchSolver:
    """Fits the Poisson GLM of one :class:`Design` to many count tables at once."""

    def __init__(self, design: Design, chunk: int = _CHUNK, kernel: str = "numba", tail: bool = True) -> None:
        """
        Args:
            chunk: fits per wave of the numpy path.
            kernel: ``"numba"`` (the compiled kernel of :mod:`synthshare.glm.irls_kernel`,
                used for designs of at least 3 features) or ``"numpy"`` (the batched
                reference implementation in this module). Both run the same iteration.
            tail: the compiled kernel's tail jump over the geometric tail of zero-positive
                fits (``irls_kernel``'s module docstring; the numpy path replays every
                iteration).
        """
        if kernel not in KERNELS:
            raise ValueError(f"kernel {kernel!r}; expected one of {list(KERNELS)}")
        self.design = design
        self.plan = MarginPlan(design)
        self.chunk = int(chunk)
        self.tail = bool(tail)
        self.kernel = kernel if len(design.shape) >= 3 else "numpy"
        self._tables = KernelTables.build(design, self.plan) if self.kernel == "numba" else None
        self._design_matrix: np.ndarray | None = None
        self._cell_entries = self.plan.cell_entries()
        shape = design.shape
        P = design.size
        grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(L) for L in shape], indexing="ij")]
        terms = np.stack([np.zeros_like(grids[0])] + [design.term_index[f][grid] for f, grid in enumerate(grids)], axis=1)
        # per cell, the terms its row of X has (intercept + one level per feature); P = none
        self._cell_terms = np.where(terms < 0, P, terms)
        split = max(0, len(shape) - 2)
        self._left_features, self._right_features = list(range(split)), list(range(split, len(shape)))
        self._left = int(np.prod(shape[:split], dtype=int))
        self._right = int(np.prod(shape[split:], dtype=int))
        self._margins = FactorMargins(self.plan) if len(shape) >= 3 else None

    # -- public -------------------------------------------------------------------------
    def fit(self, counts: np.ndarray, max_iter: int = MAX_ITER, tol: float = TOL,
            start: np.ndarray | None = None) -> BatchFit:
        """Fit every table of a batch.

        Args:
            counts: (B, L_1, ..., L_q, 2) records and positives per cell (``cells.py``).
                A table without records or positives is marked ``failed`` (statsmodels
                fails on an all-negative outcome: its first deviance is NaN).
            start: optional (B, P) warm starts (e.g. the fit of a slightly smaller data
                set); a NaN coefficient starts from statsmodels' first step, an all-NaN
                row means no warm start. A fit whose table has no level without
                positives has a unique finite MLE, which is statsmodels' answer up to its
                convergence tolerance (log link = canonical: IRLS is Newton's method), so
                it is solved by Newton from its start to full convergence. Fits with a
                zero-positive level (statsmodels' answer is where its iteration stops),
                a missing reference level or collinear columns, and warm fits that do not
                converge within ``WARM_MAX_ITER`` steps or reach μ < ε, are replayed.

        Returns:
            A :class:`BatchFit` of B fits.
        """
        counts = np.asarray(counts)
        shape = self.design.shape
        if counts.ndim != len(shape) + 2 or counts.shape[1:] != shape + (2,):
            raise ValueError(f"count tables of shape {counts.shape[1:]}; expected {shape + (2,)}")
        B = counts.shape[0]
        P = self.design.size
        if start is not None:
            start = np.asarray(start, dtype=np.float64)
            if start.shape != (B, P):
                raise ValueError(f"warm starts of shape {start.shape}; expected {(B, P)}")
        out = BatchFit(
            coef=np.zeros((B, P)), var=np.full((B, P), np.nan), present=np.zeros((B, P), bool),
            zero_positive=np.zeros((B, P), bool), iterations=np.zeros(B, np.int64),
            converged=np.zeros(B, bool), rank_deficient=np.zeros(B, bool),
            reference_missing=np.zeros(B, bool), failed=np.zeros(B, bool), warm=np.zeros(B, bool),
        )
        if B == 0:
            return out
        cells = counts.reshape(B, self._left, self._right, 2)
        if self.kernel == "numba":
            # int32 views straight into the kernel: no float copies of the tables
            if cells.dtype != np.int32:
                if cells.size and (cells.min() < 0 or cells.max() > np.iinfo(np.int32).max):
                    raise ValueError(f"counts from {cells.min()} to {cells.max()}; expected 0 … 2^31 − 1")
                converted = cells.astype(np.int32)
                if not np.issubdtype(cells.dtype, np.integer) and not np.array_equal(converted, cells):
                    raise ValueError("count tables with non-integer entries; expected records and positives per cell")
                cells = converted
            return self._fit_compiled(counts, cells[..., 0], cells[..., 1], out, max_iter, tol, start)
        n = np.ascontiguousarray(cells[..., 0], dtype=np.float64)
        s = np.ascontiguousarray(cells[..., 1], dtype=np.float64)
        state = self._first_step(n, s, out)
        state.singular &= ~out.failed
        replay = ~state.singular & ~out.failed
        finished = []
        if start is not None:
            # decided from the count table alone, before any iteration
            warm = (replay & np.isfinite(start).any(axis=1) & ~out.zero_positive.any(axis=1)
                    & ~out.reference_missing)
            # a coefficient without a start begins at statsmodels' first step
            start = np.where(np.isfinite(start), start, state.beta)
            solved = self._newton_warm(n, s, out, state, np.flatnonzero(warm), start)
            out.warm[solved] = True
            replay[solved] = False
            finished.append(solved)
        finished.append(self._newton(n, s, out, state, np.flatnonzero(replay), max_iter, tol))
        done = np.sort(np.concatenate(finished))
        done = done[~state.singular[done]]
        for first in range(0, done.size, self.chunk):
            fits = done[first : first + self.chunk]
            self._sandwich(out, fits, state.beta[fits], state.mask[fits], n[fits], s[fits], state.s_flat[fits],
                           state.hessian_flat[fits])
        return self._finish(counts, out, state.singular, max_iter, tol)

    def _fit_compiled(self, counts: np.ndarray, n: np.ndarray, s: np.ndarray, out: BatchFit, max_iter: int,
                      tol: float, start: np.ndarray | None) -> BatchFit:
        """:meth:`fit` by the compiled kernel; the collinear slow path and the sandwich of a
        Hessian without positive Cholesky pivots stay here."""
        result = run_kernel(self._tables, n, s, start, max_iter, tol, tail=self.tail)
        for name in ("present", "zero_positive", "iterations", "converged", "reference_missing", "failed", "warm"):
            getattr(out, name)[:] = getattr(result, name)
        done = np.flatnonzero(~result.failed & ~result.singular)
        out.coef[done] = result.beta[done]
        out.var[done] = result.var[done]
        done = done[~result.sandwich[done]]  # H without positive pivots: numpy's inv / pinv
        for first in range(0, done.size, self.chunk):
            fits = done[first : first + self.chunk]
            self._sandwich_algebra(out, fits, result.beta[fits], result.mask[fits], result.hessian_flat[fits],
                                   result.meat_flat[fits])
        return self._finish(counts, out, result.singular, max_iter, tol)

    def _finish(self, counts: np.ndarray, out: BatchFit, singular: np.ndarray, max_iter: int, tol: float) -> BatchFit:
        """Both paths' last step: replay the collinear fits on the slow path, blank the failed ones."""
        for index in np.flatnonzero(singular):
            self._fit_rank_deficient(counts[index], out, int(index), max_iter, tol)
        out.coef[out.failed] = np.nan
        out.var[out.failed] = np.nan
        out.zero_positive[out.failed] = False
        return out

    # -- margins --------------------------------------------------------------------------
    def margins(self, n: np.ndarray, left: np.ndarray | None, right: np.ndarray | None) -> np.ndarray:
        """(B, flat_size) margins of n ⊙ (left ⊗ right); see :class:`FactorMargins`."""
        if self._margins is not None:
            return self._margins.margins(n, left, right)
        weights = n if left is None else n * left[:, :, None]
        weights = weights if right is None else weights * right[:, None, :]
        table = np.moveaxis(weights.reshape((n.shape[0],) + self.design.shape), 0, -1)
        return np.ascontiguousarray(self.plan.flat_margins(table).T)

    def factors(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, Λ) and (B, R): μ = left ⊗ right over (left, right) cells; exp(β₀) in left."""
        effects = self.design.level_effects(beta)  # per feature (B, L_f)
        left = np.exp(beta[:, :1])
        for f in self._left_features:
            left = (left[:, :, None] * np.exp(effects[f])[:, None, :]).reshape(beta.shape[0], -1)
        right = np.ones((beta.shape[0], 1))
        for f in self._right_features:
            right = (right[:, :, None] * np.exp(effects[f])[:, None, :]).reshape(beta.shape[0], -1)
        return left, right

    # -- step 1 -------------------------------------------------------------------------
    def _first_step(self, n: np.ndarray, s: np.ndarray, out: BatchFit) -> "_FirstSteps":
        """Presence, Xᵀs and statsmodels' first WLS step from μ⁰ = (y + ȳ)/2.

        μ⁰ takes two values (m₁ = (1 + ȳ)/2 on positives, m₀ = ȳ/2 on negatives), so the
        cell sums of w⁰ and w⁰z⁰ are linear in the margins of n and s.
        """
        plan = self.plan
        B = n.shape[0]
        start = _FirstSteps(B, self.design.size, plan.flat_size)
        for first in range(0, B, self.chunk):
            rows = slice(first, min(B, first + self.chunk))
            n_flat = self.margins(n[rows], None, None)
            s_flat = self.margins(s[rows], None, None)
            failed = (n_flat[:, 0] <= 0) | (s_flat[:, 0] <= 0)
            out.failed[rows] = failed
            # statsmodels raises on these (its first deviance is NaN); give them a
            # harmless stand-in here and blank them out at the end
            n_flat[failed, 0] = 2.0
            s_flat[failed, 0] = 1.0
            total_n, total_s = n_flat[:, 0], s_flat[:, 0]
            for f, ref in enumerate(self.design.reference):
                out.reference_missing[rows] |= n_flat[:, plan.one_way_index(f)[ref]] <= 0
            present = n_flat[:, plan.vector_index] > 0
            present[:, 0] = True
            present[failed] = False
            xs = s_flat[:, plan.vector_index]
            out.present[rows] = present
            out.zero_positive[rows] = present & (xs == 0)
            mask = present.astype(np.float64)

            ybar = (total_s / total_n)[:, None]
            m1, m0 = (1.0 + ybar) / 2.0, ybar / 2.0
            c1 = m1 * np.log(m1) + 1.0 - m1  # w⁰z⁰ of a positive record: μ log μ + y − μ
            c0 = m0 * np.log(m0) - m0
            negative_flat = n_flat - s_flat
            weight_flat = m1 * s_flat + m0 * negative_flat
            rhs = (c1 * s_flat + c0 * negative_flat)[:, plan.vector_index]
            beta, singular = _masked_solve(self._gram(weight_flat), rhs, mask)
            start.beta[rows] = beta
            start.mask[rows] = mask
            start.xs[rows] = xs
            start.s_flat[rows] = s_flat
            m1, m0 = m1[:, 0], m0[:, 0]
            start.deviance[rows] = 2.0 * (total_s * (-np.log(m1) - 1.0 + m1) + (total_n - total_s) * m0)
            start.singular[rows] = singular
        return start

    def _gram(self, flat: np.ndarray) -> np.ndarray:
        P = self.design.size
        return flat[:, self.plan.gram_index].reshape(flat.shape[0], P, P)

    # -- steps 2, 3, ... ----------------------------------------------------------------
    def _newton(self, n: np.ndarray, s: np.ndarray, out: BatchFit, start: "_FirstSteps", candidates: np.ndarray,
                max_iter: int, tol: float) -> np.ndarray:
        """statsmodels' iterations 2, 3, ... for the candidate fits, in waves of ``chunk`` fits
        with similar expected lengths.

        Fits with a zero-positive level run about 20 iterations, the others about 6, so
        fits are ordered by their number of zero-positive levels and processed in waves
        of neighbours; a wave is compacted when fewer than half of its fits still iterate.

        Returns:
            The fits that finished (the others turned out collinear: ``start.singular``).
        """
        plan = self.plan
        if candidates.size == 0:
            return np.zeros(0, np.intp)
        order = candidates[np.argsort(out.zero_positive[candidates].sum(axis=1), kind="stable")]
        done_fits: list[np.ndarray] = []
        for first in range(0, order.size, self.chunk):
            fits = order[first : first + self.chunk]
            wave = _Wave(fits, n[fits], s[fits], start)
            while wave.fit.size:
                left, right = self.factors(wave.beta)
                plain = self.margins(wave.n, left, right)  # of nμ: the Hessian where μ ≥ ε
                total = plain[:, 0]
                gradient = wave.xs - plain[:, plan.vector_index]
                flat = plain
                if self._may_clip(wave.beta, wave.mask).any():
                    flat = self._clip_corrections(wave, left, right, plain, gradient)
                deviance = 2.0 * (total - wave.xs[:, 0] - np.einsum("bp,bp->b", wave.beta, wave.xs))
                with np.errstate(invalid="ignore"):
                    done = np.abs(deviance - wave.deviance) <= tol
                finished = done | (wave.iteration >= max_iter)
                if finished.any():
                    index = wave.fit[finished]
                    start.beta[index] = wave.beta[finished]
                    start.hessian_flat[index] = plain[finished]
                    out.iterations[index] = wave.iteration[finished]
                    out.converged[index] = done[finished]
                    done_fits.append(index)
                step, singular = _masked_solve(self._gram(flat), gradient, wave.mask)
                wave.beta += step
                wave.deviance = deviance
                wave.iteration += 1
                bad = ~finished & singular
                if bad.any():
                    # collinear columns appeared: redo these fits on the slow path
                    start.singular[wave.fit[bad]] = True
                    done_fits.append(wave.fit[bad])
                keep = ~finished & ~bad
                if not keep.all():
                    wave = wave.select(keep)
        finished_fits = np.concatenate(done_fits)
        return finished_fits[~start.singular[finished_fits]]

    def _newton_warm(self, n: np.ndarray, s: np.ndarray, out: BatchFit, state: "_FirstSteps", candidates: np.ndarray,
                     start: np.ndarray) -> np.ndarray:
        """Newton's method from warm starts to the MLE, for fits known to have one.

        Stops a fit once its step δ has |δ| ≤ ``WARM_STEP_TOL`` everywhere and returns
        β + δ, keeping the Hessian at β for the sandwich. A fit that leaves the plain
        regime (μ < ε possible, collinear columns, non-finite values) or needs more than
        ``WARM_MAX_ITER`` steps is left untouched for the replay.

        Returns:
            The fits solved (``state.beta``/``hessian_flat`` and ``out`` updated).
        """
        plan = self.plan
        solved: list[np.ndarray] = [np.zeros(0, np.intp)]
        for first in range(0, candidates.size, self.chunk):
            fits = candidates[first : first + self.chunk]
            wave = _Wave(fits, n[fits], s[fits], None)
            wave.mask = state.mask[fits]
            wave.xs = state.xs[fits]
            wave.beta = start[fits] * wave.mask  # absent terms: 0
            wave.iteration = np.zeros(fits.size, dtype=np.int64)
            wave.deviance = np.zeros(fits.size)
            while wave.fit.size:
                # a diverging start overflows here; such fits are caught below and replayed
                with np.errstate(over="ignore", invalid="ignore"):
                    left, right = self.factors(wave.beta)
                    plain = self.margins(wave.n, left, right)
                    gradient = wave.xs - plain[:, plan.vector_index]
                    step, singular = _masked_solve(self._gram(plain), gradient, wave.mask)
                    size = np.abs(step).max(axis=1)
                    small = size <= WARM_STEP_TOL
                wave.iteration += 1
                bad = singular | ~np.isfinite(size) | self._may_clip(wave.beta, wave.mask)
                done = small & ~bad
                bad |= ~done & (wave.iteration >= WARM_MAX_ITER)
                if done.any():
                    index = wave.fit[done]
                    state.beta[index] = wave.beta[done] + step[done]
                    state.hessian_flat[index] = plain[done]
                    out.iterations[index] = wave.iteration[done]
                    out.converged[index] = True
                    solved.append(index)
                keep = ~done & ~bad
                wave.beta = wave.beta + step
                if not keep.all():
                    wave = wave.select(keep)
        return np.concatenate(solved)

    def _may_clip(self, beta: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(B,) whether a fit may have a cell with μ < ε: the bound η ≥ β₀ + Σ_f min_l β_f[l]."""
        bound = beta[:, 0].copy()
        for index in self.design.term_index:
            terms = index[index >= 0]
            bound += np.minimum(0.0, np.where(mask[:, terms] > 0, beta[:, terms], 0.0).min(axis=1))
        return bound < _LOG_EPS + 1.0

    def _low_cells(self, fits: np.ndarray, left: np.ndarray, right: np.ndarray, n: np.ndarray):
        """(rows, cells, μ) of occupied cells with μ < ε among the given fits (rows index the batch)."""
        if fits.size == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
        mu = left[fits][:, :, None] * right[fits][:, None, :]
        rows, cells = np.nonzero(((mu < _EPS) & (n[fits] > 0)).reshape(fits.size, -1))
        return fits[rows], cells, mu.reshape(fits.size, -1)[rows, cells]

    def _clip_corrections(self, wave: "_Wave", left: np.ndarray, right: np.ndarray, flat: np.ndarray,
                          gradient: np.ndarray) -> np.ndarray:
        """Apply statsmodels' Log-link clipping (μ < ε) to the Gram margins and the gradient.

        Below ε the IRLS weight is ε²/μ instead of μ and the working residual is
        (y − μ)/ε instead of (y − μ)/μ: per cell nμ·(r² − 1) more weight and
        (s − nμ)(r − 1) more gradient, r = ε/μ. Only the affected cells are touched.
        """
        rows, cells, mu = self._low_cells(np.flatnonzero(self._may_clip(wave.beta, wave.mask)), left, right, wave.n)
        if rows.size == 0:
            return flat
        n = wave.n.reshape(wave.n.shape[0], -1)[rows, cells]
        s = wave.s.reshape(wave.s.shape[0], -1)[rows, cells]
        expected = n * mu
        ratio = _clip_ratio(mu)
        corrected = flat.copy()
        np.add.at(corrected, (rows[:, None], self._cell_entries[cells]), (expected * (ratio * ratio - 1.0))[:, None])
        extended = np.zeros((gradient.shape[0], gradient.shape[1] + 1))
        np.add.at(extended, (rows[:, None], self._cell_terms[cells]), ((s - expected) * (ratio - 1.0))[:, None])
        gradient += extended[:, :-1]
        return corrected

    def _sandwich(self, out: BatchFit, fits: np.ndarray, beta: np.ndarray, mask: np.ndarray, n: np.ndarray,
                  s: np.ndarray, s_flat: np.ndarray, hessian_flat: np.ndarray) -> None:
        """Store coefficients and the HC sandwich H⁻¹ M H⁻¹ at the final β of some fits.

        Hessian: the margins of n ⊙ μ at the final β (kept from the last iteration);
        meat: Σ(y − μ)² = nμ² − 2sμ + s per cell, i.e. the margins of n ⊙ μ², s ⊙ μ and s,
        each a factorised margin. Cells with μ < ε get statsmodels' clipped values.
        """
        left, right = self.factors(beta)
        meat_flat = self.margins(n, left * left, right * right) - 2.0 * self.margins(s, left, right) + s_flat
        rows, cells, mu = self._low_cells(np.flatnonzero(self._may_clip(beta, mask)), left, right, n)
        if rows.size:
            n_low = n.reshape(n.shape[0], -1)[rows, cells]
            s_low = s.reshape(s.shape[0], -1)[rows, cells]
            h_exact, m_exact = _sandwich_weights(mu, n_low, s_low)
            entries = (rows[:, None], self._cell_entries[cells])
            np.add.at(hessian_flat, entries, (h_exact - n_low * mu)[:, None])
            np.add.at(meat_flat, entries, (m_exact - (n_low * mu * mu - 2.0 * s_low * mu + s_low))[:, None])
        self._sandwich_algebra(out, fits, beta, mask, hessian_flat, meat_flat)

    def _sandwich_algebra(self, out: BatchFit, fits: np.ndarray, beta: np.ndarray, mask: np.ndarray,
                          hessian_flat: np.ndarray, meat_flat: np.ndarray) -> None:
        """Store β and diag(H⁻¹ M H⁻¹) from the flat Hessian and meat margins (absent terms: NaN)."""
        both = mask[:, :, None] * mask[:, None, :]
        hessian = self._gram(hessian_flat) * both
        diagonal = np.einsum("bii->bi", hessian)
        diagonal += 1.0 - mask  # absent terms: identity rows
        meat = self._gram(meat_flat) * both
        with np.errstate(all="ignore"):
            try:
                bread = np.linalg.inv(hessian)
            except np.linalg.LinAlgError:
                bread = np.stack([np.linalg.pinv(x) for x in hessian])
            var = (np.matmul(bread, meat) * bread).sum(axis=2)  # diag(A M Aᵀ), A symmetric
        out.coef[fits] = beta * mask
        out.var[fits] = np.where(mask > 0, var, np.nan)

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


class _FirstSteps:
    """Per-fit state after statsmodels' first IRLS step (later: the final β)."""

    def __init__(self, B: int, P: int, flat_size: int) -> None:
        self.beta = np.zeros((B, P))
        self.mask = np.zeros((B, P))
        self.xs = np.zeros((B, P))
        self.s_flat = np.zeros((B, flat_size))
        self.hessian_flat = np.zeros((B, flat_size))
        self.deviance = np.zeros(B)
        self.singular = np.zeros(B, bool)


class _Wave:
    """The fits of one wave that are still iterating (batch-first, contiguous)."""

    def __init__(self, fit: np.ndarray, n: np.ndarray, s: np.ndarray, start: _FirstSteps | None) -> None:
        self.fit = fit
        self.n = n
        self.s = s
        if start is not None:
            self.beta = start.beta[fit].copy()
            self.mask = start.mask[fit]
            self.xs = start.xs[fit]
            self.deviance = start.deviance[fit].copy()
            self.iteration = np.ones(fit.size, dtype=np.int64)

    def select(self, keep: np.ndarray) -> "_Wave":
        narrow = _Wave(self.fit[keep], self.n[keep], self.s[keep], None)
        narrow.beta = self.beta[keep]
        narrow.mask = self.mask[keep]
        narrow.xs = self.xs[keep]
        narrow.deviance = self.deviance[keep]
        narrow.iteration = self.iteration[keep]
        return narrow


def _masked_solve(gram: np.ndarray, rhs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve gram · x = rhs per fit on the present terms (absent terms: x = 0).

    Args:
        gram: (B, P, P) symmetric positive semi-definite.
        rhs: (B, P).
        mask: (B, P) 1.0 for present terms.

    Returns:
        x: (B, P) and (B,) bool: a Cholesky pivot fell below ``_PIVOT_TOL`` of its
        diagonal entry (collinear present columns; x is then meaningless).
    """
    P = gram.shape[1]
    m = mask
    A = gram * (m[:, :, None] * m[:, None, :])
    diagonal = np.einsum("bii->bi", A)
    diagonal += 1.0 - m  # absent terms: identity rows
    diagonal = diagonal.copy()
    b = rhs * m
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
    return x * m, singular


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
