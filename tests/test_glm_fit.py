"""fit_poisson and the batched solver against statsmodels, exactly as the study called it.

The oracle is ``smf.glm(formula, data, family=Poisson()).fit(cov_type="HC1")`` with
treatment coding and the same reference levels (tests.oracle).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from synthshare.glm import fit_poisson
from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design, most_frequent_levels
from synthshare.glm.irls import PoissonBatchSolver
from tests.oracle import statsmodels_fit
from synthshare.errors import InputError
from synthshare.variables import FEATURE_LEVELS, FEATURES, OUTCOME

# Level shares roughly like the cohort (ethnicity dominated by White British).
SHARES = {
    "age_group": [0.12, 0.13, 0.15, 0.18, 0.23, 0.185, 0.005],
    "sex": [0.54, 0.46],
    "ethnicity": [0.88, 0.026, 0.0375, 0.006, 0.02, 0.0165, 0.003, 0.009],
    "deprivation": [0.25, 0.25, 0.25, 0.25],
    "education": [0.31, 0.10, 0.21, 0.20, 0.18],
}


def random_frame(rng: np.random.Generator, n: int, base_rate: float = 0.2, shares: dict | None = None) -> pd.DataFrame:
    """n records with cohort-like level shares and a log-linear outcome with random effects."""
    shares = shares or SHARES
    data = {}
    log_rate = np.full(n, np.log(base_rate))
    for feature in FEATURES:
        probabilities = np.asarray(shares[feature], dtype=float)
        codes = rng.choice(len(probabilities), n, p=probabilities / probabilities.sum())
        data[feature] = np.asarray(FEATURE_LEVELS[feature], dtype=object)[codes]
        log_rate += rng.normal(0, 0.3, len(probabilities))[codes]
    data[OUTCOME] = rng.random(n) < np.minimum(np.exp(log_rate), 1.0)
    return pd.DataFrame(data)


def oracle(frame: pd.DataFrame, reference=None, features=FEATURES):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return statsmodels_fit(frame, reference, features)


def assert_matches(fit, coef, se, rtol=1e-6, check_se=True):
    assert sorted(fit.coef.index) == sorted(coef.index)
    coef = coef.reindex(fit.coef.index)
    se = se.reindex(fit.coef.index)
    np.testing.assert_allclose(fit.coef.to_numpy(), coef.to_numpy(), rtol=rtol, atol=0)
    if check_se:
        np.testing.assert_allclose(fit.se.to_numpy(), se.to_numpy(), rtol=rtol, atol=0)


ILL_CONDITIONED = 1e8
"""Above this condition number of statsmodels' Hessian scaled to unit diagonal (joint
separation: levels driven to ±∞ together, in opposite directions) the HC variance along
the near-null direction is rounding noise in statsmodels itself; only the coefficients
are compared there. (A single zero-positive level only makes one diagonal entry tiny,
which the scaling removes.)"""


def scaled_condition(result) -> float:
    hessian = result.model.hessian(result.params.to_numpy())
    scale = 1.0 / np.sqrt(np.abs(np.diag(hessian)))
    return float(np.linalg.cond(hessian * scale[:, None] * scale[None, :]))


def se_rounding_noise(result) -> float:
    """How far statsmodels' own standard errors move when its sandwich is evaluated in a
    different (mathematically equal) order: the rounding floor of any comparison."""
    hessian = result.model.hessian(result.params.to_numpy())
    scores = result.model.score_obs(result.params.to_numpy())
    bread = np.linalg.inv(hessian)
    again = np.sqrt(np.diag(bread @ ((scores.T @ scores) @ bread)))
    return float(np.max(np.abs(again / result.bse.to_numpy() - 1.0)))


def _random_case(index: int):
    rng = np.random.default_rng([2024, index])
    n = int(rng.choice([150, 300, 600, 1500, 3000]))
    frame = random_frame(rng, n, base_rate=float(rng.uniform(0.08, 0.3)))
    # the study's reference: most frequent levels (first-listed for every third set)
    reference = most_frequent_levels(frame) if index % 3 else None
    if reference is None and any(frame[f].eq(FEATURE_LEVELS[f][0]).sum() == 0 for f in FEATURES):
        reference = most_frequent_levels(frame)
    return frame, reference


RANDOM_CASES = 60


@pytest.mark.parametrize("index", range(RANDOM_CASES))
def test_random_data_sets_match_statsmodels(index):
    frame, reference = _random_case(index)
    coef, se, result = oracle(frame, reference)
    fit = fit_poisson(frame, reference)
    assert fit.iterations == result.fit_history["iteration"]
    assert fit.converged == result.converged
    assert_matches(fit, coef, se, check_se=False)
    if scaled_condition(result) < ILL_CONDITIONED:
        # standard errors: 1e-6, or 10x statsmodels' own rounding noise where that is larger
        # (several overlapping zero-positive levels make the Hessian's condition ~1e12)
        se = se.reindex(fit.se.index)
        tolerance = max(1e-6, 10 * se_rounding_noise(result))
        np.testing.assert_allclose(fit.se.to_numpy(), se.to_numpy(), rtol=tolerance, atol=0)


def test_most_random_data_sets_compare_standard_errors_at_1e6():
    """Guard for the test above: on at least 50 sets the errors are compared at 1e-6."""
    strict = 0
    for index in range(RANDOM_CASES):
        frame, reference = _random_case(index)
        _, _, result = oracle(frame, reference)
        strict += scaled_condition(result) < ILL_CONDITIONED and se_rounding_noise(result) < 1e-7
    assert strict >= 50


def test_hc1_is_statsmodels_glm_convention_without_small_sample_factor():
    """statsmodels' GLM has no cov_HC1: fit(cov_type="HC1") falls back to the plain sandwich."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    frame = random_frame(np.random.default_rng(1), 400)
    data = frame.assign(y=frame[OUTCOME].astype(float))
    model = smf.glm("y ~ C(sex) + C(deprivation)", data, family=sm.families.Poisson())
    hc1, hc0 = model.fit(cov_type="HC1"), model.fit(cov_type="HC0")
    np.testing.assert_array_equal(hc1.bse.to_numpy(), hc0.bse.to_numpy())
    fit = fit_poisson(frame, features=("sex", "deprivation"))
    np.testing.assert_allclose(np.sort(fit.se.to_numpy()), np.sort(hc1.bse.to_numpy()), rtol=1e-9)


