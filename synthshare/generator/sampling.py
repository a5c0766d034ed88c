"""K synthetic data sets from a fitted generator (method.md, "Synthetic data").

For each set k = 0..K−1: draw one latent vector z_k ~ q(z) = N(loc, diag(scale²)),
map it to the model's parameters (π, θ, w), then draw N_m records:
component r ~ Categorical(π), x_j ~ Categorical(θ_j^(r)) for each feature, and
y ~ Poisson(exp(w·φ(x))); the stored outcome is the boolean y ≥ 1, as the study coded
a positive test. This is post-processing of the DP posterior: no privacy cost.
"""

from __future__ import annotations

import functools
import hashlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro.infer.util import constrain_fn

from synthshare.generator.fit import PartyFit
from synthshare.generator.encoding import LEVEL_COUNTS, decode_records
from synthshare.generator.model import (
    FeatureMixture,
    ModelSettings,
    feature_probabilities,
    generative_model,
    log_rate,
    make_guide,
)
from synthshare.variables import CENTRE_COLUMN, COLUMNS, FEATURES, OUTCOME

SET_COLUMN = "set"


BLOCK_RECORDS = 1024
"""Records drawn per compiled call and set; a set of N records takes ceil(N/1024) blocks."""


@functools.lru_cache(maxsize=8)
def _samplers(model_settings: ModelSettings):
    """Compiled (draw parameters, draw a block of records) for a model, built once.

    Returns the latent layout and two jitted functions:
    ``parameters(loc, scale, set_keys) -> sites`` (one posterior draw per set) and
    ``block(sites, set_keys, b) -> (codes (K, 1024, 5), positive (K, 1024))``.
    """
    model = partial(generative_model, settings=model_settings)
    guide = make_guide(model)
    one = jnp.zeros((1, len(LEVEL_COUNTS)), jnp.int32)
    # Running the guide once sets up its latent layout (the same as during fitting).
    numpyro.handlers.seed(guide, rng_seed=0)(one, jnp.zeros((1,), jnp.float32), num_records=1)
    layout = tuple((name, tuple(np.shape(v))) for name, v in guide._init_locs.items())

    def parameters(loc: jax.Array, scale: jax.Array, set_keys: jax.Array) -> dict[str, jax.Array]:
        def one_set(key: jax.Array) -> dict[str, jax.Array]:
            latent = loc + scale * jax.random.normal(jax.random.fold_in(key, 0), loc.shape)
            return constrain_fn(model, (None, None), {}, guide._unpack_latent(latent))
        return jax.vmap(one_set)(set_keys)

    def block(sites: dict[str, jax.Array], set_keys: jax.Array, index: jax.Array) -> tuple[jax.Array, jax.Array]:
        def one_set(sample: dict[str, jax.Array], key: jax.Array) -> tuple[jax.Array, jax.Array]:
            feature_key, outcome_key = jax.random.split(jax.random.fold_in(key, index + 1))
            codes = FeatureMixture(sample["weights"], feature_probabilities(sample)).sample(feature_key, (BLOCK_RECORDS,))
            counts = jax.random.poisson(outcome_key, jnp.exp(log_rate(sample["coef"], codes)))
            return codes, counts >= 1
        return jax.vmap(one_set)(sites, set_keys)

    return layout, jax.jit(parameters), jax.jit(block)


def sampling_key(seed: int, scenario: str, party: str) -> jax.Array:
    """jax PRNG key for a party's synthetic sets (separate from its training stream)."""
    digest = hashlib.sha256(f"synthetic/{int(seed)}/{scenario}/{party}".encode()).digest()
    return jax.random.PRNGKey(int.from_bytes(digest[:4], "little"))


def sample_codes(
    fit: PartyFit, model_settings: ModelSettings, sets: int, records: int, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (K, N, 5) and boolean outcomes (K, N) of K synthetic sets.

    Set k uses key k of ``split(key, K)``: its posterior draw from ``fold_in(key_k, 0)``
    and its b-th block of 1,024 records from ``fold_in(key_k, b + 1)``, so a set does
    not depend on K or on other parties, and N only truncates the last block.
    """
    layout, parameters, block = _samplers(model_settings)
    if tuple(fit.layout) != layout:
        raise ValueError(f"party {fit.name!r}: parameter layout {fit.layout} does not match the model's {layout}")
    set_keys = jax.random.split(key, sets)
    sites = parameters(jnp.asarray(fit.loc, jnp.float32), jnp.asarray(fit.scale, jnp.float32), set_keys)
    blocks = [block(sites, set_keys, jnp.int32(b)) for b in range(-(-records // BLOCK_RECORDS))]
    codes = np.concatenate([np.asarray(c) for c, _ in blocks], axis=1)[:, :records]
    positive = np.concatenate([np.asarray(p) for _, p in blocks], axis=1)[:, :records]
    return codes, positive


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
