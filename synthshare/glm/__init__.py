"""A batched Poisson GLM that gives statsmodels' numbers, usable on its own.

``fit_poisson(frame)`` equals ``smf.glm(formula, frame, family=Poisson()).fit(
cov_type="HC1")`` for a log-link main-effects model of categorical features (the study's
analysis model), including statsmodels' behaviour at the edges (zero-positive levels,
absent levels, collinear tiny data). Underneath, a data set is reduced to a count
table over the feature grid (``cells``); ``design`` maps levels to model columns,
``margins`` computes the score, Hessian and meat from per-level factors, and ``irls``
replays statsmodels' IRLS on thousands of tables at once (``PoissonBatchSolver``).
Nothing here knows about parties, synthetic data or the workflow.
"""

from synthshare.glm.fit import PoissonFit, fit_poisson

__all__ = ["PoissonFit", "fit_poisson"]
