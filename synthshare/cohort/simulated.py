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
   mean(λ) = positive_share exactly on the drawn features.

``simulate_cohort`` returns the cohort and its ground truth: the log relative risks in
the analysis model's parametrisation (``Intercept`` and ``feature[level]`` against the
first-listed levels).
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
    sizes = {name: max(_MIN_CENTRE_RECORDS, int(round(spec["records"] * scale))) for name, spec in centres.items()}
    mixes = _centre_minority_mixes(parameters, sizes)

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
    intercept = float(np.log(parameters["positive_share"] * len(frame) / np.exp(log_rate).sum()))
    rate = np.exp(intercept + log_rate)
    if rate.max() > 1.0:
        raise InputError(
            f"cohort parameters: relative_risk/positive_factor give a positive probability of {rate.max():.3f} > 1; "
            "expected all λ = exp(xβ) ≤ 1 (lower the relative risks or positive_share)"
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
    return SimulatedCohort(frame=frame, truth=truth)


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
    n_white = int(round(white_british * n))
    counts = _largest_remainder(np.array(list(mix.values())) * (n - n_white), n - n_white)
    labels = np.repeat(np.array(["White British", *mix], dtype=object), [n_white, *counts])
    return rng.permutation(labels)


def _largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Integers summing to ``total`` that round ``quotas`` (ties to the earlier entry)."""
    counts = np.floor(quotas).astype(int)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _centre_minority_mixes(parameters: dict, sizes: dict[str, int]) -> dict[str, dict[str, float]]:
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
