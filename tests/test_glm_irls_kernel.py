"""The compiled kernel (``kernel="numba"``) against the batched numpy reference (``kernel="numpy"``).

Both run statsmodels' iteration (``synthshare.glm.irls``); they differ only in the
order of floating-point sums, so on every kind of table the experiment meets (zero-positive
levels, absent levels, μ below machine ε, warm starts, collinear and failed tables) the
flags and iteration counts must be identical and the numbers equal to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthshare.glm.cells import count_cells, drop_features
from synthshare.glm.design import Design, most_frequent_levels
from synthshare.glm.irls import PoissonBatchSolver, _sandwich_weights
from synthshare.glm.irls_kernel import SPARSE_SHARE, run_kernel
from synthshare.variables import FEATURES, OUTCOME
from tests.test_glm_fit import random_frame

FLAGS = ("present", "zero_positive", "iterations", "converged", "rank_deficient", "reference_missing", "failed", "warm")


def solvers(design: Design) -> tuple[PoissonBatchSolver, PoissonBatchSolver]:
    return PoissonBatchSolver(design, kernel="numba"), PoissonBatchSolver(design, kernel="numpy")


ILL_CONDITIONED = 1e8
"""As in test_analysis_poisson: above this scaled condition number of the Hessian the HC
variances are rounding noise (statsmodels' own move by up to ~15 % when its sandwich is
evaluated in another order), so only coefficients and flags are compared there."""


def scaled_conditions(solver: PoissonBatchSolver, fits, counts: np.ndarray) -> np.ndarray:
    """(B,) condition number of each fit's Hessian Xᵀdiag(nμ)X scaled to unit diagonal."""
    X = solver.design_matrix()
    out = np.full(counts.shape[0], np.inf)
    for i in np.flatnonzero(~fits.failed & ~fits.rank_deficient):
        n = counts[i, ..., 0].reshape(-1).astype(float)
        Xp = X[:, fits.present[i]]
        hessian = Xp.T @ (Xp * (n * np.exp(Xp @ fits.coef[i][fits.present[i]]))[:, None])
        scale = 1.0 / np.sqrt(np.diag(hessian))
        out[i] = np.linalg.cond(hessian * scale[:, None] * scale[None, :])
    return out


def sandwich_noise(solver: PoissonBatchSolver, fits, counts: np.ndarray) -> np.ndarray:
    """(B,) the rounding floor of each fit's variances: the largest relative change when
    the same sandwich H⁻¹MH⁻¹ (statsmodels' clipped cell weights where μ < ε) is evaluated
    at the same β in another order (dense cell rows instead of margins); as
    ``se_rounding_noise`` of the statsmodels tests. NaN where not comparable."""
    X = solver.design_matrix()
    out = np.full(counts.shape[0], np.nan)
    for i in np.flatnonzero(~fits.failed & ~fits.rank_deficient):
        n = counts[i, ..., 0].reshape(-1).astype(float)
        s = counts[i, ..., 1].reshape(-1).astype(float)
        rows = n > 0
        present = fits.present[i]
        Xp = X[rows][:, present]
        mu = np.exp(Xp @ fits.coef[i][present])
        h, m = _sandwich_weights(mu, n[rows], s[rows])
        bread = np.linalg.inv(Xp.T @ (Xp * h[:, None]))
        var = np.diag(bread @ (Xp.T @ (Xp * m[:, None])) @ bread)
        out[i] = np.max(np.abs(var / fits.var[i][present] - 1.0))
    return out


