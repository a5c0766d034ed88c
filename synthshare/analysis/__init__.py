"""The analysis stage: the study's Poisson regression, Rubin's rules and the utility experiment.

Public entry point: :func:`fit_poisson` (one data set, statsmodels' numbers). The
experiment (``experiment.py``) fits thousands of count tables at once with the same
iteration (``irls.py``), pools them (``rubin.py``) and scores draws (``scoring.py``).
"""

from synthshare.analysis.poisson import PoissonFit, fit_poisson

__all__ = ["PoissonFit", "fit_poisson"]