def test_level_absent_from_data_has_no_term_and_matches():
    frame = random_frame(np.random.default_rng(2), 800)
    frame = frame[~frame["ethnicity"].isin(["Chinese", "Mixed"])].reset_index(drop=True)
    fit = fit_poisson(frame)
    assert "ethnicity[Chinese]" not in fit.coef.index and "ethnicity[Mixed]" not in fit.coef.index
    coef, se, _ = oracle(frame)
    assert_matches(fit, coef, se)


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")  # statsmodels', expected here
def test_categorical_column_with_unused_levels_is_treated_like_strings():
    """statsmodels fails on unused Categorical levels (singular matrix); fit_poisson drops them."""
    frame = random_frame(np.random.default_rng(3), 800)
    frame = frame[frame["ethnicity"] != "Chinese"].reset_index(drop=True)
    as_categorical = frame.assign(ethnicity=pd.Categorical(frame["ethnicity"], categories=FEATURE_LEVELS["ethnicity"]))
    a, b = fit_poisson(frame), fit_poisson(as_categorical)
    pd.testing.assert_series_equal(a.coef, b.coef)
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = as_categorical.assign(y=as_categorical[OUTCOME].astype(float))
    with pytest.raises(np.linalg.LinAlgError):
        smf.glm("y ~ C(ethnicity)", data, family=sm.families.Poisson()).fit(cov_type="HC1")


def test_zero_positive_level_matches_statsmodels_stopping_point():
    """No finite MLE: statsmodels stops near −20 after ~20 iterations; the same iterate is returned."""
    frame = random_frame(np.random.default_rng(4), 1500)
    frame.loc[frame["ethnicity"] == "South Asian", OUTCOME] = False
    coef, se, result = oracle(frame)
    fit = fit_poisson(frame)
    assert "ethnicity[South Asian]" in fit.zero_positive
    assert coef["ethnicity[South Asian]"] < -15 and result.fit_history["iteration"] > 15
    assert fit.iterations == result.fit_history["iteration"]
    assert_matches(fit, coef, se)


