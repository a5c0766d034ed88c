"""The blocked fast path (randomness drawn a block of steps at a time) reproduces the
reference ``AlignedPoissonDPSVI.update`` trajectory: same keys, batches and noise, so
the same parameters up to float32 rounding."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.optim import Adam

from synthshare.generator.blocked import blocked_steps, draw_block
from synthshare.generator.fit import PartyData, fit_parties
from synthshare.generator.settings import GeneratorSettings
from tests.generator_helpers import random_codes, small_dpvi

STEPS = 60
TOLERANCE = 2e-5
"""Absolute tolerance on the unconstrained guide parameters (order 1) after the steps:
float32 rounding of the two evaluation orders, ~100× the differences seen (1e-7)."""


def _reference(dpvi, state, codes, outcome, n, steps):
    def one(state, _):
        return dpvi.update(state, codes, outcome, n)
    return jax.jit(lambda s: jax.lax.scan(one, s, None, length=steps))(state)


def _params(dpvi, state):
    params = dpvi.optim.get_params(state.optim_state)
    return np.asarray(params["auto_loc"]), np.asarray(params["auto_scale"])


@pytest.mark.parametrize("sigma", [0.0, 3.0])
def test_blocked_steps_follow_the_reference_trajectory(sigma):
    dpvi, state, codes, outcome = small_dpvi("aligned", sigma, clip=1.0, q=0.2, capacity=20, num_records=40,
                                             optim=Adam(0.05))
    codes, outcome = jnp.asarray(codes), jnp.asarray(outcome)
    ref_state, ref_losses = _reference(dpvi, state, codes, outcome, 40, STEPS)
    fast_state, fast_losses = jax.jit(partial(blocked_steps, dpvi, steps=STEPS))(state, codes, outcome, 40)
    assert np.array_equal(np.asarray(ref_state.rng_key), np.asarray(fast_state.rng_key))
    for ref, fast in zip(_params(dpvi, ref_state), _params(dpvi, fast_state)):
        np.testing.assert_allclose(fast, ref, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(np.asarray(fast_losses), np.asarray(ref_losses), rtol=1e-5, atol=1e-3)
    # The parameters moved far beyond the tolerance, so agreement is not trivial.
    start_loc, _ = _params(dpvi, state)
    assert np.max(np.abs(_params(dpvi, ref_state)[0] - start_loc)) > 1000 * TOLERANCE


def test_pre_drawn_block_is_the_reference_randomness():
    """Batch, η and ξ of the block are those the reference's step t draws from its keys."""
    dpvi, state, codes, outcome = small_dpvi("aligned", 2.0, q=0.3, capacity=24, num_records=40)
    codes, outcome = jnp.asarray(codes), jnp.asarray(outcome)
    key_after, (batch_codes, batch_outcome, valid, eta, noise) = draw_block(dpvi, state, codes, outcome, 40, 5)
    shape = eta.shape[1:]
    for t in range(5):
        state, (batch_key, gradient_key, noise_key) = dpvi._split_rng_key(state, 3)
        ref_codes, ref_outcome, ref_valid = dpvi._draw_batch(batch_key, codes, outcome, 40)
        assert np.array_equal(np.asarray(valid[t]), np.asarray(ref_valid))
        assert np.array_equal(np.asarray(batch_codes[t]), np.asarray(ref_codes))
        assert np.array_equal(np.asarray(batch_outcome[t]), np.asarray(ref_outcome))
        assert np.array_equal(np.asarray(eta[t]), np.asarray(dpvi.shared_draw(gradient_key, shape)))
        # d3p's own perturbation of a zero gradient at scale 1 is exactly its noise draw.
        d3p_noise = dpvi.perturbation_function(dpvi._rng_suite, noise_key, {"g": jnp.zeros(shape)}, 1.0)["g"]
        assert np.array_equal(np.asarray(noise[t]), np.asarray(d3p_noise))
    assert np.array_equal(np.asarray(key_after), np.asarray(state.rng_key))
    assert not np.array_equal(np.asarray(noise[0]), np.asarray(noise[1]))


def test_blocked_fit_of_a_group_of_parties_equals_the_reference_fit():
    rng = np.random.default_rng(3)
    parties = [PartyData(name, *random_codes(rng, n)) for name, n in (("a", 120), ("b", 300))]
    settings = GeneratorSettings(epochs=3, sampling_rate=0.05, clip=1.0, learning_rate=0.01)
    reference = fit_parties(parties, settings, 2.0, 40, 7, "t", blocked=False)
    fast = fit_parties(parties, settings, 2.0, 40, 7, "t", blocked=True)
    for ref, fit in zip(reference, fast):
        np.testing.assert_allclose(fit.loc, ref.loc, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(fit.scale, ref.scale, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(fit.elbo, ref.elbo, rtol=1e-5)
