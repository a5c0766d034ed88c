"""The estimand of the coverage study: the analysis model's population-level coefficients.

A pooled 95 % interval "covers" when it contains the value the estimator is meant to
estimate. The analysis model (a main-effects log-link Poisson GLM, ``synthshare.glm``)
is not the simulator (``synthshare.cohort.simulated``): the simulator multiplies each
centre's rate by its ``positive_factor``, drops the ethnicity effect in some centres and,
with heterogeneity, gives every centre its own relative risks, while the model has no
centre term. The right target is therefore not the simulator's parameters but

    β* = argmax_β E_P[ y · x(β) − exp(x(β)) ],   x(β) = β₀ + Σ_f β_f[x_f],

the coefficients the Poisson GLM converges to as the pooled population's sample grows
(its score equation Σ_x n(x) (λ(x) − exp x(β)) x = 0 in expectation): the
Kullback–Leibler projection of the simulator's mean onto the model. Here P is the
simulator with the parameters one cohort was drawn with held fixed (``truth.json``:
the solved intercept, the deprivation cut points, the centre sizes at its scale, the
centre deviations), i.e. the superpopulation that cohort — and every party's data —
is a sample of. It equals the simulator's coefficients exactly when the model is
correctly specified (one centre factor and one set of relative risks for all records:
tested), and differs otherwise; a single centre's projection is always that centre's
own coefficients (its rate is log-linear in the main effects).

It is computed exactly, not from a sample: P's expected count table over the 2,240
feature cells is closed-form (age, sex, education independent; the ethnicity
composition of a centre deterministic; deprivation = a quartile of a normal latent
score, so P(quartile | centre, ethnicity, education) is a difference of normal CDFs),
and the GLM engine solves the Poisson score equations on it as on any count table
(real-valued counts). The result is checked: the score at the answer is zero to
rounding, or ``projection`` raises.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from synthshare.cohort.simulated import (
    centre_coefficients,
    centre_minority_mixes,
    centre_sizes,
    ethnicity_counts,
    heterogeneity_sd,
)
from synthshare.errors import InputError
from synthshare.glm.design import Design
from synthshare.glm.irls import PoissonBatchSolver
from synthshare.variables import CELL_SHAPE, FEATURE_LEVELS, FEATURES

SCORE_TOL = 1e-10
"""The largest |score| per expected record accepted at a projection (rounding is ~1e-15)."""

VARIANT_FEATURES = {"full": FEATURES, "no_ethnicity": tuple(f for f in FEATURES if f != "ethnicity")}
"""The analysis variants (``synthshare.analysis.experiment.VARIANTS``) and their features."""


def population_table(parameters: dict, truth: dict, centres: list[str] | None = None) -> np.ndarray:
    """P's expected count table: records and positives per feature cell, summed over centres.

    Args:
        parameters: the cohort parameter mapping the cohort was drawn with.
        truth: that cohort's ``truth.json`` (``scale``, ``intercept_without_centre_factor``,
            ``deprivation_cut_points`` and, with heterogeneity, ``heterogeneity.deviations``).
        centres: the centres of the population (default all of the parameter file's).

    Returns:
        (7, 2, 8, 4, 5, 2) float64: ``[..., 0]`` expected records (a centre contributes its
        size at the cohort's scale), ``[..., 1]`` expected positives.
    """
    names = list(parameters["centres"]) if centres is None else list(centres)
    unknown = [c for c in names if c not in parameters["centres"]]
    if unknown:
        raise InputError(f"estimand: centres {unknown} not in the cohort parameters; expected some of {list(parameters['centres'])}")
    deviations = _deviations(parameters, truth)
    sizes = centre_sizes(parameters, truth["scale"])
    mixes = centre_minority_mixes(parameters, sizes)
    intercept = float(truth["intercept_without_centre_factor"])
    cuts = np.concatenate([[-np.inf], np.asarray(truth["deprivation_cut_points"], float), [np.inf]])

    p_age = _probabilities(parameters["age_group"], "age_group")
    p_sex = np.array([1.0 - parameters["male_share"], parameters["male_share"]])  # Female, Male
    p_edu = _probabilities(parameters["education"], "education")
    shifts = parameters["townsend"]
    eth_shift = np.array([shifts["ethnicity_shift"][lv] for lv in FEATURE_LEVELS["ethnicity"]])
    edu_shift = np.array([shifts["education_shift"][lv] for lv in FEATURE_LEVELS["education"]])

    table = np.zeros(CELL_SHAPE + (2,))
    for name in names:
        spec, n = parameters["centres"][name], sizes[name]
        counts = dict(zip(["White British", *mixes[name]], ethnicity_counts(n, spec["white_british"], mixes[name])))
        p_eth = np.array([counts[lv] for lv in FEATURE_LEVELS["ethnicity"]], float) / n
        # P(quartile q | e, d) = Φ(u_q − m) − Φ(u_{q−1} − m), m = centre + ethnicity + education shift
        mean = spec["townsend_shift"] + eth_shift[:, None] + edu_shift[None, :]  # (8, 5)
        quartile = np.diff(ndtr(cuts[None, None, :] - mean[:, :, None]), axis=-1)  # (8, 5, 4)
        records = (n * p_age[:, None, None, None, None] * p_sex[None, :, None, None, None]
                   * p_eth[None, None, :, None, None] * np.transpose(quartile, (0, 2, 1))[None, None]
                   * p_edu[None, None, None, None, :])
        coefficients = centre_coefficients(parameters, name, intercept, deviations.get(name))
        log_rate = coefficients["Intercept"] + sum(
            _level_values(coefficients, f).reshape([-1 if a == i else 1 for a in range(len(FEATURES))])
            for i, f in enumerate(FEATURES)
        )
        table[..., 0] += records
        table[..., 1] += records * np.exp(log_rate)
    return table


def projection(table: np.ndarray, features: tuple[str, ...] = FEATURES) -> dict[str, float]:
    """The Poisson GLM's solution on an expected count table (first-listed references).

    Args:
        table: (7, 2, 8, 4, 5, 2) expected records and positives (:func:`population_table`).
        features: the modelled features (a variant drops some; they are summed out).

    Returns:
        Term -> coefficient, in ``Design`` term order.

    Raises:
        RuntimeError: the solver's answer does not solve the score equations (|score| per
            record > ``SCORE_TOL``).
    """
    design = Design.build(None, features)
    return dict(zip(design.names, (float(v) for v in projections(np.asarray(table)[None], design)[0])))


def projections(tables: np.ndarray, design: Design) -> np.ndarray:
    """:func:`projection` of a batch of expected tables, in ``design``'s coding.

    Args:
        tables: (N, 7, 2, 8, 4, 5, 2) expected records and positives.
        design: features and reference levels of the coefficients (the features it
            lacks are summed out). The solution does not depend on the reference levels
            (only its coding does) nor on the tables' totals (the score equations are
            homogeneous in the counts).

    Returns:
        (N, P) coefficients in ``design.names`` order.

    Raises:
        RuntimeError: a table without expected positives, or an answer that does not
            solve the score equations (|score| per record > ``SCORE_TOL``).
    """
    dropped = tuple(1 + i for i, f in enumerate(FEATURES) if f not in design.features)
    counts = np.asarray(tables, float).sum(axis=dropped) if dropped else np.asarray(tables, float)
    records, positives = counts[..., 0].reshape(len(counts), -1).sum(1), counts[..., 1].reshape(len(counts), -1).sum(1)
    if not ((positives > 0) & (records > 0)).all():
        raise RuntimeError(f"estimand: the GLM did not fit a population table ({list(design.features)}): no expected positives")
    start = np.zeros((len(counts), design.size))
    start[:, 0] = np.log(positives / records)
    # the numpy reference path (the compiled kernel's first call spends ~20 s compiling);
    # from this start Newton converges fully
    fit = PoissonBatchSolver(design, kernel="numpy").fit(counts, start=start)
    beta = fit.coef
    if fit.failed.any() or not fit.present.all() or not np.isfinite(beta).all():
        raise RuntimeError(f"estimand: the GLM did not fit a population table ({list(design.features)})")
    for n in range(len(counts)):
        effects = design.level_effects(beta[n])
        log_mu = beta[n, 0] + sum(e.reshape([-1 if a == i else 1 for a in range(len(effects))]) for i, e in enumerate(effects))
        residual = counts[n, ..., 1] - counts[n, ..., 0] * np.exp(log_mu)
        score = np.array([residual.sum()] + [_term_sum(residual, design, t) for t in range(1, design.size)])
        worst = float(np.abs(score).max() / records[n])
        if worst > SCORE_TOL:
            raise RuntimeError(f"estimand: |score| per record {worst:.2e} > {SCORE_TOL:g} at the GLM's answer "
                               f"({list(design.features)}, table {n})")
    return beta


def centre_tables(parameters: dict, truth: dict, centres: list[str]) -> np.ndarray:
    """(C, 7, 2, 8, 4, 5, 2) each centre's expected table *per record* (records sum to 1)."""
    tables = np.stack([population_table(parameters, truth, [c]) for c in centres])
    return tables / tables[..., 0].reshape(len(centres), -1).sum(1).reshape((-1,) + (1,) * (tables.ndim - 1))


