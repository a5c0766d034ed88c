"""The compiled GLM kernel: statsmodels' Poisson IRLS on count tables, one fit at a time.

The same iteration as the batched numpy reference in :mod:`synthshare.glm.irls`
(read its module docstring for what is replayed and why), written as plain loops that
numba compiles, so that a fit costs a few passes over its 2,240 cells per iteration and
no per-wave array traffic. Per fit, in order:

1. **First step** (statsmodels' μ⁰ = (y + ȳ)/2): presence, zero-positive levels and a
   missing reference from the margins of n and s; the first WLS step from the cell sums
   of w⁰ = m₁ s + m₀ (n − s) and w⁰z⁰; the first deviance
   D₁ = 2 [S (−log m₁ − 1 + m₁) + (N − S) m₀].
2. **Warm Newton** (only with a start, no zero-positive level, the reference present):
   β ← β + H⁻¹ g with g = Xᵀ(s − nμ), H = Xᵀ diag(nμ) X, until max |δ| ≤ 1e-8
   (``WARM_STEP_TOL``); returns β + δ and the Hessian at β. A singular step, a
   non-finite step, a possible μ < ε or more than ``WARM_MAX_ITER`` steps hand the fit
   to the replay, which starts again from step 1's β.
3. **Replay** of statsmodels' iterations 2, 3, …: Newton steps from step 1's β, with the
   Log link's clipping below μ < ε (IRLS weight ε²/μ, working residual (y − μ)/ε),
   until |D_k − D_{k−1}| ≤ tol (1e-8) or k = max_iter (100), D_k = 2 (Σ nμ − S − βᵀXᵀs).
   **Tail jump** (``tail=True``, fits with a zero-positive level; ~42 % of the experiment's
   fits, ~20 iterations each). After a few iterations such a fit is in a geometric regime:
   the other coefficients have converged to the MLE without the separated cells, each
   separated coefficient steps by −1 + O(m) (Newton along a direction without positives,
   m the separated cells' fitted mass) and m shrinks by ρ ≈ e^{−1} per iteration, so the
   steps are s_{k+i} = s_∞ + e ρ^i + O(ρ^{2i}) and ΔD_j = D_j − D_{j−1} ≈ −2 m_j (1 − ρ)
   (the other coefficients' terms are O(m²)). At iteration k, when (a) ΔD_{k−2}, ΔD_{k−1},
   ΔD_k are negative with ratios r = ΔD_k/ΔD_{k−1} in (0.05, 0.6) agreeing to 2 %
   (``TAIL_RATIO_TOL``) and (b) no step component changed by more than 1e-3 from the
   last iteration (``TAIL_STEP_TOL``), the stop is predicted as the first j with
   |ΔD_k| r^{j−k} ≤ tol, and β jumps to J = stop − 1 (at most max_iter − 1) with the
   steps summed in closed form, s_∞ and e from the last two steps (Aitken, ρ = r).
   Iterations J and J + 1, … then run for real (the check at J is skipped, as predicted
   not to stop): the stop decision at J + 1 compares two computed deviances, the Hessian
   and the sandwich are those of the computed final β, and one real Newton step squares
   the other coefficients' extrapolation error. What is left is the separated
   coefficients' second-order remainder: measured ≤ 4.2e-12 relative (variances ≤ 8e-12,
   iterations and flags identical) on 20,217 zero-positive fits of
   ``benchmarks/bench_analysis.py``'s projection, where 55 % of their iterations were
   skipped. Fallbacks (plain replay, or no jump yet): (a) or (b) failing; a predicted
   |ΔD_j| up to the stop within 1e-3 of tol (``TAIL_AMBIGUITY``: there the replay's own
   decision is rounding, ΔD ~ 1e-8 being a difference of deviances ~1e3); fewer than
   one iteration to skip; any cell with records already at μ < ε (clipped steps are not
   geometric). Where ``_may_clip``'s bound allows μ < ε somewhere on the predicted path
   (several zero-positive levels), the steps must agree to 1e-6 (``TAIL_STEP_TOL_CLIP``;
   with 1e-3 the e^{−2} mode of the doubly separated cells left errors up to 4e-7), every
   occupied cell's μ at β_k and at β_J must be above e·ε (η is linear in β and the path
   nearly straight, its bend ≤ 2.5 (q+1) 1.5e-6 ≪ 1, so no cell in between is below ε),
   and J is bisected down to the last such point; the replay then goes on, clipping
   included, from there.
4. **Sandwich**: the Hessian margins of n ⊙ μ at the final β and the meat margins of
   n ⊙ μ² − 2 s ⊙ μ + s, both with statsmodels' clipped per-cell values where μ < ε;
   then diag(H⁻¹ M H⁻¹) with H⁻¹ from a Cholesky factor. A Hessian without positive
   pivots (numerically singular tiny data) is left to the caller's numpy LU inverse /
   pseudo-inverse, exactly as the numpy path does it.

A collinear present design (a Cholesky pivot below ``PIVOT_TOL`` of its diagonal entry,
at step 1 or in the replay) is flagged ``singular``; the caller replays it on the
``lstsq`` slow path, as the numpy reference does.

Margins. μ factorises over the features, μ_c = a_l b_r with a over the "left" cells
(all features but the last two, exp(β₀) included) and b over the "right" cells (the last
two features), so one pass over the (Λ × R) table of a fit gives, per left cell, the
row sum of n ⊙ b and its per-level sums of both right features (scaled by a_l once per
row), and the column sums Σ_l a_l n_lr (the right pair). Every one- and two-way margin
of :class:`~synthshare.glm.margins.MarginPlan`'s flat layout is a scatter of
these; rows of the table without records are skipped, and when the occupied cells are
fewer than ``SPARSE_SHARE`` of the occupied rows' cells the pass walks the occupied cells
only (the same sums, since the skipped terms are zeros).

Speed (issue 14): the kernel reads the count table in place (int32 views
``cells[..., 0]``, ``cells[..., 1]``, no float copies), compacts each fit's occupied rows
once (both orientations, and the occupied cells as a list), and for the study's five
features keeps the three level rows of a left cell in registers across its cells. Every
margin still adds the same products in the same order as before these changes (the
reference's product order (n_lr b_r) a_l): the iterates are bitwise unchanged, because
reordering them moved the variances of ill-conditioned tiny tables beyond the tested
rounding. Loops index 2-D arrays in place: numba array views inside loops pay reference
counting, and short vectorised loops pay alias checks (a right-looking Cholesky was
measured 2× slower than the dot-product form kept here). Round 2: indices read from
arrays in the hot loops are cast to unsigned (``numba.uint64``), which drops numba's
negative-index test per access (a margin pass 3.9 → 3.35 µs), and the Cholesky factor is
stored transposed and computed four rows at a time (independent chains, the same k order
per entry); iterates and variances are bitwise those of round 1.

Determinism: sequential loops, no fastmath, no parallel reductions, so a fit's bytes do
not depend on the batch, its order or the run. Compiled once per machine with
``cache=True`` (numba writes the cache beside this file, or under ``NUMBA_CACHE_DIR`` /
the user's cache directory where that is read-only).

Shapes: B fits, P terms, Λ left cells, R = d·u right cells, F flat-margin rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from synthshare.glm.design import Design
from synthshare.glm.margins import MarginPlan

PIVOT_TOL = 1e-10
"""Same as the numpy reference: a pivot below this fraction of its diagonal = collinear."""
EPS = float(np.finfo(float).eps)
"""statsmodels' FLOAT_EPS (Log link clipping)."""
LOG_EPS = float(np.log(EPS))
TINY = float(np.finfo(float).tiny)
WARM_STEP_TOL = 1e-8
"""As ``irls.WARM_STEP_TOL``."""
WARM_MAX_ITER = 12
"""As ``irls.WARM_MAX_ITER``."""

