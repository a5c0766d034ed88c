"""The privacy level of a generator fit: a DP ε, or :data:`NO_PRIVACY` for a non-DP fit.

Its own module because the workflow's rule files read it (the audit's arms) and must not
import jax, d3p or the accountants while Snakemake parses them (slow, and jax's import
configures logging).
"""

from __future__ import annotations

import math

NO_PRIVACY = math.inf
"""ε = ∞: ``generator.job.fit_and_sample`` fits without privacy (σ = 0, no clipping);
the privacy audit's non-DP control arm."""
