"""The study's own fit, through statsmodels' formula interface: the oracle for tests and benchmarks.

This is the slow reference the engine must reproduce, not part of the pipeline.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from synthshare.glm.design import Design, term_name
from synthshare.variables import FEATURE_LEVELS, FEATURES, OUTCOME


def formula(design: Design) -> str:
    """``y ~ C(f, Treatment(reference='...')) + ...`` with the design's reference levels."""
    references = design.reference_levels()
    terms = [f"C({f}, Treatment(reference={references[f]!r}))" for f in design.features]
    return "y ~ " + " + ".join(terms)


def statsmodels_fit(frame: pd.DataFrame, reference: Mapping[str, str] | None = None,
                    features: tuple[str, ...] | list[str] = FEATURES, cov_type: str = "HC1"):
    """``smf.glm(formula, data, family=Poisson()).fit(cov_type="HC1")`` on string columns.

    ``cov_type="nonrobust"`` runs the same IRLS (same coefficients and iterations) with
    statsmodels' ``pinv``-based covariance, which never raises: the way to get the
    reference's coefficients where its HC1 sandwich (``np.linalg.inv`` of the Hessian)
    raises ``LinAlgError`` on a numerically singular Hessian. Whether it raises there
    depends on the CPU's BLAS rounding (an exact zero LU pivot or a tiny one).

    Returns:
        (coef, se, result): Series renamed to ``Intercept`` / ``feature[level]``, and the
        statsmodels results object.
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    design = Design.build(reference, tuple(features))
    data = frame[list(design.features)].astype(str).copy()
    data["y"] = frame[OUTCOME].astype(float).to_numpy()
    result = smf.glm(formula(design), data, family=sm.families.Poisson()).fit(cov_type=cov_type)
    names = [_rename(name) for name in result.params.index]
    coef = pd.Series(np.asarray(result.params), index=names)
    se = pd.Series(np.asarray(result.bse), index=names)
    return coef, se, result


def _rename(name: str) -> str:
    """``C(sex, Treatment(reference='Female'))[T.Male]`` -> ``sex[Male]``."""
    if name == "Intercept":
        return name
    feature = name[2 : name.index(",")]
    level = name[name.rindex("[T.") + 3 : -1]
    if level not in FEATURE_LEVELS[feature]:
        raise ValueError(f"cannot parse statsmodels term {name!r}")
    return term_name(feature, level)


def statsmodels_party_experiment(local: pd.DataFrame, synthetic: list[list[pd.DataFrame]], orders: np.ndarray,
                                 reference: Mapping[str, str], test: pd.DataFrame, draws: int,
                                 draw_rng: np.random.Generator, variants: tuple[str, ...] = ("full", "no_ethnicity")):
    """The study's loop, record by record: for every step and k, concatenate the data, fit
    with statsmodels, pool with Rubin's rules, draw, and score on the test records.

    Mirrors :meth:`synthshare.analysis.experiment.PartyExperiment.run` (same random
    stream consumption), so the two can be compared draw by draw.

    Args:
        synthetic: [other party][k] synthetic data frames.
        orders: (R, O) permutations of the other parties.

    Returns:
        (local, combined): variant -> (S,) and (R, O, S) per-record log-likelihoods.
    """
    full = Design.build(reference)
    local_ll = {}
    for variant in variants:
        design = full if variant == "full" else full.without("ethnicity")
        coef, var, present = _fit_vector(local, design)
        mean, total, has = _pool([coef], [var], [present])
        sample = _draw(mean, total, has, draws, draw_rng)
        local_ll[variant] = _score(test, design, sample)
    others = len(synthetic)
    sets = len(synthetic[0])
    combined = np.empty((len(orders), others, draws))
    for r, order in enumerate(orders):
        means, totals, present_any = [], [], []
        for step in range(1, others + 1):
            fits = [_fit_vector(pd.concat([local] + [synthetic[o][k] for o in order[:step]], ignore_index=True), full)
                    for k in range(sets)]
            mean, total, has = _pool(*zip(*fits))
            means.append(mean)
            totals.append(total)
            present_any.append(has)
        # one draw call per order, (steps, S, P), as the engine does
        noise = draw_rng.standard_normal((others, draws, full.size))
        for j in range(others):
            sample = np.where(present_any[j], means[j] + np.sqrt(np.where(present_any[j], totals[j], 0.0)) * noise[j], 0.0)
            combined[r, j] = _score(test, full, sample)
    return local_ll, combined


def _fit_vector(frame: pd.DataFrame, design: Design):
    try:
        coef, se, _ = statsmodels_fit(frame, design.reference_levels(), design.features)
    except np.linalg.LinAlgError:
        # The study's HC1 sandwich raised on a numerically singular Hessian (a CPU-dependent
        # outcome): the fit has no variances, so Rubin's rules leave it out, as the engine
        # leaves out the fits it flags rank deficient.
        coef, se, _ = statsmodels_fit(frame, design.reference_levels(), design.features, cov_type="nonrobust")
        se = se * np.nan
    values = np.array([coef.get(name, 0.0) for name in design.names])
    variances = np.array([se.get(name, np.nan) ** 2 for name in design.names])
    return values, variances, np.array([name in coef.index for name in design.names])


def _pool(coefs, variances, presents):
    """Rubin's rules per term over the fits that have it (NaN variances left out)."""
    coefs, variances = np.array(coefs), np.array(variances)
    presents = np.array(presents) & np.isfinite(variances)
    P = coefs.shape[1]
    mean, total, has = np.zeros(P), np.full(P, np.nan), presents.any(axis=0)
    for p in np.flatnonzero(has):
        w = coefs[presents[:, p], p]
        v = variances[presents[:, p], p]
        K = w.size
        b = w.var(ddof=1) if K > 1 else 0.0
        t = (1 + 1 / K) * b - v.mean()
        mean[p], total[p] = w.mean(), t if t >= 0 else (1 + 1 / K) * b + v.mean()
    return mean, total, has


def _draw(mean, total, has, draws, rng):
    noise = rng.standard_normal((1, draws, mean.size))[0]
    return np.where(has, mean + np.sqrt(np.where(has, total, 0.0)) * noise, 0.0)


def _score(test: pd.DataFrame, design: Design, sample: np.ndarray) -> np.ndarray:
    """Per-record average Poisson log-likelihood of each coefficient vector (binary y)."""
    X = np.zeros((len(test), design.size))
    X[:, 0] = 1.0
    for f, feature in enumerate(design.features):
        codes = pd.Categorical(test[feature], categories=FEATURE_LEVELS[feature]).codes
        terms = design.term_index[f][codes]
        rows = np.flatnonzero(terms >= 0)
        X[rows, terms[rows]] = 1.0
    eta = sample @ X.T  # (S, n)
    y = test[OUTCOME].to_numpy(np.float64)
    return (eta * y - np.exp(eta)).mean(axis=1)
