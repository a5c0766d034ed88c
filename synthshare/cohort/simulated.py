"""A simulated UK-Biobank-like cohort (the default input; UK Biobank itself is restricted).

The parameters come from a YAML file (``config/cohort_simulated.yaml``) in which every
number is a published target or a stated assumption (``shared/reference/cohort.md``).
The generating process, per centre c with n_c records:

1. ethnicity: exactly round(white_british_c · n_c) White British records, the rest
   split over the other groups by the overall non-White-British mix tilted by the
   centre's ``minority_tilt`` (largest-remainder rounding, then shuffled). The base mix
   is calibrated so the size-weighted overall mix equals the configured one;
2. age group, sex and education: independent categorical draws;
3. a latent Townsend-like score t = townsend_shift_c + ethnicity shift + education
   shift + N(0, 1); deprivation = quartile of t over the whole cohort;
4. outcome y ~ Bernoulli(λ), λ = exp(β₀ + Σ_j log RR_j[x_j]) · positive_factor_c, with
   the ethnicity term dropped in centres with ``ethnicity_effect: false``; β₀ solves
   mean(λ) = positive_share exactly on the drawn features;
5. optional heterogeneity (``heterogeneity.sd`` > 0): centre c's log relative risk of
   every non-reference level gets its own deviation δ_c,j ~ N(0, sd²), iid over centres
   and coefficients, added to the log-rate of the records with that level. The
   deviations come from a stream of their own, keyed ``(seed, index of c in CENTRES,
   HETEROGENEITY_STREAM)``: with sd = 0 nothing is drawn and the cohort is exactly the
   homogeneous one; with sd > 0 no other draw moves, and the deviations at different
   sds are the same standard normals scaled (nested sweeps).

``simulate_cohort`` returns the cohort and its ground truth: the log relative risks in
the analysis model's parametrisation (``Intercept`` and ``feature[level]`` against the
first-listed levels); with heterogeneity also each centre's deviations and generating
coefficients. (The population-level coefficients of the analysis model, which differ
from these wherever the model is misspecified, are ``synthshare.analysis.estimand``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.yaml_strict import load_mapping
from synthshare.variables import CENTRE_COLUMN, CENTRES, COLUMNS, FEATURE_LEVELS, OUTCOME

_MIN_CENTRE_RECORDS = 20
"""Smallest centre size a ``scale`` may produce: an 80/20 split and a 10 % subsample
of fewer records leave parties too small to fit anything."""

HETEROGENEITY_STREAM = 0x68657465
"""Last entry of the centre-deviation streams' seed keys ``(seed, centre index, this)``
(ASCII "hete"). Non-zero so that a key never equals a centre's feature stream
``(seed, centre index)``: numpy's SeedSequence pads short keys with zeros, so a zero
here would make the two streams identical."""


@dataclass(frozen=True)
class SimulatedCohort:
    """The simulated records and the truth behind them."""

    frame: pd.DataFrame
    """(n_records, 7): ``COLUMNS``; features as level strings, outcome bool."""
    truth: dict
    """Ground-truth coefficients and the generating parameters (JSON-ready)."""


def load_parameters(path: str | Path) -> dict:
    """Read the cohort parameter YAML (validated by the workflow's schema) with the strict
    loader: duplicated keys, syntax errors and a non-mapping file stop with one line."""
    path = Path(path)
    parameters = load_mapping(path)
    _check_levels(parameters, path)
    return parameters


def simulate_cohort(parameters: dict, scale: float = 1.0, seed: int = 0) -> SimulatedCohort:
    """Draw the cohort.

    Args:
        parameters: the mapping read by :func:`load_parameters`.
        scale: multiplies every centre's size (e.g. 0.1 for quick runs); each centre
            keeps at least 20 records.
        seed: the only source of randomness; centre c draws from the stream
            ``(seed, index of c in CENTRES)``, so centres are independent of each other.

    Returns:
        A :class:`SimulatedCohort` with sum_c round(scale · records_c) rows, in centre
        order of the parameter file.
    """
    centres = parameters["centres"]
    sizes = centre_sizes(parameters, scale)
    mixes = centre_minority_mixes(parameters, sizes)

    parts = []
    for name, spec in centres.items():
        rng = np.random.default_rng([seed, CENTRES.index(name)])
        parts.append(_draw_centre(name, spec, sizes[name], mixes[name], parameters, rng))
    frame = pd.concat(parts, ignore_index=True)

    townsend = frame.pop("_townsend").to_numpy()
    cuts = np.quantile(townsend, [0.25, 0.5, 0.75])
    frame["deprivation"] = np.asarray(FEATURE_LEVELS["deprivation"], dtype=object)[np.searchsorted(cuts, townsend, side="right")]

    log_rate = frame.pop("_log_rate_without_deprivation").to_numpy()
    log_rr = {f: {lvl: float(np.log(rr)) for lvl, rr in parameters["relative_risk"][f].items()} for f in FEATURE_LEVELS}
    log_rate = log_rate + frame["deprivation"].map(log_rr["deprivation"]).to_numpy()
    sd = heterogeneity_sd(parameters)
    deviations = centre_deviations(list(centres), sd, seed) if sd > 0 else None
    if deviations is not None:
        log_rate = log_rate + _deviation_term(frame, deviations)
    intercept = float(np.log(parameters["positive_share"] * len(frame) / np.exp(log_rate).sum()))
    rate = np.exp(intercept + log_rate)
    if rate.max() > 1.0:
        raise InputError(
            f"cohort parameters: relative_risk/positive_factor/heterogeneity give a positive probability of {rate.max():.3f} > 1; "
            "expected all λ = exp(xβ) ≤ 1 (lower the relative risks, positive_share or heterogeneity.sd)"
        )
    outcome_rng = np.random.default_rng([seed, len(CENTRES)])
    frame[OUTCOME] = outcome_rng.random(len(frame)) < rate
    frame = frame[list(COLUMNS)]

    factors = np.array([centres[c]["positive_factor"] for c in frame[CENTRE_COLUMN]])
    truth = {
        "coefficients": _coefficients(intercept + float(np.log(factors.mean())), log_rr),
        "intercept_without_centre_factor": intercept,
        "positive_factor": {name: spec["positive_factor"] for name, spec in centres.items()},
        "ethnicity_effect_off_in": [n for n, s in centres.items() if not s.get("ethnicity_effect", True)],
        "deprivation_cut_points": cuts.tolist(),
        "seed": seed,
        "scale": scale,
        "note": (
            "coefficients are log relative risks against the first-listed levels; "
            "Intercept includes the mean log-scale centre factor (record-weighted)"
        ),
    }
    if deviations is not None:
        # absent when sd = 0, so that the homogeneous cohort's truth.json keeps its bytes
        truth["heterogeneity"] = {
            "sd": sd,
            "deviations": deviations,
            "centre_coefficients": {name: centre_coefficients(parameters, name, intercept, deviations[name]) for name in centres},
            "note": (
                "deviations: per centre, iid N(0, sd^2) added to the log relative risk of each non-reference level; "
                "centre_coefficients: the centre's own generating coefficients (Intercept includes its positive_factor); "
                "the top-level coefficients are the centres' common part (the deviations have mean 0)"
            ),
        }
    return SimulatedCohort(frame=frame, truth=truth)


def centre_sizes(parameters: dict, scale: float) -> dict[str, int]:
    """Records per centre at ``scale`` (at least 20 each), in parameter-file order."""
    return {name: max(_MIN_CENTRE_RECORDS, int(round(spec["records"] * scale))) for name, spec in parameters["centres"].items()}


def heterogeneity_sd(parameters: dict) -> float:
    """The configured SD of the centre deviations (0 when the key is absent: homogeneous).

    Raises:
        InputError: a negative or non-finite SD.
    """
    sd = parameters.get("heterogeneity", {}).get("sd", 0.0)
    if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not np.isfinite(sd) or sd < 0:
        raise InputError(f"cohort parameters: heterogeneity.sd = {sd!r}; expected a finite number >= 0 (0 = centres share one set of relative risks)")
    return float(sd)


def deviation_terms() -> list[str]:
    """The coefficients that get centre deviations: every non-reference level, in the
    analysis model's term order (``feature[level]``, features in ``FEATURES`` order)."""
    return [f"{feature}[{level}]" for feature, levels in FEATURE_LEVELS.items() for level in levels[1:]]


def centre_deviations(names: list[str], sd: float, seed: int) -> dict[str, dict[str, float]]:
    """Per centre, δ_c = sd · z_c with z_c ~ N(0, I) of length 21 (:func:`deviation_terms`).

    Centre c draws from ``default_rng((seed, CENTRES.index(c), HETEROGENEITY_STREAM))``,
    so a centre's deviations do not depend on which other centres the file lists.
    """
    terms = deviation_terms()
    out = {}
    for name in names:
        z = np.random.default_rng([seed, CENTRES.index(name), HETEROGENEITY_STREAM]).standard_normal(len(terms))
        out[name] = {term: float(sd * value) for term, value in zip(terms, z)}
    return out


def centre_coefficients(parameters: dict, name: str, intercept: float, deviations: dict[str, float] | None = None) -> dict[str, float]:
    """Centre ``name``'s generating coefficients in the analysis model's terms.

    log λ_c(x) = Intercept_c + Σ_f β_c[f, x_f] with Intercept_c = intercept + log
    positive_factor_c + Σ_f log RR_f[first level] and β_c[f, l] = log RR_f[l] − log
    RR_f[first] (ethnicity's 0 where ``ethnicity_effect`` is false) + δ_c[f, l].

    Args:
        intercept: the cohort's solved intercept (``intercept_without_centre_factor``).
        deviations: the centre's δ (:func:`centre_deviations`); None = no deviations.
    """
    spec = parameters["centres"][name]
    rr = parameters["relative_risk"]
    coefficients = {"Intercept": intercept + float(np.log(spec["positive_factor"]))}
    for feature, levels in FEATURE_LEVELS.items():
        effect = feature != "ethnicity" or spec.get("ethnicity_effect", True)
        base = float(np.log(rr[feature][levels[0]])) if effect else 0.0
        coefficients["Intercept"] += base
        for level in levels[1:]:
            term = f"{feature}[{level}]"
            value = float(np.log(rr[feature][level])) - base if effect else 0.0
            coefficients[term] = value + (deviations[term] if deviations else 0.0)
    return coefficients


def _deviation_term(frame: pd.DataFrame, deviations: dict[str, dict[str, float]]) -> np.ndarray:
    """(n,) Σ_f δ_c[f, x_f] of every record (0 for first-listed levels)."""
    total = np.zeros(len(frame))
    centre = frame[CENTRE_COLUMN].to_numpy()
    for name, delta in deviations.items():
        rows = centre == name
        for feature, levels in FEATURE_LEVELS.items():
            lookup = {level: delta.get(f"{feature}[{level}]", 0.0) for level in levels}
            total[rows] += frame.loc[rows, feature].map(lookup).to_numpy(dtype=float)
    return total


def _draw_centre(name: str, spec: dict, n: int, mix: dict[str, float], parameters: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Features and partial log-rates of one centre's n records (see module docstring)."""
    ethnicity = _exact_composition(n, spec["white_british"], mix, rng)
    columns = {
        "age_group": _categorical(rng, parameters["age_group"], n),
        "sex": np.where(rng.random(n) < parameters["male_share"], "Male", "Female").astype(object),
        "ethnicity": ethnicity,
        "education": _categorical(rng, parameters["education"], n),
    }
    frame = pd.DataFrame(columns)
    shifts = parameters["townsend"]
    frame["_townsend"] = (
        spec["townsend_shift"]
        + frame["ethnicity"].map(shifts["ethnicity_shift"]).to_numpy()
        + frame["education"].map(shifts["education_shift"]).to_numpy()
        + rng.standard_normal(n)
    )
    rr = parameters["relative_risk"]
    log_rate = np.log(spec["positive_factor"]) + sum(
        np.log(frame[f].map(rr[f]).to_numpy(dtype=float)) for f in ("age_group", "sex", "education")
    )
    if spec.get("ethnicity_effect", True):
        log_rate = log_rate + np.log(frame["ethnicity"].map(rr["ethnicity"]).to_numpy(dtype=float))
    frame["_log_rate_without_deprivation"] = log_rate
    frame[CENTRE_COLUMN] = name
    return frame


def _categorical(rng: np.random.Generator, probabilities: dict[str, float], n: int) -> np.ndarray:
    levels = np.array(list(probabilities), dtype=object)
    p = np.array(list(probabilities.values()), dtype=float)
    return levels[rng.choice(len(levels), size=n, p=p / p.sum())]


def _exact_composition(n: int, white_british: float, mix: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """n ethnicity labels with exactly round(white_british · n) White British, the rest
    by largest remainders of ``mix``, in random order."""
    labels = np.repeat(np.array(["White British", *mix], dtype=object), ethnicity_counts(n, white_british, mix))
    return rng.permutation(labels)


def ethnicity_counts(n: int, white_british: float, mix: dict[str, float]) -> list[int]:
    """The exact composition of a centre of n records: White British first, then ``mix``'s
    groups in order (deterministic: only the order of the labels is random)."""
    n_white = int(round(white_british * n))
    counts = _largest_remainder(np.array(list(mix.values())) * (n - n_white), n - n_white)
    return [n_white, *(int(c) for c in counts)]


def _largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Integers summing to ``total`` that round ``quotas`` (ties to the earlier entry)."""
    counts = np.floor(quotas).astype(int)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def centre_minority_mixes(parameters: dict, sizes: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each centre's mix over the non-White-British groups.

    mix_c ∝ base · tilt_c; the base is found by fixed-point iteration so that the mix of
    all non-White-British records, pooled over centres, equals the configured overall mix.
    """
    target = parameters["non_white_british_mix"]
    groups = list(target)
    goal = np.array([target[g] for g in groups])
    goal = goal / goal.sum()
    centres = parameters["centres"]
    tilts = np.array([[centres[c].get("minority_tilt", {}).get(g, 1.0) for g in groups] for c in centres])
    minority = np.array([sizes[c] * (1.0 - centres[c]["white_british"]) for c in centres])
    base = goal.copy()
    for _ in range(200):
        mixes = base * tilts
        mixes /= mixes.sum(axis=1, keepdims=True)
        pooled = (minority[:, None] * mixes).sum(axis=0)
        pooled /= pooled.sum()
        base = base * goal / pooled
    return {c: dict(zip(groups, row)) for c, row in zip(centres, mixes)}


def _coefficients(intercept: float, log_rr: dict[str, dict[str, float]]) -> dict[str, float]:
    """Truth in the analysis model's names: Intercept and feature[level] vs first levels."""
    coefficients = {"Intercept": intercept}
    for feature, levels in FEATURE_LEVELS.items():
        for level in levels[1:]:
            coefficients[f"{feature}[{level}]"] = log_rr[feature][level] - log_rr[feature][levels[0]]
    return coefficients


def _check_levels(parameters: dict, path: Path) -> None:
    """Level names in the parameter file must be the study's exact strings."""
    checks = [
        ("age_group", parameters.get("age_group", {}), FEATURE_LEVELS["age_group"]),
        ("education", parameters.get("education", {}), FEATURE_LEVELS["education"]),
        ("non_white_british_mix", parameters.get("non_white_british_mix", {}), FEATURE_LEVELS["ethnicity"][1:]),
        ("townsend.ethnicity_shift", parameters.get("townsend", {}).get("ethnicity_shift", {}), FEATURE_LEVELS["ethnicity"]),
        ("townsend.education_shift", parameters.get("townsend", {}).get("education_shift", {}), FEATURE_LEVELS["education"]),
    ] + [
        (f"relative_risk.{f}", parameters.get("relative_risk", {}).get(f, {}), levels)
        for f, levels in FEATURE_LEVELS.items()
    ]
    for key, mapping, levels in checks:
        if set(mapping) != set(levels):
            extra = sorted(set(mapping) - set(levels))
            missing = sorted(set(levels) - set(mapping))
            raise InputError(f"{path}: {key}: unknown levels {extra} / missing levels {missing}; expected exactly {list(levels)}")
    for name, spec in parameters.get("centres", {}).items():
        if name not in CENTRES:
            raise InputError(f"{path}: centres: unknown centre {name!r}; expected one of {list(CENTRES)}")
        for group in spec.get("minority_tilt", {}):
            if group not in FEATURE_LEVELS["ethnicity"][1:]:
                raise InputError(f"{path}: centres.{name}.minority_tilt: unknown group {group!r}; expected one of {list(FEATURE_LEVELS['ethnicity'][1:])}")
