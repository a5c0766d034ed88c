"""``fit_poisson``: the study's Poisson regression of one data set.

Same numbers as the study's call (method.md, Analysis)::

    smf.glm("y ~ C(age_group, Treatment(reference=...)) + ...", data,
            family=sm.families.Poisson()).fit(cov_type="HC1")

on string feature columns, computed from the data set's count table
(:mod:`synthshare.glm.irls` replays statsmodels' IRLS; the module docstring there
lists what statsmodels does at the edges and how each case is matched or flagged):

* a level absent from the data: no term (as patsy does for a string column; a pandas
  Categorical with unused categories instead makes statsmodels fail with a singular
  matrix); it is predicted as the reference;
* a level with zero positives: no finite MLE; statsmodels stops its iteration with the
  coefficient near −20 to −25, a small HC1 standard error and ``converged`` True. The
  same iterate is returned here and the term is listed in ``zero_positive``;
* a reference level absent from the data: patsy raises; so does ``fit_poisson``;
* an all-negative outcome: statsmodels raises (its first deviance is NaN); so does
  ``fit_poisson``;
* collinear present columns (tiny data): statsmodels returns the minimum-norm IRLS
  iterate (often not converged) with a covariance that is ``inv`` of a singular
  matrix; the iterate is replayed and ``rank_deficient`` is set, with NaN errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from synthshare.glm.cells import count_cells
from synthshare.glm.design import Design
from synthshare.glm.irls import PoissonBatchSolver
from synthshare.errors import InputError
from synthshare.variables import FEATURES


@dataclass(frozen=True)
class PoissonFit:
    """One fitted model: only the terms the data identify.

    Attributes:
        coef: coefficients indexed ``Intercept`` and ``feature[level]`` (log relative risks).
        se: HC1 standard errors (statsmodels' GLM convention: no small-sample factor).
        nobs: records fitted.
        iterations: IRLS iterations; converged: statsmodels' convergence flag.
        zero_positive: terms of levels without a positive record (see module docstring).
        rank_deficient: collinear columns; ``se`` is then NaN.
        design: features and reference levels.
    """

    coef: pd.Series
    se: pd.Series
    nobs: int
    iterations: int
    converged: bool
    zero_positive: tuple[str, ...]
    rank_deficient: bool
    design: Design


def fit_poisson(frame: pd.DataFrame, reference: Mapping[str, str] | None = None,
                features: tuple[str, ...] | list[str] = FEATURES, source: str = "data") -> PoissonFit:
    """Fit the study's Poisson GLM (log link, main effects, intercept) with HC1 errors.

    Args:
        frame: records with the feature columns (exact level strings) and the boolean
            outcome ``covid_test_result``.
        reference: feature -> reference level; default the first-listed levels.
        features: the modelled features (``FEATURES``, or fewer for a variant).
        source: a name for ``frame`` in error messages (e.g. its file).

    Raises:
        InputError: bad columns or values, a reference level absent from the data, no
            positive outcome.
    """
    design = Design.build(reference, tuple(features))
    counts = count_cells(frame, design.features, source)
    for f, feature in enumerate(design.features):
        margin = counts[..., 0].sum(axis=tuple(a for a in range(len(design.features)) if a != f))
        if margin[design.reference[f]] == 0:
            level = design.reference_levels()[feature]
            raise InputError(f"{source}: reference level {level!r} of {feature} has no records; "
                             "expected a reference level present in the data (statsmodels/patsy refuses this fit)")
    if counts[..., 1].sum() == 0:
        raise InputError(f"{source}: column 'covid_test_result' has no positive value in {len(frame)} records; "
                         "expected at least one (statsmodels' Poisson IRLS fails on an all-negative outcome)")
    batch = PoissonBatchSolver(design).fit(counts[None])
    present = batch.present[0]
    names = [name for name, keep in zip(design.names, present) if keep]
    # Tiny, separated data can leave the Hessian singular to rounding (condition ~1e17)
    # without a collinear column: the sandwich diagonal is then rounding noise and may be
    # negative. Its square root is NaN, as in statsmodels' ``bse``, whose values there
    # are noise as well.
    with np.errstate(invalid="ignore"):
        se = np.sqrt(batch.var[0][present])
    return PoissonFit(
        coef=pd.Series(batch.coef[0][present], index=names, name="coef"),
        se=pd.Series(se, index=names, name="se"),
        nobs=int(counts[..., 0].sum()),
        iterations=int(batch.iterations[0]),
        converged=bool(batch.converged[0]),
        zero_positive=tuple(n for n, z in zip(design.names, batch.zero_positive[0]) if z),
        rank_deficient=bool(batch.rank_deficient[0]),
        design=design,
    )
