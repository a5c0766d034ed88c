"""The fused path (randomness drawn in blocks by JAX, steps in the numba kernel) reproduces
the reference ``AlignedPoissonDPSVI.update``: the same batches from the same stream bits,
the same keys, η and ξ, and the same trajectory up to float32 rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthshare.generator import fused_kernel
import d3p.random as strong_rng
from chacha import random as chacha_random
from synthshare.generator.fit import PartyData, _stack, build_dpvi, fit_parties, party_key
from synthshare.generator.fused import FusedState, ModelLayout, _normals_program, chacha_words, draw_block, run_fused, threefry_words
from synthshare.generator.settings import GeneratorSettings
from synthshare.generator.subsampling import stream_decisions, stream_words, threshold
from tests.generator_helpers import random_codes

STEPS = 120
TOLERANCE = 2e-5
"""Absolute tolerance on the unconstrained guide parameters (order 1) after the steps:
float32 rounding of the reference against float64 here, ~10× the differences seen (1e-6)."""


def _kernel_batch(words, own, n, t, capacity):
    index = np.zeros(max(capacity, 1), np.int64)
    lead = max(0, 16 - int(t).bit_length())
    filled, selected = fused_kernel.stream_batch(words, own, n, t, lead, capacity, index)
    return index[:filled], selected


@pytest.mark.parametrize("t", [656, 1, 2, 300, 12345, 32768, 65535, 65536])
def test_kernel_sampler_decides_as_the_reference(t):
    """Random, all-zero and all-one streams; short streams (truncation); small capacities (overflow)."""
    rng = np.random.default_rng(t)
    reference = jax.jit(stream_decisions, static_argnums=(2, 3))
    for trial in range(40):
        n = int(rng.integers(1, 700))
        size = stream_words(n) if trial % 2 else int(rng.integers(1, 60))
        own = min(size, stream_words(n)) if trial % 2 else int(rng.integers(1, size + 1))
        words = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)
        if trial % 7 == 0:
            words[:] = 0
        if trial % 11 == 0:
            words[:] = 0xFFFFFFFF
        if t >= 2**16:
            expected = np.arange(n)
        else:
            expected = np.flatnonzero(np.asarray(reference(jnp.asarray(words), own, n, t)))
        capacity = int(rng.integers(1, 60))
        index, selected = _kernel_batch(words, own, n, t, capacity)
        assert selected == len(expected)
        np.testing.assert_array_equal(index, expected[:capacity])


def test_elementary_functions_are_accurate():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-708, 709, 20000), rng.uniform(-3, 3, 20000), [0.0, -708.0, 709.0]])
    out = np.empty_like(x)
    fused_kernel.apply_elementary(0, x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=1e-15, atol=0)
    e = np.concatenate([rng.uniform(0, 1, 20000), 10 ** rng.uniform(-300, 0, 20000), [0.0, 1.0]])
    out = np.empty_like(e)
    fused_kernel.apply_elementary(1, e, out)
    np.testing.assert_allclose(out, np.log1p(e), rtol=1e-15, atol=0)
    y = np.concatenate([np.exp(rng.uniform(-700, 700, 20000)), rng.uniform(0.5, 2, 20000), [1.0, 2.0]])
    out = np.empty_like(y)
    fused_kernel.apply_elementary(2, y, out)
    np.testing.assert_allclose(out, np.log(y), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("count", [1, 15, 16, 17, 294, 373])
def test_numba_chacha_words_are_jax_chachas(count):
    """Random key states, counters near 2^32 (the block counter wraps), counts around a block."""
    rng = np.random.default_rng(count)
    keys = rng.integers(0, 2**32, (64, 4, 4), dtype=np.uint64).astype(np.uint32)
    keys[:8, 3, 0] = 0xFFFFFFFF - np.arange(8, dtype=np.uint32)
    reference = jax.jit(jax.vmap(lambda key: chacha_random.random_bits(key, 32, (count,))))(jnp.asarray(keys))
    assert np.array_equal(chacha_words(keys, count), np.asarray(reference))


@pytest.mark.parametrize("count", [1, 2, 3, 372, 373])
def test_numba_threefry_words_are_jax_randoms(count):
    """The words under η: raw uint32 keys (as ``convert_to_jax_rng_key`` gives), odd and even counts."""
    keys = np.random.default_rng(count).integers(0, 2**32, (64, 2), dtype=np.uint64).astype(np.uint32)
    reference = jax.jit(jax.vmap(lambda key: jax.random.bits(key, (count,), jnp.uint32)))(jnp.asarray(keys))
    assert np.array_equal(threefry_words(keys, count), np.asarray(reference))
    normals = _normals_program((64,), count)(threefry_words(keys, count), threefry_words(keys, count))[0]
    expected = jax.jit(jax.vmap(lambda key: jax.random.normal(key, (count,))))(jnp.asarray(keys))
    assert np.array_equal(np.asarray(normals), np.asarray(expected))


def test_normals_from_words_are_d3ps_normals():
    """ξ from the numba words and the compiled conversion equals ``d3p.random.normal``, bit for bit."""
    keys = jnp.stack([strong_rng.PRNGKey(i) for i in range(50)])
    reference = np.asarray(jax.vmap(lambda key: strong_rng.normal(key, (1000,)))(keys))
    words = chacha_words(np.asarray(keys), 1000)
    words[0, :4] = [0, 0xFFFFFFFF, 0x80000000, 0x1FF]  # the ends of the interval
    ours = np.asarray(_normals_program(words.shape[:-1], words.shape[-1])(words, words)[1])
    assert np.array_equal(ours[1:], reference[1:])
    assert np.all(np.isfinite(ours[0, :4]))  # the ends of the interval map to finite values, as in d3p


def _setup(settings: GeneratorSettings, sigma: float, capacity: int, n: int, seed: int = 0):
    codes, outcome = random_codes(np.random.default_rng(seed), n)
    dpvi = build_dpvi(settings, sigma, capacity)
    state = dpvi.init(party_key(seed, "t", "p"), jnp.asarray(codes), jnp.asarray(outcome), num_records=n)
    layout = tuple((name, tuple(np.shape(v))) for name, v in dpvi.guide._init_locs.items())
    return dpvi, state, codes, outcome, ModelLayout.from_guide(layout, settings.components)


def test_pre_drawn_block_is_the_reference_randomness():
    """Stream, η and ξ of the block are those the reference's step t draws from its keys."""
    settings = GeneratorSettings(components=4, sampling_rate=0.3)
    dpvi, state, codes, outcome, layout = _setup(settings, 2.0, 24, 40)
    words = stream_words(40)
    key_after, stream, eta, noise = draw_block(state.rng_key, words, layout.dim, 5)
    for t in range(5):
        state, (batch_key, gradient_key, noise_key) = dpvi._split_rng_key(state, 3)
        ref_codes, ref_outcome, ref_valid = dpvi._draw_batch(batch_key, jnp.asarray(codes), jnp.asarray(outcome), 40)
        index, _ = _kernel_batch(np.asarray(stream[t]), words, 40, threshold(dpvi.sampling_rate), 24)
        np.testing.assert_array_equal(codes[index], np.asarray(ref_codes)[np.asarray(ref_valid)])
        assert np.array_equal(np.asarray(eta[t]), np.asarray(dpvi.shared_draw(gradient_key, (layout.dim,))))
        # d3p's own perturbation of a zero gradient at scale 1 is exactly its noise draw.
        zero = {"g": jnp.zeros((layout.dim,))}
        d3p_noise = dpvi.perturbation_function(dpvi._rng_suite, noise_key, zero, 1.0)["g"]
        assert np.array_equal(np.asarray(noise[t]), np.asarray(d3p_noise))
    assert np.array_equal(np.asarray(key_after), np.asarray(state.rng_key))