def test_overlapping_zero_positive_levels_match_including_link_clipping():
    """Two zero-positive levels sharing records drive μ below machine ε, where statsmodels'
    Log link clips μ in its derivative; the replay must clip the same way."""
    frame = random_frame(np.random.default_rng(5), 1500)
    frame.loc[frame["ethnicity"].isin(["South Asian", "Black"]), OUTCOME] = False
    frame.loc[frame["age_group"] == "[45, 50)", OUTCOME] = False
    coef, se, result = oracle(frame)
    fit = fit_poisson(frame)
    eta = coef["ethnicity[South Asian]"] + coef["age_group[[45, 50)]"] + coef["Intercept"]
    assert eta < np.log(np.finfo(float).eps)  # the clipping regime is reached
    assert fit.iterations == result.fit_history["iteration"]
    assert_matches(fit, coef, se)


def test_reference_level_absent_raises_like_patsy():
    frame = random_frame(np.random.default_rng(6), 500)
    frame = frame[frame["ethnicity"] != "Chinese"]
    with pytest.raises(Exception, match="Chinese"):
        oracle(frame, {"ethnicity": "Chinese"})
    with pytest.raises(InputError, match="reference level 'Chinese' of ethnicity has no records"):
        fit_poisson(frame, {"ethnicity": "Chinese"}, source="local.parquet")


def test_all_negative_outcome_raises_like_statsmodels():
    frame = random_frame(np.random.default_rng(7), 300)
    frame[OUTCOME] = False
    with pytest.raises(ValueError, match="deviance"):
        oracle(frame)
    with pytest.raises(InputError, match="no positive value"):
        fit_poisson(frame, source="local.parquet")


def oracle_coefficients(frame: pd.DataFrame, reference=None, features=FEATURES):
    """The oracle's fit, or only its coefficients where its HC1 sandwich raises.

    statsmodels' HC1 covariance is ``np.linalg.inv`` of the Hessian: on a numerically
    singular Hessian (collinear columns, joint separation) LAPACK's LU meets an exact zero
    pivot or a tiny one depending on the CPU's rounding, so the reference raises on one
    machine and returns noise on the next. The coefficients (same IRLS, ``pinv``-based
    nonrobust covariance) never depend on that.

    Returns:
        (coef, se, result, raised): ``se`` is None where HC1 raised.
    """
    try:
        coef, se, result = oracle(frame, reference, features)
        return coef, se, result, False
    except np.linalg.LinAlgError:
        coef, _, result = oracle_nonrobust(frame, reference, features)
        return coef, None, result, True


def oracle_nonrobust(frame: pd.DataFrame, reference=None, features=FEATURES):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return statsmodels_fit(frame, reference, features, cov_type="nonrobust")


def exact_rank(matrix: np.ndarray) -> int:
    """Rank of a 0/1 design matrix by Gaussian elimination over the rationals: no
    tolerance, hence no dependence on the CPU (``np.linalg.matrix_rank``'s SVD threshold
    sits only ~10x above the rounding-level singular values of such matrices)."""
    from fractions import Fraction

    rows = [[Fraction(int(v)) for v in row] for row in np.asarray(matrix)]
    rank, columns = 0, len(rows[0]) if rows else 0
    for column in range(columns):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][column] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(len(rows)):
            if r != rank and rows[r][column] != 0:
                factor = rows[r][column] / rows[rank][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank])]
        rank += 1
    return rank


def test_exact_rank():
    assert exact_rank(np.array([[1, 0, 1], [0, 1, 1], [1, 1, 2]])) == 2
    assert exact_rank(np.eye(4)) == 4
    assert exact_rank(np.array([[1, 1], [1, 1], [0, 0]])) == 1


@pytest.mark.parametrize("seed", range(6))
def test_tiny_data_replays_statsmodels_and_flags_rank_deficiency(seed):
    """20-40 records: collinear columns, separation, sometimes no convergence in 100 steps.
    The coefficients still follow statsmodels' iterate (to rounding amplified by the
    ill-conditioning); rank-deficient fits are flagged with NaN standard errors.

    Machine-independent by construction: a design whose columns are collinear (exact
    rank) must be flagged, whatever the reference does with it; where the reference's
    HC1 sandwich raises (CPU-dependent) on a design of full column rank, the Hessian is
    numerically singular (joint separation) and no standard error is compared."""
    rng = np.random.default_rng([99, seed])
    n = [20, 30, 40][seed % 3]
    frame = pd.DataFrame({f: rng.choice(FEATURE_LEVELS[f], n) for f in FEATURES})
    frame[OUTCOME] = rng.random(n) < 0.3
    reference = most_frequent_levels(frame)
    coef, se, result, raised = oracle_coefficients(frame, reference)
    fit = fit_poisson(frame, reference)
    assert fit.iterations == result.fit_history["iteration"]
    assert fit.converged == result.converged
    coef = coef.reindex(fit.coef.index)
    assert np.max(np.abs(fit.coef - coef) / np.maximum(np.abs(coef), 1.0)) < 1e-4
    collinear = exact_rank(result.model.exog) < result.model.exog.shape[1]
    if collinear:
        assert fit.rank_deficient
    if raised and not collinear:
        assert scaled_condition(result) > ILL_CONDITIONED
    if fit.rank_deficient:
        assert fit.se.isna().all()


