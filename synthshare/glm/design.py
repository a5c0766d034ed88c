"""The analysis model's design: which features, which reference levels, which terms.

The study's model (method.md, Analysis) is a Poisson GLM with log link and the main
effects of the five categorical features under treatment coding, plus an intercept:

    log λ(x) = β₀ + Σ_f β_f[x_f],   β_f[reference_f] = 0.

With L_f levels per feature the model has P = 1 + Σ_f (L_f − 1) terms (22 for the five
features, 15 without ethnicity). Terms are named as in ``data/truth.json``: ``Intercept``
and ``feature[level]``. Term order: intercept, then each feature in ``FEATURES`` order
and its non-reference levels in ``FEATURE_LEVELS`` order (statsmodels' order too).

A :class:`Design` is fixed per batch of fits; which terms a particular data set can
identify (levels absent from it get no term) is decided by the solver, per fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from synthshare.errors import InputError
from synthshare.variables import FEATURE_LEVELS, FEATURES


def term_name(feature: str, level: str) -> str:
    """The name of a level's coefficient: ``feature[level]`` (e.g. ``sex[Male]``)."""
    return f"{feature}[{level}]"


@dataclass(frozen=True)
class Design:
    """Features of the model and their reference levels.

    Attributes:
        features: the modelled features, a subsequence of ``FEATURES``.
        reference: per feature, the index of its reference level in ``FEATURE_LEVELS``.
    """

    features: tuple[str, ...]
    reference: tuple[int, ...]
    shape: tuple[int, ...] = field(init=False, compare=False)
    """Levels per modelled feature: the cell table's shape, e.g. (7, 2, 8, 4, 5)."""
    term_index: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)
    """Per feature, (L_f,) int: the term of each level, −1 for the reference level."""
    names: tuple[str, ...] = field(init=False, compare=False)
    """(P,) term names, intercept first."""

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in FEATURE_LEVELS]
        if unknown or list(self.features) != [f for f in FEATURES if f in self.features]:
            raise InputError(f"design: features {list(self.features)}; expected a subsequence of {list(FEATURES)}")
        if len(self.reference) != len(self.features):
            raise InputError(f"design: {len(self.reference)} reference levels for {len(self.features)} features")
        shape = tuple(len(FEATURE_LEVELS[f]) for f in self.features)
        names = ["Intercept"]
        term_index = []
        for feature, ref, levels in zip(self.features, self.reference, shape):
            if not 0 <= ref < levels:
                raise InputError(f"design: reference index {ref} of {feature}; expected 0..{levels - 1}")
            index = np.full(levels, -1, dtype=np.intp)
            for level in range(levels):
                if level != ref:
                    index[level] = len(names)
                    names.append(term_name(feature, FEATURE_LEVELS[feature][level]))
            index.flags.writeable = False
            term_index.append(index)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "term_index", tuple(term_index))
        object.__setattr__(self, "names", tuple(names))

    @property
    def size(self) -> int:
        """P, the number of terms (intercept included)."""
        return len(self.names)

    @classmethod
    def build(cls, reference: Mapping[str, str] | None = None, features: tuple[str, ...] | list[str] = FEATURES) -> "Design":
        """A design from level strings; features missing from ``reference`` use their first-listed level.

        Raises:
            InputError: a feature or level name that the study does not have.
        """
        reference = dict(reference or {})
        features = tuple(features)
        extra = sorted(set(reference) - set(FEATURE_LEVELS))
        if extra:
            raise InputError(f"reference: unknown feature(s) {extra}; expected some of {list(FEATURES)}")
        indices = []
        for feature in features:
            if feature not in FEATURE_LEVELS:
                raise InputError(f"design: unknown feature {feature!r}; expected some of {list(FEATURES)}")
            level = reference.get(feature, FEATURE_LEVELS[feature][0])
            if level not in FEATURE_LEVELS[feature]:
                raise InputError(
                    f"reference: level {level!r} of {feature}; expected one of {list(FEATURE_LEVELS[feature])}"
                )
            indices.append(FEATURE_LEVELS[feature].index(level))
        return cls(features, tuple(indices))

    def reference_levels(self) -> dict[str, str]:
        """Feature -> its reference level string."""
        return {f: FEATURE_LEVELS[f][r] for f, r in zip(self.features, self.reference)}

    def without(self, feature: str) -> "Design":
        """The same design with ``feature`` dropped (e.g. the ``no_ethnicity`` variant)."""
        keep = [i for i, f in enumerate(self.features) if f != feature]
        return Design(tuple(self.features[i] for i in keep), tuple(self.reference[i] for i in keep))

    def level_effects(self, coef: np.ndarray) -> list[np.ndarray]:
        """Per feature, the effect of every level: (..., L_f) arrays, 0 at the reference.

        Args:
            coef: (..., P) coefficients in term order (a term absent from the fitted
                data carries 0, i.e. is predicted as the reference).
        """
        coef = np.asarray(coef)
        padded = np.concatenate([np.zeros(coef.shape[:-1] + (1,)), coef], axis=-1)
        # term −1 (the reference) picks the padded zero at position 0
        return [padded[..., index + 1] for index in self.term_index]


def most_frequent_levels(frame: pd.DataFrame, features: tuple[str, ...] | list[str] = FEATURES) -> dict[str, str]:
    """The study's reference levels: each feature's most frequent level in ``frame``.

    Ties go to the level listed first in ``FEATURE_LEVELS``.

    Raises:
        InputError: ``frame`` is empty or lacks a feature column.
    """
    if len(frame) == 0:
        raise InputError("reference levels: the local data set is empty; expected at least one record")
    chosen = {}
    for feature in features:
        if feature not in frame.columns:
            raise InputError(f"reference levels: column {feature!r} missing; expected columns {list(FEATURES)}")
        levels = FEATURE_LEVELS[feature]
        counts = frame[feature].value_counts()
        tally = np.array([counts.get(level, 0) for level in levels])
        chosen[feature] = levels[int(np.argmax(tally))]  # argmax returns the first maximum
    return chosen