def assert_same_fits(compiled, reference, solver, counts, coef_rtol=1e-10):
    """Flags equal. Coefficients of well-conditioned fits (scaled condition <
    ``ILL_CONDITIONED``) to ``coef_rtol`` relative to max(1, |β|); of ill-conditioned ones
    (separated tiny tables) to 1e-4, the tolerance of the statsmodels tiny-data test.
    Variances to max(1e-8, 10 x the sandwich's rounding floor), the rule of the
    statsmodels tests (zero-positive terms and separated tables have floors ~1e-7-1e-4).

    Returns:
        The number of fits whose variances were compared at 1e-8.
    """
    for name in FLAGS:
        np.testing.assert_array_equal(getattr(compiled, name), getattr(reference, name), err_msg=name)
    np.testing.assert_array_equal(np.isnan(compiled.coef), np.isnan(reference.coef))
    np.testing.assert_array_equal(np.isnan(compiled.var), np.isnan(reference.var))
    conditions = scaled_conditions(solver, reference, counts)
    scale = np.maximum(1.0, np.abs(np.nan_to_num(reference.coef)))
    error = np.nan_to_num(np.abs(compiled.coef - reference.coef) / scale).max(axis=1)
    well = conditions < ILL_CONDITIONED
    assert (error[well] <= coef_rtol).all(), (np.flatnonzero(well), error[well].max())
    assert (error[~well] <= 1e-4).all(), error[~well].max()
    noise = sandwich_noise(solver, reference, counts)
    strict = 0
    for i in np.flatnonzero(np.isfinite(noise)):
        tolerance = max(1e-8, 10 * noise[i])
        terms = reference.present[i]
        relative = np.abs(compiled.var[i][terms] / reference.var[i][terms] - 1.0)
        assert (relative <= tolerance).all(), (i, noise[i], relative.max())
        strict += tolerance == 1e-8
    return strict