def test_tiny_data_cases_cover_both_kinds_of_singularity():
    """Guard for the test above: its six sets include collinear designs (flag asserted)
    and full-rank designs the engine still flags from its IRLS pivots."""
    kinds = []
    for seed in range(6):
        rng = np.random.default_rng([99, seed])
        n = [20, 30, 40][seed % 3]
        frame = pd.DataFrame({f: rng.choice(FEATURE_LEVELS[f], n) for f in FEATURES})
        frame[OUTCOME] = rng.random(n) < 0.3
        _, _, result = oracle_nonrobust(frame, most_frequent_levels(frame))
        kinds.append(exact_rank(result.model.exog) < result.model.exog.shape[1])
    assert 1 <= sum(kinds) < 6


def test_oracle_raising_on_a_singular_hessian_means_a_flagged_fit(monkeypatch):
    """Emulate the CPU on which statsmodels' HC1 ``inv`` meets an exact zero pivot: the
    test logic above must then still hold (collinear design: the engine flags it)."""
    rng = np.random.default_rng([99, 0])
    frame = pd.DataFrame({f: rng.choice(FEATURE_LEVELS[f], 20) for f in FEATURES})
    frame[OUTCOME] = rng.random(20) < 0.3
    reference = most_frequent_levels(frame)
    real_inv = np.linalg.inv

    def singular_inv(matrix):
        if np.linalg.cond(matrix) > 1e15:
            raise np.linalg.LinAlgError("Singular matrix")
        return real_inv(matrix)

    import statsmodels.stats.sandwich_covariance as sandwich

    monkeypatch.setattr(sandwich.np.linalg, "inv", singular_inv)
    coef, se, result, raised = oracle_coefficients(frame, reference)
    monkeypatch.undo()
    assert raised and se is None
    assert exact_rank(result.model.exog) < result.model.exog.shape[1]
    fit = fit_poisson(frame, reference)
    assert fit.rank_deficient and fit.se.isna().all()
    np.testing.assert_allclose(fit.coef.to_numpy(), coef.reindex(fit.coef.index).to_numpy(), rtol=1e-4, atol=1e-4)


def test_rank_deficiency_is_detected():
    # two levels with exactly the same records: identical columns
    frame = random_frame(np.random.default_rng(8), 400)
    frame = frame[(frame["ethnicity"] != "Black") & (frame["education"] != "Others")].reset_index(drop=True)
    frame.loc[:2, "ethnicity"] = "Black"
    frame.loc[:2, "education"] = "Others"
    frame.loc[0, OUTCOME] = True
    fit = fit_poisson(frame)
    assert fit.rank_deficient and fit.se.isna().all()
    coef, _, _, _ = oracle_coefficients(frame)  # HC1 may raise here, depending on the CPU
    coef = coef.reindex(fit.coef.index)
    # the minimum-norm solution splits the shared effect equally, as lstsq does
    np.testing.assert_allclose(fit.coef["ethnicity[Black]"], fit.coef["education[Others]"], rtol=1e-8)
    np.testing.assert_allclose(fit.coef.to_numpy(), coef.to_numpy(), rtol=1e-6, atol=1e-8)


def test_without_ethnicity_variant_matches():
    frame = random_frame(np.random.default_rng(9), 1000)
    features = tuple(f for f in FEATURES if f != "ethnicity")
    reference = most_frequent_levels(frame, features)
    coef, se, _ = oracle(frame, reference, features)
    fit = fit_poisson(frame, reference, features)
    assert not any(name.startswith("ethnicity") for name in fit.coef.index)
    assert_matches(fit, coef, se)


