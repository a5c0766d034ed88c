"""Shared builders for the generator and privacy tests: random records and small DPVI objects."""

from __future__ import annotations

from functools import partial

import d3p.random as strong_rng
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.optim import SGD

from synthshare.generator.dpvi import AlignedPoissonDPSVI, PoissonDPSVI
from synthshare.generator.encoding import LEVEL_COUNTS
from synthshare.generator.gradients import clipped_gradient_sum, prior_log_density, prior_log_density_and_gradient
from synthshare.generator.model import ModelSettings, generative_model, make_guide, record_log_likelihood
from synthshare.variables import COLUMNS, FEATURE_LEVELS


def random_codes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 5) int32 codes with uniform levels and (n,) float32 outcomes with P(1) = 0.3."""
    codes = np.stack([rng.integers(0, count, n) for count in LEVEL_COUNTS], axis=1).astype(np.int32)
    return codes, (rng.random(n) < 0.3).astype(np.float32)


def random_frame(rng: np.random.Generator, n: int, centre: str = "Leeds") -> pd.DataFrame:
    """A local data frame with the study's columns and exact level strings."""
    data = {feature: rng.choice(np.array(levels, dtype=object), n) for feature, levels in FEATURE_LEVELS.items()}
    data["assessment_center"] = np.full(n, centre, dtype=object)
    data["covid_test_result"] = rng.random(n) < 0.2
    return pd.DataFrame(data)[list(COLUMNS)]


def small_dpvi(variant: str, sigma: float, clip: float = 2.0, q: float = 0.05, capacity: int = 16,
               components: int = 4, num_records: int = 40, seed: int = 0, optim=None):
    """A DPVI object with plain SGD(1) (parameter change = −gradient) and an initialised state."""
    settings = ModelSettings(components=components)
    model = partial(generative_model, settings=settings)
    guide = make_guide(model)
    optim = optim if optim is not None else SGD(1.0)
    common = dict(clipping_threshold=clip, dp_scale=sigma, sampling_rate=q, capacity=capacity)
    if variant == "aligned":
        # The production configuration (synthshare.generator.fit.build_dpvi): closed forms on.
        dpvi = AlignedPoissonDPSVI(model, guide, optim, **common, record_log_likelihood=record_log_likelihood,
                                   clipped_gradient_sum=clipped_gradient_sum,
                                   prior_log_density=partial(prior_log_density, settings=settings),
                                   prior_gradient=partial(prior_log_density_and_gradient, settings=settings))
    else:
        dpvi = PoissonDPSVI(model, guide, optim, **common)
    rng = np.random.default_rng(seed)
    codes, outcome = random_codes(rng, num_records)
    state = dpvi.init(strong_rng.PRNGKey(seed), jnp.asarray(codes), jnp.asarray(outcome), num_records=num_records)
    return dpvi, state, codes, outcome