TAIL_STEP_TOL = 1e-3
"""Tail jump: the largest change of any coefficient's step between two iterations."""
TAIL_STEP_TOL_CLIP = 1e-6
"""Tail jump: the same where μ < ε may be met (several zero-positive levels; see below)."""
TAIL_RATIO_TOL = 0.02
"""Tail jump: the largest relative change of the deviance ratio ΔD_k / ΔD_{k−1}."""
TAIL_RATIO_LOW, TAIL_RATIO_HIGH = 0.05, 0.6
"""Tail jump: the deviance ratio's range (singly separated cells: e^{−1})."""
TAIL_CLIP_MARGIN = math.e
"""Tail jump across a possible μ < ε: every occupied cell's μ at both ends above this times ε."""
TAIL_AMBIGUITY = 1e-3
"""Tail jump: no jump where a predicted |ΔD| up to the stop is this close to tol (relative)."""

SPARSE_SHARE = 0.7
"""Below this share of occupied cells among the occupied rows' cells a fit's margins
loop over its occupied cells (gathered once per fit) instead of whole rows."""

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@dataclass(frozen=True)
class KernelTables:
    """Integer index tables of one design for the kernel (all int64, C-contiguous).

    Attributes:
        vector_index: (P,) flat row of each term's one-way margin (intercept: total).
        gram_index: (P, P) flat row of each Gram entry.
        left_rows: (Λ, k) flat rows that receive a left cell's total (left one-ways, left pairs).
        level_rows: (Λ, q−2) per left cell and left feature, the row of its level among
            all left levels (K = Σ_left L_f rows).
        cross_d, cross_u: (K,) per left level, the first flat row of its (left feature,
            right feature) pair block (add the right feature's level).
        right_pair, right_one_d, right_one_u: first flat rows of the right pair and of the
            right features' one-way margins.
        reference_rows: (q,) flat row of each feature's reference level's one-way margin.
        left_levels: (Λ, q−2) each left cell's levels; right_levels: (R, 2).
        level_terms: (q, L_max) term of each level, −1 for the reference and padding.
        cell_entries: (Λ·R, E) flat rows each cell adds to; cell_terms: (Λ·R, 1+q) its
            terms, P for none.
        d, u: levels of the last two features.
    """

    vector_index: np.ndarray
    gram_index: np.ndarray
    left_rows: np.ndarray
    level_rows: np.ndarray
    cross_d: np.ndarray
    cross_u: np.ndarray
    right_pair: int
    right_one_d: int
    right_one_u: int
    reference_rows: np.ndarray
    left_levels: np.ndarray
    right_levels: np.ndarray
    level_terms: np.ndarray
    cell_entries: np.ndarray
    cell_terms: np.ndarray
    d: int
    u: int
    flat_size: int

    @classmethod
    def build(cls, design: Design, plan: MarginPlan) -> "KernelTables":
        """Tables for a design of at least 3 features (the left/right split needs two right ones)."""
        shape = design.shape
        q = len(shape)
        if q < 3:
            raise ValueError("the compiled kernel needs at least 3 features")
        offsets = plan._offsets
        left_shape = shape[:-2]
        d, u = shape[-2:]
        grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(L) for L in left_shape], indexing="ij")]
        left_levels = np.stack(grids, axis=1).astype(np.int64)
        left_pairs = [(f, g) for f in range(q - 2) for g in range(f + 1, q - 2)]
        left_rows = np.stack(
            [offsets[(f,)] + grids[f] for f in range(q - 2)]
            + [offsets[(f, g)] + grids[f] * shape[g] + grids[g] for f, g in left_pairs], axis=1).astype(np.int64)
        level_offsets = np.cumsum((0,) + left_shape[:-1])
        level_rows = np.stack([level_offsets[f] + grids[f] for f in range(q - 2)], axis=1).astype(np.int64)
        cross_d = np.concatenate([offsets[(f, q - 2)] + np.arange(shape[f]) * d for f in range(q - 2)]).astype(np.int64)
        cross_u = np.concatenate([offsets[(f, q - 1)] + np.arange(shape[f]) * u for f in range(q - 2)]).astype(np.int64)
        rows = np.arange(d * u)
        right_levels = np.stack([rows // u, rows % u], axis=1).astype(np.int64)
        level_terms = np.full((q, max(shape)), -1, dtype=np.int64)
        for f in range(q):
            level_terms[f, : shape[f]] = design.term_index[f]
        grids_all = [g.reshape(-1) for g in np.meshgrid(*[np.arange(L) for L in shape], indexing="ij")]
        P = design.size
        terms = np.stack([np.zeros_like(grids_all[0])] + [design.term_index[f][g] for f, g in enumerate(grids_all)], axis=1)
        return cls(
            vector_index=np.ascontiguousarray(plan.vector_index, dtype=np.int64),
            gram_index=np.ascontiguousarray(plan.gram_index.reshape(P, P), dtype=np.int64),
            left_rows=np.ascontiguousarray(left_rows),
            level_rows=np.ascontiguousarray(level_rows),
            cross_d=np.ascontiguousarray(cross_d),
            cross_u=np.ascontiguousarray(cross_u),
            right_pair=int(offsets[(q - 2, q - 1)]),
            right_one_d=int(offsets[(q - 2,)]),
            right_one_u=int(offsets[(q - 1,)]),
            reference_rows=np.array([offsets[(f,)] + r for f, r in enumerate(design.reference)], dtype=np.int64),
            left_levels=np.ascontiguousarray(left_levels),
            right_levels=np.ascontiguousarray(right_levels),
            level_terms=level_terms,
            cell_entries=np.ascontiguousarray(plan.cell_entries(), dtype=np.int64),
            cell_terms=np.ascontiguousarray(np.where(terms < 0, P, terms), dtype=np.int64),
            d=int(d), u=int(u), flat_size=int(plan.flat_size),
        )


@dataclass
class KernelResult:
    """Per-fit results of :func:`run_kernel` (B fits).

    Attributes:
        beta: (B, P) final coefficients (masked; meaningless where failed or singular).
        mask: (B, P) 1.0 for present terms.
        present, zero_positive: (B, P) bool, as ``BatchFit``.
        hessian_flat, meat_flat: (B, F) sandwich margins at the final β.
        iterations: (B,) int64; converged, reference_missing, failed, warm, singular: (B,) bool.
        var: (B, P) HC variances diag(H⁻¹ M H⁻¹), NaN for absent terms, where ``sandwich``.
        sandwich: (B,) the variances were computed (H had positive Cholesky pivots).
        skipped: (B,) int64, replay iterations the tail jump moved over (not computed).
    """

    beta: np.ndarray
    mask: np.ndarray
    present: np.ndarray
    zero_positive: np.ndarray
    hessian_flat: np.ndarray
    meat_flat: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    reference_missing: np.ndarray
    failed: np.ndarray
    warm: np.ndarray
    singular: np.ndarray
    var: np.ndarray
    sandwich: np.ndarray
    skipped: np.ndarray


def run_kernel(tables: KernelTables, n: np.ndarray, s: np.ndarray, start: np.ndarray | None,
               max_iter: int, tol: float, sparse_share: float = SPARSE_SHARE, tail: bool = True) -> KernelResult:
    """Fit B count tables.

    Args:
        n, s: (B, Λ, R) records and positives per (left, right) cell: integer counts of
            any dtype (int32 views into one (B, Λ, R, 2) table, as ``PoissonBatchSolver``
            passes them, are used as they are; anything else is copied into such a table,
            so that the kernel is compiled for one type only).
        start: (B, P) warm starts (NaN = none for that term; an all-NaN row = no start) or None.
        sparse_share: see ``SPARSE_SHARE`` (0: always whole rows, 1: always occupied cells;
            the results are the same bytes).
        tail: the tail jump over zero-positive fits' geometric iterations (module
            docstring, step 3); False replays every iteration.
    """
    B, P = n.shape[0], tables.vector_index.size
    F = tables.flat_size
    n, s = _count_views(n, s)
    use_start = start is not None
    start = np.full((B, P), np.nan) if start is None else np.ascontiguousarray(start, dtype=np.float64)
    result = KernelResult(
        beta=np.zeros((B, P)), mask=np.zeros((B, P)), present=np.zeros((B, P), np.bool_),
        zero_positive=np.zeros((B, P), np.bool_), hessian_flat=np.zeros((B, F)), meat_flat=np.zeros((B, F)),
        iterations=np.zeros(B, np.int64), converged=np.zeros(B, np.bool_), reference_missing=np.zeros(B, np.bool_),
        failed=np.zeros(B, np.bool_), warm=np.zeros(B, np.bool_), singular=np.zeros(B, np.bool_),
        var=np.full((B, P), np.nan), sandwich=np.zeros(B, np.bool_), skipped=np.zeros(B, np.int64),
    )
    if B == 0:
        return result
    t = tables
    _fit_all(n, s, start, use_start, int(max_iter), float(tol), float(sparse_share), bool(tail),
             t.vector_index, t.gram_index, t.left_rows, t.level_rows, t.cross_d, t.cross_u, t.right_pair, t.right_one_d,
             t.right_one_u, t.reference_rows, t.left_levels, t.right_levels, t.level_terms, t.cell_entries,
             t.cell_terms, t.d, t.u,
             result.beta, result.mask, result.present, result.zero_positive, result.hessian_flat, result.meat_flat,
             result.iterations, result.converged, result.reference_missing, result.failed, result.warm,
             result.singular, result.var, result.sandwich, result.skipped)
    return result


def _count_views(n: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n and s as int32 views ``cells[..., 0]``, ``cells[..., 1]`` of one (B, Λ, R, 2) table.

    Raises:
        ValueError: counts that are not integers in 0 … 2³¹ − 1.
    """
    n, s = np.asarray(n), np.asarray(s)
    def strided(table: np.ndarray) -> bool:  # numba's layout "A"
        return table.dtype == np.int32 and not (table.flags.c_contiguous or table.flags.f_contiguous)

    if strided(n) and strided(s):
        return n, s
    cells = np.empty(n.shape + (2,), np.int32)
    for index, table in enumerate((n, s)):
        if table.size and (table.min() < 0 or table.max() > np.iinfo(np.int32).max):
            raise ValueError(f"counts from {table.min()} to {table.max()}; expected integers in 0 … 2^31 − 1")
        cells[..., index] = table
        if not np.array_equal(cells[..., index], table):
            raise ValueError("counts that are not integers; expected records and positives per cell")
    return cells[..., 0], cells[..., 1]


# -- compiled parts ----------------------------------------------------------------------

@numba.njit(**_JIT)
def _margins(sparse, N, NT, values, columns, row_start, n_rows, rows, a, b, left_rows, level_rows, cross_d, cross_u,
             right_pair, right_one_d, right_one_u, d, u, scratch, acc, out):
    """Flat margins of n ⊙ (a ⊗ b) into ``out`` (F,): see the module docstring.

    N: (Λ, R) the fit's occupied rows, compacted (the first ``n_rows`` rows are used);
    NT: (R, Λ) the same transposed; rows: (n_rows,) their left cells. a: (Λ,) over all
    left cells; b: (R,). Sparse form (``sparse``): values (nnz,) the occupied cells' weights
    row by row, columns (nnz,) their right cell, row_start (n_rows + 1,) offsets.
    level_rows: (Λ, q−2) each left cell's row of ``acc`` per left feature (its level);
    cross_d, cross_u: (K,) first flat row of the pair blocks of each ``acc`` row.
    Scratch: (4, max(Λ, R)) rows: the occupied rows' totals Σ_r (n_lr b_r) a_l, their
    a_l, the column sums Σ_l a_l n_lr, one row of (n_lr b_r) a_l; acc (K, R),
    K = Σ_left L_f: per left level, the sum over its left cells of (n_l ⊙ b) a_l.

    Every sum adds the same products in the same order in both forms (the dense one adds
    exact zeros for the empty cells), so they give the same bytes for finite weights.
    The loops run along contiguous rows (the row totals along the columns of NT), so the
    dense form vectorises without reordering any sum.
    """
    R = b.shape[0]
    K = acc.shape[0]
    # scratch rows (indexed in place: numba array views in loops cost reference counting)
    TOTALS, FACTORS, COLUMN, W = 0, 1, 2, 3
    for k in range(K):
        for r in range(R):
            acc[k, r] = 0.0
    for k in range(out.shape[0]):
        out[k] = 0.0
    for r in range(R):
        scratch[COLUMN, r] = 0.0
    k_left = left_rows.shape[1]
    q_left = level_rows.shape[1]
    if sparse and q_left == 3:  # the study's five features: the level rows hoisted out of the cell loop
        # 1-D views taken once per call and unsigned indices: numba adds a negative-index
        # test to every signed index read from an array (measured 3.9 -> 3.35 µs per pass
        # on a typical table); the same sums in the same order
        flat_acc = acc.reshape(K * R)
        column = scratch[COLUMN]
        totals = scratch[TOTALS]
        unsigned_R = numba.uint64(R)
        for i in range(n_rows):
            l = rows[i]
            al = a[l]
            o0 = numba.uint64(level_rows[l, 0]) * unsigned_R
            o1 = numba.uint64(level_rows[l, 1]) * unsigned_R
            o2 = numba.uint64(level_rows[l, 2]) * unsigned_R
            total = 0.0
            for index in range(row_start[i], row_start[i + 1]):
                r = numba.uint64(columns[index])
                value = values[index]
                column[r] += al * value
                v = (value * b[r]) * al
                total += v
                flat_acc[o0 + r] += v
                flat_acc[o1 + r] += v
                flat_acc[o2 + r] += v
            totals[i] = total
    elif sparse:
        for i in range(n_rows):
            l = rows[i]
            al = a[l]
            total = 0.0
            for index in range(row_start[i], row_start[i + 1]):
                r = columns[index]
                value = values[index]
                scratch[COLUMN, r] += al * value
                v = (value * b[r]) * al
                total += v
                for f in range(q_left):
                    acc[level_rows[l, f], r] += v
            scratch[TOTALS, i] = total
    else:
        for i in range(n_rows):
            scratch[TOTALS, i] = 0.0
            scratch[FACTORS, i] = a[rows[i]]
        for r in range(R):  # row totals, r by r for all rows at once
            br = b[r]
            for i in range(n_rows):
                scratch[TOTALS, i] += (NT[r, i] * br) * scratch[FACTORS, i]
        for i in range(n_rows):
            l = rows[i]
            al = scratch[FACTORS, i]
            for r in range(R):
                scratch[COLUMN, r] += al * N[i, r]
            for r in range(R):
                scratch[W, r] = (N[i, r] * b[r]) * al
            if q_left == 3:
                k0, k1, k2 = level_rows[l, 0], level_rows[l, 1], level_rows[l, 2]
                for r in range(R):
                    v = scratch[W, r]
                    acc[k0, r] += v
                    acc[k1, r] += v
                    acc[k2, r] += v
            else:
                for f in range(q_left):
                    k = level_rows[l, f]
                    for r in range(R):
                        acc[k, r] += scratch[W, r]
    for i in range(n_rows):
        l = rows[i]
        value = scratch[TOTALS, i]
        for k in range(k_left):
            out[numba.uint64(left_rows[l, k])] += value
    # pair blocks (left level x right feature): each flat entry gets one acc row's sums
    for k in range(K):
        base_d = numba.uint64(cross_d[k])
        base_u = numba.uint64(cross_u[k])
        for j in range(u):
            scratch[W, j] = 0.0
        r = 0
        for i in range(d):
            row_sum = 0.0
            for j in range(u):
                v = acc[k, r]
                row_sum += v
                scratch[W, j] += v
                r += 1
            out[base_d + numba.uint64(i)] = row_sum
        for j in range(u):
            out[base_u + numba.uint64(j)] = scratch[W, j]
    grand = 0.0
    r = 0
    for i in range(d):
        for j in range(u):
            v = scratch[COLUMN, r] * b[r]
            out[right_pair + r] = v
            out[right_one_d + i] += v
            out[right_one_u + j] += v
            grand += v
            r += 1
    out[0] = grand
    out[out.shape[0] - 1] = 0.0


@numba.njit(**_JIT)
def _factors(beta, level_terms, left_levels, right_levels, q, effects, a, b):
    """μ = a ⊗ b: a[l] = exp(β₀) Π_f exp(β_f[l_f]) over the left features, b over the right two.

    Products in the numpy reference's order (feature by feature), effects: (q, L_max) scratch.
    """
    for f in range(q):
        for level in range(level_terms.shape[1]):
            term = level_terms[f, level]
            effects[f, level] = 1.0 if term < 0 else math.exp(beta[term])
    base = math.exp(beta[0])
    q_left = left_levels.shape[1]
    for l in range(left_levels.shape[0]):  # unsigned level indices: no negative-index tests
        value = base
        for f in range(q_left):
            value = value * effects[f, numba.uint64(left_levels[l, f])]
        a[l] = value
    for r in range(right_levels.shape[0]):
        b[r] = (1.0 * effects[q - 2, numba.uint64(right_levels[r, 0])]) * effects[q - 1, numba.uint64(right_levels[r, 1])]


@numba.njit(**_JIT)
def _cholesky_masked(flat, mask, gram_index, A, diagonal, relative_tol):
    """Cholesky factor of the present terms' Gram matrix (absent terms: 1 on the diagonal),
    from its flat margins ``flat``, stored transposed: ``A[k, i]`` = L[i, k] for k ≤ i (the
    upper triangle Lᵀ; the lower triangle is left as it was).

    Returns False when a pivot is not above ``relative_tol`` times its diagonal entry
    (``relative_tol`` = 0: not positive).

    Column j of L (row j of ``A``), its pivot among them, four entries at a time: four
    independent chains that share the loads of L's row j and read contiguous rows of ``A``
    (the transposed storage); each entry still subtracts its products L[i, k] L[j, k] in
    k order, so the bytes are those of the plain dot-product form.
    """
    P = mask.shape[0]
    for i in range(P):
        for j in range(i + 1):
            A[j, i] = flat[numba.uint64(gram_index[i, j])] * (mask[i] * mask[j])
        A[i, i] += 1.0 - mask[i]
        diagonal[i] = A[i, i]
    for j in range(P):
        i = j
        while i + 3 < P:
            v0, v1, v2, v3 = A[j, i], A[j, i + 1], A[j, i + 2], A[j, i + 3]
            for k in range(j):
                pivot_row = A[k, j]
                v0 -= A[k, i] * pivot_row
                v1 -= A[k, i + 1] * pivot_row
                v2 -= A[k, i + 2] * pivot_row
                v3 -= A[k, i + 3] * pivot_row
            A[j, i], A[j, i + 1], A[j, i + 2], A[j, i + 3] = v0, v1, v2, v3
            i += 4
        while i < P:
            value = A[j, i]
            for k in range(j):
                value -= A[k, i] * A[k, j]
            A[j, i] = value
            i += 1
        pivot = A[j, j]
        if not (pivot > relative_tol * diagonal[j] if relative_tol > 0.0 else pivot > 0.0):
            return False
        root = math.sqrt(pivot)
        A[j, j] = root
        for i in range(j + 1, P):
            A[j, i] = A[j, i] / root
    return True


@numba.njit(**_JIT)
def _solve(flat, rhs, mask, gram_index, A, diagonal, x):
    """Solve gram · x = rhs on the present terms by Cholesky (absent terms: x = 0).

    Returns True when a pivot falls below PIVOT_TOL of its diagonal entry (collinear).
    """
    P = rhs.shape[0]
    if not _cholesky_masked(flat, mask, gram_index, A, diagonal, PIVOT_TOL):
        return True
    for j in range(P):  # forward: each x[i] loses L[i, j] x[j] once x[j] is known (the same
        x[j] = rhs[j] * mask[j]  # k order per x[i] as a row-by-row sum, but independent chains)
    for j in range(P):
        value = x[j] / A[j, j]
        x[j] = value
        for i in range(j + 1, P):
            x[i] -= A[j, i] * value  # L[i, j]
    for j in range(P - 1, -1, -1):
        value = x[j]
        for k in range(j + 1, P):
            value -= A[j, k] * x[k]  # L[k, j]
        x[j] = value / A[j, j]
    for j in range(P):
        x[j] *= mask[j]
    return False


@numba.njit(**_JIT)
def _sandwich_variances(hessian, meat, mask, gram_index, A, W, C, V, var):
    """diag(H⁻¹ M H⁻¹) on the present terms (NaN for absent ones) by a Cholesky inverse of H.

    W = L⁻¹ by forward substitution on the identity, C = H⁻¹ = Wᵀ W by outer products of
    its rows, V = M C, var_i = Σ_j C_ji V_ji: every inner loop runs along a contiguous
    row with independent sums (the P³ product is no longer one serial chain per entry).
    Scratch: W, C, V (P, P); A holds Lᵀ (``_cholesky_masked``), then the dense meat.

    Returns False (``var`` untouched) where a pivot of H is not positive: a numerically
    singular Hessian, left to the caller's LU inverse / pseudo-inverse as in the numpy path.
    """
    P = mask.shape[0]
    if not _cholesky_masked(hessian, mask, gram_index, A, var, 0.0):  # var: scratch until filled below
        return False
    for i in range(P):
        for j in range(P):
            W[i, j] = 0.0
            C[i, j] = 0.0
        W[i, i] = 1.0
    for j in range(P):  # L W = I: row j of W, then the rows below it
        inverse = 1.0 / A[j, j]
        for k in range(j + 1):
            W[j, k] *= inverse
        for i in range(j + 1, P):
            factor = A[j, i]  # L[i, j]
            for k in range(j + 1):
                W[i, k] -= factor * W[j, k]
    for k in range(P):  # C = Wᵀ W, one outer product per row of W
        for i in range(k + 1):
            factor = W[k, i]
            for j in range(k + 1):
                C[i, j] += factor * W[k, j]
    for i in range(P):  # the dense meat, absent terms zeroed
        for j in range(P):
            A[i, j] = meat[numba.uint64(gram_index[i, j])] * (mask[i] * mask[j])
    for j in range(P):  # V = M C
        for i in range(P):
            V[j, i] = 0.0
        for k in range(P):
            factor = A[j, k]
            if factor != 0.0:  # same-feature pairs and absent terms: structural zeros
                for i in range(P):
                    V[j, i] += factor * C[k, i]
    for i in range(P):
        var[i] = 0.0
    for j in range(P):
        for i in range(P):
            var[i] += C[j, i] * V[j, i]
    for i in range(P):
        if mask[i] == 0.0:
            var[i] = math.nan
    return True


@numba.njit(**_JIT)
def _may_clip(beta, mask, level_terms, q):
    """Whether a cell may have μ < ε: β₀ + Σ_f min(0, min over present levels β_f) < log ε + 1."""
    bound = beta[0]
    for f in range(q):
        low = math.inf
        for level in range(level_terms.shape[1]):
            term = level_terms[f, level]
            if term >= 0:
                value = beta[term] if mask[term] > 0 else 0.0
                if value < low:
                    low = value
        if low < 0.0:
            bound += low
    return bound < LOG_EPS + 1.0


@numba.njit(**_JIT)
def _largest_change(step, step_1):
    """max over terms of |s_k − s_{k−1}| (P,) → float; NaN if any difference is NaN."""
    size = 0.0
    for t in range(step.shape[0]):
        difference = abs(step[t] - step_1[t])
        if not difference <= size:  # NaN included
            size = difference
    return size


@numba.njit(**_JIT)
def _tail_jump(step, step_1, change, change_1, change_2, iteration, max_iter, tol):
    """The tail jump of a zero-positive fit (module docstring): how many replay iterations
    n to move on before the predicted stop, 0 for none (not geometric, ambiguous stop).

    At iteration k: step = s_k (P,) (β_{k+1} − β_k), step_1 = s_{k−1}; change, change_1,
    change_2 = ΔD_k, ΔD_{k−1}, ΔD_{k−2} (ΔD_j = D_j − D_{j−1}). J = k + n.
    """
    if not (change < 0.0 and change_1 < 0.0 and change_2 < 0.0):
        return 0
    ratio = change / change_1
    if not (TAIL_RATIO_LOW < ratio < TAIL_RATIO_HIGH) or abs(ratio - change_1 / change_2) > TAIL_RATIO_TOL * ratio:
        return 0
    if not _largest_change(step, step_1) <= TAIL_STEP_TOL:
        return 0
    # the stop: the first j > k with |ΔD_j| ≤ tol, ΔD_j predicted as ΔD_k r^(j−k) (from
    # below: the ratio of a sum of decaying geometric terms grows towards the slowest
    # one, here the same to ~1e-5); a prediction within TAIL_AMBIGUITY of tol falls back,
    # because there the replay's own decision is rounding (ΔD ~ 1e-8 is the difference of
    # deviances ~1e3, good to ~1e-4 relative). J = stop − 1 (at most max_iter − 1): two
    # real iterations after the jump, the last one's check real on both sides
    n = 0
    bound = -change
    while True:
        bound *= ratio
        if abs(bound - tol) <= TAIL_AMBIGUITY * tol:
            return 0
        if bound <= tol or iteration + n + 1 >= max_iter:
            break
        n += 1
    n = min(n, max_iter - 1 - iteration)
    if n < 2:
        return 0
    return n


@numba.njit(**_JIT)
def _tail_point(beta, step, step_1, ratio, j, target):
    """β_{k+j} = β_k + Σ_{i<j} s_{k+i} into ``target`` (P,), with s_{k+i} = s_∞ + e ρ^i,
    ρ = the deviance ratio r and e = s_k − s_∞ = −(s_k − s_{k−1}) ρ/(1 − ρ) (Aitken)."""
    partial = (1.0 - ratio ** j) / (1.0 - ratio)
    for t in range(beta.shape[0]):
        excess = -(step[t] - step_1[t]) * ratio / (1.0 - ratio)
        target[t] = beta[t] + (j * (step[t] - excess) + excess * partial)


@numba.njit(**_JIT)
def _lowest_mu(a, b, rows, row_start, columns, n_rows):
    """min of μ = a_l b_r over the occupied cells (the product ``_clip_corrections`` tests)."""
    low = math.inf
    for i in range(n_rows):
        al = a[rows[i]]
        for index in range(row_start[i], row_start[i + 1]):
            mu = al * b[columns[index]]
            if mu < low:
                low = mu
    return low


@numba.njit(**_JIT)
def _clip_ratio(mu):
    """max(μ, ε)/μ: statsmodels' Log link clipping below ε."""
    ratio = EPS / max(mu, TINY)
    return ratio if ratio > 1.0 else 1.0


@numba.njit(**_JIT)
def _clip_corrections(n, s, a, b, occupied, cell_entries, cell_terms, flat, gradient):
    """Cells with records and μ < ε: IRLS weight ε²/μ and residual (y − μ)/ε (in place)."""
    R = b.shape[0]
    P = gradient.shape[0]
    for l in range(n.shape[0]):
        if not occupied[l]:
            continue
        for r in range(R):
            if n[l, r] > 0:
                mu = a[l] * b[r]
                if mu < EPS:
                    c = l * R + r
                    expected = n[l, r] * mu
                    ratio = _clip_ratio(mu)
                    weight = expected * (ratio * ratio - 1.0)
                    for e in range(cell_entries.shape[1]):
                        flat[cell_entries[c, e]] += weight
                    residual = (s[l, r] - expected) * (ratio - 1.0)
                    for e in range(cell_terms.shape[1]):
                        term = cell_terms[c, e]
                        if term < P:
                            gradient[term] += residual


@numba.njit(**_JIT)
def _sandwich_corrections(n, s, a, b, occupied, cell_entries, hessian, meat):
    """Cells with records and μ < ε: statsmodels' clipped observed Hessian and score weights."""
    R = b.shape[0]
    for l in range(n.shape[0]):
        if not occupied[l]:
            continue
        for r in range(R):
            if n[l, r] > 0:
                mu = a[l] * b[r]
                if mu < EPS:
                    c = l * R + r
                    n_c, s_c = n[l, r], s[l, r]
                    negatives = n_c - s_c
                    clipped = max(mu, EPS)
                    scale = clipped / max(mu, TINY)
                    k = (clipped - mu) / (mu * clipped)
                    weight = clipped * scale
                    h_exact = negatives * weight * (1.0 - mu * k) + s_c * weight * (1.0 + (1.0 - mu) * k)
                    m_exact = negatives * clipped * clipped + s_c * ((1.0 - mu) * scale) ** 2
                    dh = h_exact - n_c * mu
                    dm = m_exact - (n_c * mu * mu - 2.0 * s_c * mu + s_c)
                    for e in range(cell_entries.shape[1]):
                        hessian[cell_entries[c, e]] += dh
                        meat[cell_entries[c, e]] += dm


@numba.njit(**_JIT)
def _fit_all(n_all, s_all, start_all, use_start, max_iter, tol, sparse_share, tail,
             vector_index, gram_index, left_rows, level_rows, cross_d, cross_u, right_pair, right_one_d, right_one_u,
             reference_rows, left_levels, right_levels, level_terms, cell_entries, cell_terms, d, u,
             beta_out, mask_out, present_out, zero_out, hessian_out, meat_out,
             iterations_out, converged_out, reference_missing_out, failed_out, warm_out, singular_out,
             var_out, sandwich_out, skipped_out):
    """Every fit of a batch, one after the other (see the module docstring for the steps)."""
    B, n_left, R = n_all.shape
    P = vector_index.shape[0]
    F = hessian_out.shape[1]
    q = level_terms.shape[0]
    ones_left = np.ones(n_left)
    ones_right = np.ones(R)
    occupied = np.zeros(n_left, np.bool_)
    row_start = np.zeros(n_left + 1, np.int64)
    rows_buffer = np.zeros(n_left, np.int64)
    columns = np.zeros(n_left * R, np.int64)
    n_values = np.zeros(n_left * R)
    s_values = np.zeros(n_left * R)
    n_rows_table = np.zeros((n_left, R))
    s_rows_table = np.zeros((n_left, R))
    n_columns_table = np.zeros((R, n_left))
    s_columns_table = np.zeros((R, n_left))
    scratch = np.empty((4, max(n_left, R)))
    acc = np.empty((cross_d.shape[0], R))
    n_flat = np.empty(F)
    s_flat = np.empty(F)
    plain = np.empty(F)
    flat = np.empty(F)
    work = np.empty(F)
    a = np.empty(n_left)
    b = np.empty(R)
    aa = np.empty(n_left)
    bb = np.empty(R)
    effects = np.empty(level_terms.shape)
    A = np.empty((P, P))
    W = np.zeros((P, P))
    C = np.zeros((P, P))
    V = np.zeros((P, P))
    diagonal = np.empty(P)
    step = np.empty(P)
    rhs = np.empty(P)
    xs = np.empty(P)
    mask = np.empty(P)
    beta = np.empty(P)
    beta1 = np.empty(P)
    gradient = np.empty(P)
    step_1 = np.empty(P)
    target = np.empty(P)
    for fit in range(B):
        n = n_all[fit]
        s = s_all[fit]
        # the occupied rows, compacted (both orientations), and their occupied cells:
        # a sparse pass when those are few (same sums)
        nnz = 0
        n_rows = 0
        for l in range(n_left):
            busy = False
            for r in range(R):
                if n[l, r] != 0:
                    busy = True
                    break
            occupied[l] = busy
            if busy:
                rows_buffer[n_rows] = l
                row_start[n_rows] = nnz
                for r in range(R):
                    value = n[l, r]
                    if value != 0:
                        columns[nnz] = r
                        n_values[nnz] = float(value)
                        s_values[nnz] = float(s[l, r])
                        nnz += 1
                n_rows += 1
        row_start[n_rows] = nnz
        rows = rows_buffer[:n_rows]
        sparse = nnz <= sparse_share * (n_rows * R)
        if not sparse:  # the dense form's whole rows, both orientations (only it reads them)
            for i in range(n_rows):
                l = rows[i]
                for r in range(R):
                    value = float(n[l, r])
                    positives = float(s[l, r])
                    n_rows_table[i, r] = value
                    s_rows_table[i, r] = positives
                    n_columns_table[r, i] = value
                    s_columns_table[r, i] = positives
        # -- 1. first step -----------------------------------------------------------
        _margins(sparse, n_rows_table, n_columns_table, n_values, columns, row_start, n_rows, rows, ones_left, ones_right, left_rows, level_rows,
                         cross_d, cross_u, right_pair, right_one_d, right_one_u, d, u, scratch, acc, n_flat)
        _margins(sparse, s_rows_table, s_columns_table, s_values, columns, row_start, n_rows, rows, ones_left, ones_right, left_rows, level_rows,
                         cross_d, cross_u, right_pair, right_one_d, right_one_u, d, u, scratch, acc, s_flat)
        total_n, total_s = n_flat[0], s_flat[0]
        missing = False
        for f in range(q):
            if n_flat[reference_rows[f]] <= 0:
                missing = True
        reference_missing_out[fit] = missing
        if total_n <= 0 or total_s <= 0:
            failed_out[fit] = True
            continue
        any_zero = False
        for t in range(P):
            present = t == 0 or n_flat[vector_index[t]] > 0
            present_out[fit, t] = present
            mask[t] = 1.0 if present else 0.0
            xs[t] = s_flat[vector_index[t]]
            zero = present and xs[t] == 0
            zero_out[fit, t] = zero
            any_zero = any_zero or zero
            mask_out[fit, t] = mask[t]
        ybar = total_s / total_n
        m1, m0 = (1.0 + ybar) / 2.0, ybar / 2.0
        c1 = m1 * math.log(m1) + 1.0 - m1
        c0 = m0 * math.log(m0) - m0
        for k in range(F):
            work[k] = m1 * s_flat[k] + m0 * (n_flat[k] - s_flat[k])
        for t in range(P):
            row = vector_index[t]
            rhs[t] = c1 * s_flat[row] + c0 * (n_flat[row] - s_flat[row])
        if _solve(work, rhs, mask, gram_index, A, diagonal, beta1):
            singular_out[fit] = True
            continue
        deviance1 = 2.0 * (total_s * (-math.log(m1) - 1.0 + m1) + (total_n - total_s) * m0)

        # -- 2. warm-started Newton to the MLE ---------------------------------------
        solved = False
        if use_start and not any_zero and not missing:
            finite = False
            for t in range(P):
                if math.isfinite(start_all[fit, t]):
                    finite = True
            if finite:
                for t in range(P):
                    value = start_all[fit, t]
                    beta[t] = (value if math.isfinite(value) else beta1[t]) * mask[t]
                iteration = 0
                while True:
                    _factors(beta, level_terms, left_levels, right_levels, q, effects, a, b)
                    _margins(sparse, n_rows_table, n_columns_table, n_values, columns, row_start, n_rows, rows, a, b, left_rows, level_rows,
                         cross_d, cross_u, right_pair, right_one_d, right_one_u, d, u, scratch, acc, plain)
                    for t in range(P):
                        gradient[t] = xs[t] - plain[numba.uint64(vector_index[t])]
                    bad = _solve(plain, gradient, mask, gram_index, A, diagonal, step)
                    size = 0.0
                    if not bad:
                        for t in range(P):
                            magnitude = abs(step[t])
                            if not magnitude <= size:  # NaN included
                                size = magnitude
                        bad = not math.isfinite(size)
                    iteration += 1
                    bad = bad or _may_clip(beta, mask, level_terms, q)
                    if not bad and size <= WARM_STEP_TOL:
                        for t in range(P):
                            beta[t] += step[t]
                        hessian_out[fit, :] = plain
                        iterations_out[fit] = iteration
                        converged_out[fit] = True
                        warm_out[fit] = True
                        solved = True
                        break
                    if bad or iteration >= WARM_MAX_ITER:
                        break
                    for t in range(P):
                        beta[t] += step[t]

        # -- 3. replay statsmodels' iterations 2, 3, … -------------------------------
        if not solved:
            for t in range(P):
                beta[t] = beta1[t]
            previous = deviance1
            iteration = 1
            collinear = False
            # tail jump (zero-positive fits): the last two deviance changes and step
            jumpable = tail and any_zero
            change_1 = math.nan
            change_2 = math.nan
            have_step = False
            while True:
                _factors(beta, level_terms, left_levels, right_levels, q, effects, a, b)
                _margins(sparse, n_rows_table, n_columns_table, n_values, columns, row_start, n_rows, rows, a, b, left_rows, level_rows,
                         cross_d, cross_u, right_pair, right_one_d, right_one_u, d, u, scratch, acc, plain)
                for t in range(P):
                    gradient[t] = xs[t] - plain[numba.uint64(vector_index[t])]
                use = plain
                clipping = _may_clip(beta, mask, level_terms, q)
                if clipping and jumpable and _lowest_mu(a, b, rows, row_start, columns, n_rows) < EPS:
                    jumpable = False  # clipped cells change the steps from here on: no jump
                if clipping:
                    flat[:] = plain
                    _clip_corrections(n, s, a, b, occupied, cell_entries, cell_terms, flat, gradient)
                    use = flat
                dot = 0.0
                for t in range(P):
                    dot += beta[t] * xs[t]
                deviance = 2.0 * (plain[0] - xs[0] - dot)
                done = abs(deviance - previous) <= tol
                if done or iteration >= max_iter:
                    hessian_out[fit, :] = plain
                    iterations_out[fit] = iteration
                    converged_out[fit] = done
                    break
                if _solve(use, gradient, mask, gram_index, A, diagonal, step):
                    collinear = True
                    break
                change = deviance - previous
                skip = 0
                if jumpable and have_step:
                    skip = _tail_jump(step, step_1, change, change_1, change_2, iteration, max_iter, tol)
                if skip > 0:
                    # no μ < ε on the way: the bound of _may_clip at every point, else per
                    # cell at β_k and β_J, J bisected down to the last safe one (module docstring)
                    ratio = change / change_1
                    bounded = True
                    for j in range(1, skip + 1):
                        _tail_point(beta, step, step_1, ratio, j, target)
                        if _may_clip(target, mask, level_terms, q):
                            bounded = False
                            break
                    if not bounded:
                        # the largest safe J by bisection (min over cells of a near-linear η
                        # along the path is near-concave; only a tested end is ever used)
                        low = 0
                        if (_largest_change(step, step_1) <= TAIL_STEP_TOL_CLIP
                                and _lowest_mu(a, b, rows, row_start, columns, n_rows) >= TAIL_CLIP_MARGIN * EPS):
                            high = skip + 1
                            probe = skip
                            while high - low > 1:
                                _tail_point(beta, step, step_1, ratio, probe, target)
                                _factors(target, level_terms, left_levels, right_levels, q, effects, aa, bb)
                                if _lowest_mu(aa, bb, rows, row_start, columns, n_rows) >= TAIL_CLIP_MARGIN * EPS:
                                    low = probe
                                else:
                                    high = probe
                                probe = (low + high) // 2
                        skip = low if low >= 2 else 0
                        if skip > 0:
                            _tail_point(beta, step, step_1, ratio, skip, target)
                if skip > 0:
                    # β_J predicted (in target); the check at J has no D_{J−1}: inf keeps it
                    # from stopping there (predicted |ΔD_J| > tol), the next ones are real
                    for t in range(P):
                        beta[t] = target[t]
                    previous = math.inf
                    iteration += skip
                    skipped_out[fit] = skip - 1  # J − k − 1 iterations not computed
                    jumpable = False
                    continue
                for t in range(P):
                    step_1[t] = step[t]
                    beta[t] += step[t]
                have_step = True
                change_2 = change_1
                change_1 = change
                previous = deviance
                iteration += 1
            if collinear:
                singular_out[fit] = True
                continue

        # -- 4. sandwich margins at the final β ---------------------------------------
        for t in range(P):
            beta_out[fit, t] = beta[t]
        _factors(beta, level_terms, left_levels, right_levels, q, effects, a, b)
        for l in range(n_left):
            aa[l] = a[l] * a[l]
        for r in range(R):
            bb[r] = b[r] * b[r]
        meat = meat_out[fit]
        _margins(sparse, n_rows_table, n_columns_table, n_values, columns, row_start, n_rows, rows, aa, bb, left_rows, level_rows,
                         cross_d, cross_u, right_pair, right_one_d, right_one_u, d, u, scratch, acc, meat)
        _margins(sparse, s_rows_table, s_columns_table, s_values, columns, row_start, n_rows, rows, a, b, left_rows, level_rows,
                         cross_d, cross_u, right_pair, right_one_d, right_one_u, d, u, scratch, acc, work)
        for k in range(F):
            meat[k] = (meat[k] - 2.0 * work[k]) + s_flat[k]
        if _may_clip(beta, mask, level_terms, q):
            _sandwich_corrections(n, s, a, b, occupied, cell_entries, hessian_out[fit], meat)
        sandwich_out[fit] = _sandwich_variances(hessian_out[fit], meat, mask, gram_index, A, W, C, V, var_out[fit])