def test_batch_equals_single_fits_and_does_not_depend_on_chunking():
    rng = np.random.default_rng(10)
    frames = [random_frame(rng, int(n)) for n in rng.choice([150, 400, 2000], 23)]
    design = Design.build(most_frequent_levels(frames[0]))
    counts = np.stack([count_cells(f) for f in frames])
    wide = PoissonBatchSolver(design, chunk=256).fit(counts)
    narrow = PoissonBatchSolver(design, chunk=4).fit(counts)
    np.testing.assert_allclose(wide.coef, narrow.coef, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(wide.var, narrow.var, rtol=1e-10, equal_nan=True)
    np.testing.assert_array_equal(wide.iterations, narrow.iterations)
    for i in (0, 7, 22):
        single = fit_poisson(frames[i], design.reference_levels())
        present = wide.present[i]
        np.testing.assert_allclose(single.coef.to_numpy(), wide.coef[i][present], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(single.se.to_numpy(), np.sqrt(wide.var[i][present]), rtol=1e-10)


def test_fit_poisson_names_bad_values():
    frame = random_frame(np.random.default_rng(11), 50)
    frame.loc[3, "sex"] = "female"
    with pytest.raises(InputError, match=r"local\.parquet: column 'sex' has value 'female'; expected one of"):
        fit_poisson(frame, source="local.parquet")
    with pytest.raises(InputError, match="reference: level 'Martian' of ethnicity"):
        fit_poisson(random_frame(np.random.default_rng(11), 50), {"ethnicity": "Martian"})


def test_warm_started_fits_match_statsmodels_and_zero_positive_fits_are_replayed():
    """Fits with a finite MLE are solved by Newton from a warm start (a fit of part of the
    data, as the experiment does from step j − 1); they must still agree with statsmodels
    to 1e-6. A fit with a zero-positive level ignores its start and replays statsmodels."""
    rng = np.random.default_rng(14)
    frames = [random_frame(rng, int(n), base_rate=0.3) for n in (2500, 4000, 6000, 8000)]
    zero = random_frame(rng, 1500)
    zero.loc[zero["ethnicity"] == "South Asian", OUTCOME] = False
    frames.append(zero)
    reference = most_frequent_levels(frames[0])
    design = Design.build(reference)
    solver = PoissonBatchSolver(design)
    counts = np.stack([count_cells(f) for f in frames])
    halves = np.stack([count_cells(f.iloc[: len(f) // 2]) for f in frames])
    half = solver.fit(halves)
    assert half.zero_positive[:4].any() and not replay_has_zero_positive(solver, counts[:4])
    # as the experiment passes them: no start for a zero-positive coefficient (≈ −20) or
    # for one chosen term; those begin at statsmodels' first step
    start = np.where(half.zero_positive, np.nan, half.coef)
    start[:, 3] = np.nan
    warm = solver.fit(counts, start=start)
    replay = solver.fit(counts)
    np.testing.assert_array_equal(warm.warm, [True, True, True, True, False])
    for i, frame in enumerate(frames):
        coef, se, result = oracle(frame, reference)
        present = warm.present[i]
        names = [n for n, keep in zip(design.names, present) if keep]
        assert sorted(names) == sorted(coef.index)
        np.testing.assert_allclose(warm.coef[i][present], coef.reindex(names).to_numpy(), rtol=1e-6, atol=0)
        np.testing.assert_allclose(np.sqrt(warm.var[i][present]), se.reindex(names).to_numpy(), rtol=1e-6, atol=0)
        if not warm.warm[i]:
            assert warm.iterations[i] == result.fit_history["iteration"]
    # the warm path lands on the MLE; the replay stops within statsmodels' tolerance of it
    np.testing.assert_allclose(warm.coef[:4], replay.coef[:4], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(warm.coef[4], replay.coef[4], rtol=1e-12, atol=1e-12)


def replay_has_zero_positive(solver, counts) -> bool:
    return bool(solver.fit(counts).zero_positive.any())


def test_a_bad_warm_start_falls_back_to_the_replay():
    """A start far from the MLE (Newton would need many steps or overflow) is replayed."""
    frame = random_frame(np.random.default_rng(13), 1000)
    design = Design.build()
    counts = count_cells(frame)[None]
    start = np.full((1, design.size), 40.0)
    fit = PoissonBatchSolver(design).fit(counts, start=start)
    replay = PoissonBatchSolver(design).fit(counts)
    assert not fit.warm[0]
    np.testing.assert_array_equal(fit.coef, replay.coef)
    np.testing.assert_array_equal(fit.iterations, replay.iterations)
