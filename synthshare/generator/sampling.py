"""K synthetic data sets from a fitted generator (method.md, "Synthetic data").

For each set k = 0..K−1: draw one latent vector z_k ~ q(z) = N(loc, diag(scale²)),
map it to the model's parameters (π, θ, w), then draw N_m records:
component r ~ Categorical(π), x_j ~ Categorical(θ_j^(r)) for each feature, and
y ~ Poisson(exp(w·φ(x))); the stored outcome is the boolean y ≥ 1, as the study coded
a positive test. This is post-processing of the DP posterior: no privacy cost.
"""

from __future__ import annotations

import zlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro.infer.util import constrain_fn

from synthshare.generator.fit import PartyFit
from synthshare.generator.model import (
    LEVEL_COUNTS,
    FeatureMixture,
    ModelSettings,
    decode_records,
    feature_probabilities,
    generative_model,
    log_rate,
    make_guide,
)
from synthshare.variables import CENTRE_COLUMN, COLUMNS, FEATURES, OUTCOME

SET_COLUMN = "set"


def _unpacker(model_settings: ModelSettings):
    """The guide's flat-vector unpacking and the model's constraining, as one function z -> sites."""
    model = partial(generative_model, settings=model_settings)
    guide = make_guide(model)
    one = jnp.zeros((1, len(LEVEL_COUNTS)), jnp.int32)
    # Running the guide once sets up its latent layout (the same as during fitting).
    numpyro.handlers.seed(guide, rng_seed=0)(one, jnp.zeros((1,), jnp.float32), num_records=1)

    def constrained(latent: jax.Array) -> dict[str, jax.Array]:
        return constrain_fn(model, (None, None), {}, guide._unpack_latent(latent))

    return constrained, guide


def sampling_key(seed: int, scenario: str, party: str) -> jax.Array:
    """jax PRNG key for a party's synthetic sets (separate from its training stream)."""
    tag = zlib.crc32(f"synthetic/{scenario}/{party}".encode()) & 0x7FFFFFFF
    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), tag)


def sample_codes(
    fit: PartyFit, model_settings: ModelSettings, sets: int, records: int, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (K, N, 5) and boolean outcomes (K, N) of K synthetic sets."""
    constrained, guide = _unpacker(model_settings)
    expected = tuple((name, tuple(np.shape(v))) for name, v in guide._init_locs.items())
    if tuple(fit.layout) != expected:
        raise ValueError(f"party {fit.name!r}: parameter layout {fit.layout} does not match the model's {expected}")
    loc = jnp.asarray(fit.loc, jnp.float32)
    scale = jnp.asarray(fit.scale, jnp.float32)

    def one_set(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        latent_key, feature_key, outcome_key = jax.random.split(key, 3)
        sample = constrained(loc + scale * jax.random.normal(latent_key, loc.shape))
        codes = FeatureMixture(sample["weights"], feature_probabilities(sample)).sample(feature_key, (records,))
        counts = jax.random.poisson(outcome_key, jnp.exp(log_rate(sample["coef"], codes)))
        return codes, counts >= 1

    codes, positive = jax.jit(jax.vmap(one_set))(jax.random.split(key, sets))
    return np.asarray(codes), np.asarray(positive)


def synthetic_frame(codes: np.ndarray, positive: np.ndarray, party: str) -> pd.DataFrame:
    """Stack K sets into the synthetic.parquet table: ``COLUMNS`` + ``set``.

    Features and centre as strings (object), outcome bool, ``set`` int64 0..K−1; rows
    set by set, N_m per set.
    """
    sets, records = positive.shape
    levels = decode_records(codes.reshape(sets * records, len(FEATURES)))
    frame = pd.DataFrame({feature: levels[feature] for feature in FEATURES})
    frame[CENTRE_COLUMN] = np.full(sets * records, party, dtype=object)
    frame[OUTCOME] = positive.reshape(-1).astype(bool)
    frame = frame[list(COLUMNS)]
    frame[SET_COLUMN] = np.repeat(np.arange(sets, dtype=np.int64), records)
    return frame


def sample_synthetic(
    fit: PartyFit, model_settings: ModelSettings, sets: int, seed: int, scenario: str
) -> pd.DataFrame:
    """K synthetic sets of N_m records each for a fitted party, as a table."""
    codes, positive = sample_codes(fit, model_settings, sets, fit.num_records, sampling_key(seed, scenario, fit.name))
    return synthetic_frame(codes, positive, fit.name)