def lowest_eta(design: Design, coef: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B,) the smallest linear predictor over the cells with records."""
    effects = design.level_effects(np.nan_to_num(coef))
    eta = coef[:, :1].reshape((-1,) + (1,) * len(design.shape))
    for f, effect in enumerate(effects):
        shape = [1] * len(design.shape)
        shape[f] = -1
        eta = eta + effect.reshape((effect.shape[0], *shape))
    return np.where(counts[..., 0] > 0, eta, np.inf).reshape(coef.shape[0], -1).min(axis=1)


def mixed_tables(seed: int, count: int = 24) -> tuple[Design, np.ndarray]:
    """Random tables of 60-6,000 records; some with levels absent, some with one or several
    zero-positive levels (overlapping ones drive μ below ε), one all-negative, one empty."""
    rng = np.random.default_rng([31, seed])
    frames = []
    for i in range(count):
        frame = random_frame(rng, int(rng.choice([60, 300, 1500, 6000])), base_rate=float(rng.uniform(0.1, 0.3)))
        kind = i % 4
        if kind == 1:  # absent levels
            frame = frame[~frame["ethnicity"].isin(["Chinese", "Mixed"]) & (frame["age_group"] != "[70, 75)")]
        elif kind == 2:  # one zero-positive level
            frame.loc[frame["ethnicity"] == "South Asian", OUTCOME] = False
        elif kind == 3:  # overlapping zero-positive levels: μ < ε
            frame.loc[frame["ethnicity"].isin(["South Asian", "Black"]), OUTCOME] = False
            frame.loc[frame["age_group"] == "[45, 50)", OUTCOME] = False
        frames.append(frame.reset_index(drop=True))
    design = Design.build(most_frequent_levels(frames[0]))
    counts = np.stack([count_cells(f) for f in frames])
    negative = counts[0].copy()
    negative[..., 1] = 0
    return design, np.concatenate([counts, negative[None], np.zeros_like(counts[:1])])


@pytest.mark.parametrize("seed", range(3))
def test_kernel_equals_numpy_reference_on_mixed_tables(seed):
    design, counts = mixed_tables(seed)
    compiled, reference = solvers(design)
    a, b = compiled.fit(counts), reference.fit(counts)
    assert assert_same_fits(a, b, reference, counts) >= 15
    # the cases this test is for are all there
    assert b.zero_positive.any(axis=1).sum() >= 6 and (~b.present[:-2]).any() and b.failed[-2:].all()
    assert (lowest_eta(design, b.coef, counts)[~b.failed] < np.log(np.finfo(float).eps)).any()


def test_kernel_equals_numpy_reference_with_warm_starts():
    """Starts from fits of half the data (NaN for zero-positive terms and one chosen term),
    as the experiment passes them; plus a bad start (replayed), no start (replayed) and
    tables with zero-positive levels (replayed whatever their start)."""
    rng = np.random.default_rng(41)
    frames = [random_frame(rng, int(n), base_rate=0.3) for n in (2500, 4000, 6000, 8000, 9000, 12000)]
    for frame in frames[4:]:
        frame.loc[frame["ethnicity"] == "South Asian", OUTCOME] = False
    design = Design.build(most_frequent_levels(frames[0]))
    counts = np.stack([count_cells(f) for f in frames])
    _, extra = mixed_tables(7, count=8)
    counts = np.concatenate([counts, extra])
    compiled, reference = solvers(design)
    half = reference.fit(counts // 2)
    start = np.where(half.zero_positive, np.nan, half.coef)
    start[:, 3] = np.nan
    start[1] = 40.0
    start[2] = np.nan
    a, b = compiled.fit(counts, start=start), reference.fit(counts, start=start)
    assert_same_fits(a, b, reference, counts)
    assert b.warm[[0, 3]].all() and not b.warm[[1, 2, 4, 5]].any()


def test_kernel_equals_numpy_reference_without_ethnicity_and_with_three_features():
    design, counts = mixed_tables(3, count=12)
    for keep in (tuple(f for f in FEATURES if f != "ethnicity"), ("age_group", "sex", "deprivation")):
        variant = Design.build(design.reference_levels(), keep)
        tables = drop_features(counts, FEATURES, keep)
        compiled, reference = solvers(variant)
        a, b = compiled.fit(tables), reference.fit(tables)
        assert_same_fits(a, b, reference, tables)


def test_fewer_than_three_features_use_the_numpy_path():
    assert PoissonBatchSolver(Design.build(features=("sex", "deprivation"))).kernel == "numpy"
    assert PoissonBatchSolver(Design.build()).kernel == "numba"
    with pytest.raises(ValueError, match="kernel 'cuda'"):
        PoissonBatchSolver(Design.build(), kernel="cuda")


def test_kernel_equals_numpy_reference_on_collinear_and_tiny_tables():
    rng = np.random.default_rng(77)
    frames = [random_frame(rng, int(n)) for n in (20, 30, 40, 25)]
    collinear = random_frame(np.random.default_rng(8), 400)
    collinear = collinear[(collinear["ethnicity"] != "Black") & (collinear["education"] != "Others")].reset_index(drop=True)
    collinear.loc[:2, "ethnicity"] = "Black"
    collinear.loc[:2, "education"] = "Others"
    collinear.loc[0, OUTCOME] = True
    frames.append(collinear)
    design = Design.build()
    counts = np.stack([count_cells(f) for f in frames])
    a, b = (solver.fit(counts) for solver in solvers(design))
    assert b.rank_deficient.any()
    for name in FLAGS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # tiny separated data: the iterate is rounding-sensitive (as in the statsmodels test, 1e-4)
    scale = np.maximum(1.0, np.abs(np.nan_to_num(b.coef)))
    assert np.nanmax(np.abs(a.coef - b.coef) / scale) < 1e-4
    np.testing.assert_array_equal(np.isnan(a.var), np.isnan(b.var))


def test_kernel_is_deterministic_and_independent_of_the_batch():
    """Same bytes run to run, and a fit's bytes do not depend on the other fits of its batch
    or on their order (no batched BLAS, no parallel reductions)."""
    design, counts = mixed_tables(11, count=12)
    solver = PoissonBatchSolver(design)
    first, again = solver.fit(counts), solver.fit(counts.copy())
    order = np.random.default_rng(0).permutation(counts.shape[0])
    shuffled = solver.fit(counts[order])
    for name in ("coef", "var", *FLAGS):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
        np.testing.assert_array_equal(getattr(first, name)[order], getattr(shuffled, name), err_msg=name)
    for i in (0, 3, 6):
        single = solver.fit(counts[i : i + 1])
        np.testing.assert_array_equal(single.coef[0], first.coef[i])
        np.testing.assert_array_equal(single.iterations[0], first.iterations[i])


def test_sparse_and_dense_margins_give_the_same_bytes():
    """Margins over the occupied cells only or over whole rows: the same sums (the skipped
    terms are zeros), so the kernel's choice between them changes no byte."""
    design, counts = mixed_tables(5, count=12)
    solver = PoissonBatchSolver(design)
    cells = counts.reshape(counts.shape[0], solver._left, solver._right, 2).astype(np.float64)
    n, s = np.ascontiguousarray(cells[..., 0]), np.ascontiguousarray(cells[..., 1])
    start = np.where(solver.fit(counts // 2).zero_positive, np.nan, 0.0)
    runs = [run_kernel(solver._tables, n, s, start, 100, 1e-8, sparse_share=share) for share in (0.0, 1.0, SPARSE_SHARE)]
    for other in runs[1:]:
        for name in ("beta", "var", "hessian_flat", "meat_flat", "iterations", "warm", "singular"):
            np.testing.assert_array_equal(getattr(runs[0], name), getattr(other, name), err_msg=name)


@pytest.mark.parametrize("keep", [FEATURES, tuple(f for f in FEATURES if f != "ethnicity"), ("age_group", "sex", "deprivation")])
def test_sparse_and_dense_margins_give_the_same_bytes_in_every_design(keep):
    """The five-feature design's unrolled cell loops and the generic ones (four and three
    features): occupied cells only or whole rows, the same bytes."""
    design, counts = mixed_tables(6, count=12)
    variant = Design.build(design.reference_levels(), keep)
    tables = drop_features(counts, FEATURES, keep)
    solver = PoissonBatchSolver(variant)
    cells = tables.reshape(tables.shape[0], solver._left, solver._right, 2)
    start = np.where(solver.fit(tables // 2).zero_positive, np.nan, 0.0)
    runs = [run_kernel(solver._tables, cells[..., 0], cells[..., 1], start, 100, 1e-8, sparse_share=share)
            for share in (0.0, 1.0)]
    for name in ("beta", "var", "hessian_flat", "meat_flat", "iterations", "warm", "singular"):
        np.testing.assert_array_equal(runs[0].__dict__[name], runs[1].__dict__[name], err_msg=name)


def test_count_tables_of_any_integer_type_give_the_same_bytes():
    """The kernel reads int32 views of the count table in place; int64 tables (``fit_poisson``)
    and float copies are converted first: the same fits, byte for byte."""
    design, counts = mixed_tables(9, count=8)
    solver = PoissonBatchSolver(design)
    as_int32 = solver.fit(counts.astype(np.int32))
    as_int64 = solver.fit(counts.astype(np.int64))
    cells = counts.reshape(counts.shape[0], solver._left, solver._right, 2)
    floats = run_kernel(solver._tables, cells[..., 0].astype(float), cells[..., 1].astype(float), None, 100, 1e-8)
    for name in ("coef", "var", *FLAGS):
        np.testing.assert_array_equal(getattr(as_int32, name), getattr(as_int64, name), err_msg=name)
    done = ~as_int32.failed & ~as_int32.rank_deficient
    np.testing.assert_array_equal(floats.beta[done], as_int32.coef[done])
    with pytest.raises(ValueError, match="not integers"):
        run_kernel(solver._tables, cells[..., 0] + 0.5, cells[..., 1].astype(float), None, 100, 1e-8)
    with pytest.raises(ValueError, match="counts from -1"):
        run_kernel(solver._tables, cells[..., 0] - 1, cells[..., 1], None, 100, 1e-8)
    with pytest.raises(ValueError, match="counts from -1"):
        solver.fit(counts.astype(np.int64) - 1)
    np.testing.assert_array_equal(solver.fit(counts.astype(float)).coef, as_int32.coef)
    with pytest.raises(ValueError, match="non-integer"):
        solver.fit(counts + 0.5)


def _plain_cholesky_solve(H: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The kernel's arithmetic written out one dot product after the other (Python floats):
    L row by row, L y = rhs, Lᵀ x = y, every sum in k order."""
    P = H.shape[0]
    L = np.zeros((P, P))
    for j in range(P):
        for i in range(j, P):
            value = float(H[i, j])
            for k in range(j):
                value -= float(L[i, k]) * float(L[j, k])
            L[i, j] = value
        root = float(np.sqrt(L[j, j]))
        L[j, j] = root
        for i in range(j + 1, P):
            L[i, j] = float(L[i, j]) / root
    y = np.zeros(P)
    for j in range(P):
        value = float(rhs[j])
        for k in range(j):
            value -= float(L[j, k]) * float(y[k])
        y[j] = value / float(L[j, j])
    x = np.zeros(P)
    for j in range(P - 1, -1, -1):
        value = float(y[j])
        for k in range(j + 1, P):
            value -= float(L[k, j]) * float(x[k])
        x[j] = value / float(L[j, j])
    return x


@pytest.mark.parametrize("P", range(1, 10))
def test_blocked_cholesky_solve_keeps_the_dot_product_order(P):
    """The factor's four-row blocks (every tail length) and the column-wise forward
    substitution add the same products in the same order as plain dot products: the same
    bytes; and they solve the system (numpy), an absent term giving 0."""
    from synthshare.glm.irls_kernel import _solve

    rng = np.random.default_rng(P)
    X = rng.normal(size=(3 * P, P))
    H = X.T @ X + 0.1 * np.eye(P)
    rhs = rng.normal(size=P)
    A, diagonal, x = np.empty((P, P)), np.empty(P), np.empty(P)
    gram_index = np.arange(P * P, dtype=np.int64).reshape(P, P)
    assert not _solve(H.ravel().copy(), rhs, np.ones(P), gram_index, A, diagonal, x)
    assert np.array_equal(x, _plain_cholesky_solve(H, rhs))
    np.testing.assert_allclose(x, np.linalg.solve(H, rhs), rtol=1e-9, atol=1e-12)
    if P > 1:
        mask = np.ones(P)
        mask[P // 2] = 0.0
        keep = mask > 0
        assert not _solve(H.ravel().copy(), rhs, mask, gram_index, A, diagonal, x)
        assert x[P // 2] == 0.0
        np.testing.assert_allclose(x[keep], np.linalg.solve(H[np.ix_(keep, keep)], rhs[keep]), rtol=1e-9, atol=1e-12)


TAIL_COEF_RTOL = 1e-10
"""Tail jump vs full replay, coefficients relative to max(1, |β|). The jump extrapolates
the geometric tail of the steps (one mode, Aitken), so a zero-positive coefficient
(≈ −20) differs from the replay by the second-order remainder of that model; measured
≤ 4.2e-12 on 20,217 zero-positive projection fits of benchmarks/bench_analysis.py, so
1e-10 leaves a factor ~20 and is still 1e4 inside the 1e-6 statsmodels agreement."""
TAIL_VAR_RTOL = 1e-9
"""Tail jump vs full replay, variances (relative): the sandwich at the final β moves with
the separated cells' masses (~1e-8 there), measured ≤ 8e-12 on the same fits."""


def zero_positive_tables(seed: int, count: int = 16) -> tuple[Design, np.ndarray]:
    """Tables with one zero-positive level, or overlapping ones (μ < ε near the stop)."""
    design, counts = mixed_tables(seed, count=2 * count)
    keep = [i for i in range(2 * count) if i % 4 in (2, 3)]
    return design, counts[keep]


def deviance(solver: PoissonBatchSolver, beta: np.ndarray, table: np.ndarray) -> float:
    """2 Σ_c [n_c μ_c − s_c − s_c η_c] at β on the cell rows (numpy)."""
    eta = solver.design_matrix() @ beta
    n, s = table[..., 0].reshape(-1), table[..., 1].reshape(-1)
    return float(2.0 * (np.sum(n * np.exp(eta)) - s.sum() - s @ eta))


@pytest.mark.parametrize("seed", range(2))
def test_tail_jump_equals_the_full_replay_on_zero_positive_tables(seed):
    """The tail jump skips most replay iterations of zero-positive fits and ends at the same
    iteration with the same flags; its coefficients and variances equal the full replay's
    to ``TAIL_COEF_RTOL`` / ``TAIL_VAR_RTOL``. Fits without zero-positive level are not
    touched (same bytes), with or without warm starts."""
    design, counts = zero_positive_tables(seed)
    _, others = mixed_tables(seed + 20, count=8)
    counts = np.concatenate([counts, others])
    solver = PoissonBatchSolver(design)
    cells = counts.reshape(counts.shape[0], solver._left, solver._right, 2)
    n, s = cells[..., 0], cells[..., 1]
    start = np.where(solver.fit(counts // 2).zero_positive, np.nan, solver.fit(counts // 2).coef)
    for warm in (None, start):
        off = run_kernel(solver._tables, n, s, warm, 100, 1e-8, tail=False)
        on = run_kernel(solver._tables, n, s, warm, 100, 1e-8, tail=True)
        for name in ("iterations", "converged", "failed", "singular", "warm", "sandwich", "present", "zero_positive"):
            np.testing.assert_array_equal(getattr(on, name), getattr(off, name), err_msg=name)
        done = ~off.failed & ~off.singular
        zero = done & off.zero_positive.any(axis=1)
        assert zero.sum() >= 12
        assert (on.skipped[zero] > 0).mean() >= 0.6  # the jump happens (overlapping levels included)
        # (overlapping levels here reach μ < ε early: their jumps end there, hence only 20 %)
        assert on.skipped[zero].sum() >= 0.2 * off.iterations[zero].sum()
        assert (on.skipped[~zero] == 0).all()
        for name in ("beta", "var", "hessian_flat", "meat_flat"):  # untouched fits: same bytes
            np.testing.assert_array_equal(getattr(on, name)[~zero], getattr(off, name)[~zero], err_msg=name)
        scale = np.maximum(1.0, np.abs(off.beta[zero]))
        assert np.max(np.abs(on.beta[zero] - off.beta[zero]) / scale) <= TAIL_COEF_RTOL
        terms = off.present[zero]
        assert np.max(np.abs(on.var[zero][terms] / off.var[zero][terms] - 1.0)) <= TAIL_VAR_RTOL
    # through the solver (tail on by default), flags and numbers as the full replay
    fits, full = solver.fit(counts), PoissonBatchSolver(design, tail=False).fit(counts)
    for name in FLAGS:
        np.testing.assert_array_equal(getattr(fits, name), getattr(full, name), err_msg=name)
    np.testing.assert_allclose(fits.coef, full.coef, rtol=TAIL_COEF_RTOL, atol=TAIL_COEF_RTOL)


def test_tail_jump_falls_back_where_the_stop_is_ambiguous_and_caps_at_max_iter():
    """With tol set to a fit's own last deviance change, the predicted stop is within
    ``TAIL_AMBIGUITY`` of tol: the kernel must replay every iteration (the same bytes as
    without the jump). With max_iter below the stop the jump ends one real step before
    max_iter: the same iteration count, not converged, numbers within the tolerances."""
    design, counts = zero_positive_tables(1, count=4)
    solver = PoissonBatchSolver(design)
    cells = counts.reshape(counts.shape[0], solver._left, solver._right, 2)
    full = run_kernel(solver._tables, cells[..., 0], cells[..., 1], None, 100, 1e-8, tail=False)
    index = int(np.flatnonzero(full.zero_positive.any(axis=1) & ~full.failed & ~full.singular)[0])
    n, s = cells[index : index + 1, ..., 0], cells[index : index + 1, ..., 1]
    last = full.iterations[index]
    before = run_kernel(solver._tables, n, s, None, int(last) - 1, 1e-8, tail=False)
    tol = abs(deviance(solver, full.beta[index], counts[index]) - deviance(solver, before.beta[0], counts[index]))
    assert 1e-9 < tol <= 1e-8
    off = run_kernel(solver._tables, n, s, None, 100, tol, tail=False)
    on = run_kernel(solver._tables, n, s, None, 100, tol, tail=True)
    assert on.skipped[0] == 0 and run_kernel(solver._tables, n, s, None, 100, 1e-8, tail=True).skipped[0] > 0
    for name in ("beta", "var", "iterations", "converged"):
        np.testing.assert_array_equal(getattr(on, name), getattr(off, name), err_msg=name)
    cap = int(last) - 3
    off = run_kernel(solver._tables, n, s, None, cap, 1e-8, tail=False)
    on = run_kernel(solver._tables, n, s, None, cap, 1e-8, tail=True)
    assert on.skipped[0] > 0 and on.iterations[0] == off.iterations[0] == cap and not on.converged[0]
    scale = np.maximum(1.0, np.abs(off.beta[0]))
    assert np.max(np.abs(on.beta[0] - off.beta[0]) / scale) <= TAIL_COEF_RTOL