@pytest.mark.parametrize(
    "sigma,clip,alpha,coef_scale",
    [(0.0, 1.0, 1.0, 1.0), (3.0, 1.0, 1.0, 1.0), (2.0, 0.5, 0.7, 2.0), (0.0, 1e30, 1.0, 1.0)],
)
def test_fused_steps_follow_the_reference_trajectory(sigma, clip, alpha, coef_scale):
    settings = GeneratorSettings(components=4, sampling_rate=0.2, clip=clip, learning_rate=0.05,
                                 dirichlet_concentration=alpha, coef_prior_scale=coef_scale)
    dpvi, state, codes, outcome, layout = _setup(settings, sigma, 20, 40)

    def one(state, _):
        return dpvi.update(state, jnp.asarray(codes), jnp.asarray(outcome), 40)
    ref_state, ref_losses = jax.jit(lambda s: jax.lax.scan(one, s, None, length=STEPS))(state)
    fast = FusedState.from_reference(_stack([state]))
    losses, selected = run_fused(dpvi, settings, layout, fast, [codes], [outcome], STEPS)
    assert np.array_equal(np.asarray(fast.keys[0]), np.asarray(ref_state.rng_key))
    params = dpvi.optim.get_params(ref_state.optim_state)
    np.testing.assert_allclose(fast.loc[0], np.asarray(params["auto_loc"]), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fast.scale_u[0], np.asarray(params["auto_scale"]), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(losses[0], np.asarray(ref_losses), rtol=1e-5, atol=1e-3)
    assert int(fast.step[0]) == STEPS and selected.min() >= 0 and selected.max() > 0
    # The parameters moved far beyond the tolerance, so agreement is not trivial.
    start = dpvi.optim.get_params(state.optim_state)["auto_loc"]
    assert np.max(np.abs(np.asarray(params["auto_loc"]) - np.asarray(start))) > 1000 * TOLERANCE


def test_fused_fit_of_a_group_of_parties_equals_the_reference_fit():
    rng = np.random.default_rng(3)
    parties = [PartyData(name, *random_codes(rng, n)) for name, n in (("a", 120), ("b", 300))]
    settings = GeneratorSettings(epochs=3, sampling_rate=0.05, clip=1.0, learning_rate=0.01)
    reference = fit_parties(parties, settings, 2.0, 40, 7, "t", path="reference")
    fast = fit_parties(parties, settings, 2.0, 40, 7, "t")
    for ref, fit in zip(reference, fast):
        assert fit.layout == ref.layout
        np.testing.assert_allclose(fit.loc, ref.loc, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(fit.scale, ref.scale, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(fit.elbo, ref.elbo, rtol=1e-5)