def mixture_estimands(unit_tables: np.ndarray, weights: np.ndarray, design: Design) -> np.ndarray:
    """β* of data mixed from several centres' populations, in ``design``'s coding.

    A party's combined data at a step are its local records (its centre's population)
    plus one synthetic set of each partner, each as large as that partner's data and
    meant to follow that partner's population; the pooled estimate converges to the
    projection of that mixture, Σ_c w_c P_c (w_c: records from centre c), not of the
    whole cohort (``docs/coverage.md``).

    Args:
        unit_tables: (C, 7, 2, 8, 4, 5, 2) per-record tables (:func:`centre_tables`).
        weights: (N, C) records from each centre in each of N mixtures.
        design: the coding (the party's reference levels).

    Returns:
        (N, P) coefficients.
    """
    weights = np.asarray(weights, float)
    tables = np.tensordot(weights, unit_tables, axes=(1, 0))
    return projections(tables, design)


def population_estimand(parameters: dict, truth: dict, features: tuple[str, ...] = FEATURES,
                        centres: list[str] | None = None) -> dict[str, float]:
    """β* of the pooled population (or of ``centres`` only): :func:`projection` of
    :func:`population_table`."""
    return projection(population_table(parameters, truth, centres), features)


def estimand_record(parameters: dict, truth: dict) -> dict:
    """The JSON-ready ``estimand`` block of ``truth.json``: β* of the pooled population
    for each analysis variant, and what it is."""
    return {
        **{variant: population_estimand(parameters, truth, features) for variant, features in VARIANT_FEATURES.items()},
        "definition": (
            "population-level coefficients of the analysis model (main-effects Poisson GLM, first-listed references): "
            "its solution on the expected count table of the pooled population of all centres under the simulator "
            "with this cohort's parameters (KL projection; synthshare.analysis.estimand)"
        ),
    }


