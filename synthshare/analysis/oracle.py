"""The study's own fit, through statsmodels' formula interface: the oracle for tests and benchmarks.

This is the slow reference the engine must reproduce, not part of the pipeline.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from synthshare.analysis.design import Design, term_name
from synthshare.variables import FEATURE_LEVELS, FEATURES, OUTCOME


def formula(design: Design) -> str:
    """``y ~ C(f, Treatment(reference='...')) + ...`` with the design's reference levels."""
    references = design.reference_levels()
    terms = [f"C({f}, Treatment(reference={references[f]!r}))" for f in design.features]
    return "y ~ " + " + ".join(terms)


def statsmodels_fit(frame: pd.DataFrame, reference: Mapping[str, str] | None = None,
                    features: tuple[str, ...] | list[str] = FEATURES):
    """``smf.glm(formula, data, family=Poisson()).fit(cov_type="HC1")`` on string columns.

    Returns:
        (coef, se, result): Series renamed to ``Intercept`` / ``feature[level]``, and the
        statsmodels results object.
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    design = Design.build(reference, tuple(features))
    data = frame[list(design.features)].astype(str).copy()
    data["y"] = frame[OUTCOME].astype(float).to_numpy()
    result = smf.glm(formula(design), data, family=sm.families.Poisson()).fit(cov_type="HC1")
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