def _deviations(parameters: dict, truth: dict) -> dict[str, dict[str, float]]:
    """The centre deviations recorded in ``truth`` (none when homogeneous), checked against
    the parameters' SD so that a truth file from another configuration is not mixed in."""
    sd = heterogeneity_sd(parameters)
    recorded = truth.get("heterogeneity")
    if recorded is None:
        if sd > 0:
            raise InputError(f"truth: no 'heterogeneity' block, but the cohort parameters have heterogeneity.sd = {sd:g}; "
                             "expected the truth.json of a cohort drawn with these parameters")
        return {}
    if float(recorded["sd"]) != sd:
        raise InputError(f"truth: heterogeneity.sd = {recorded['sd']!r}, cohort parameters {sd!r}; expected the same")
    return recorded["deviations"]


def _probabilities(mapping: dict[str, float], feature: str) -> np.ndarray:
    """The simulator's categorical probabilities in ``FEATURE_LEVELS`` order (normalised)."""
    p = np.array([mapping[level] for level in FEATURE_LEVELS[feature]], float)
    return p / p.sum()


def _level_values(coefficients: dict[str, float], feature: str) -> np.ndarray:
    """(L_f,) a feature's coefficients per level, 0 at the first-listed level."""
    return np.array([0.0] + [coefficients[f"{feature}[{lv}]"] for lv in FEATURE_LEVELS[feature][1:]])


def _term_sum(residual: np.ndarray, design: Design, term: int) -> float:
    """Σ of ``residual`` over the cells whose design row has ``term``."""
    for axis, index in enumerate(design.term_index):
        level = np.flatnonzero(index == term)
        if level.size:
            return float(np.take(residual, level[0], axis=axis).sum())
    raise ValueError(f"term {term} not in the design")
