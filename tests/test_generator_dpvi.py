"""DPVI mechanics: clipping, masking, the noise scale, and the aligned gradient itself.

The DPVI objects use plain SGD with step 1, so a parameter change is minus the
gradient, and small models (4 components) for speed.
"""

from __future__ import annotations

import d3p.random as strong_rng
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import potential_energy
from numpyro.distributions.transforms import biject_to
from numpyro.distributions import constraints

from synthshare.generator.subsampling import effective_rate
from tests.generator_helpers import random_codes, small_dpvi

CLIP = 2.0


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(tree)])


def test_every_clipped_per_example_location_gradient_has_norm_at_most_c():
    dpvi, state, codes, outcome = small_dpvi("aligned", sigma=1.0, clip=CLIP, num_records=64)
    params = dpvi.optim.get_params(state.optim_state)
    rng = np.random.default_rng(7)
    per_example = jax.jit(dpvi.per_example_gradients)
    clip = jax.jit(lambda grads: dpvi._clip_gradients(state, {"auto_loc": grads})[1])
    clipped_sum = jax.jit(lambda z, valid: dpvi.clipped_sum(state, z, jnp.asarray(codes), jnp.asarray(outcome), valid))
    for trial in range(3):
        latent = params["auto_loc"] + jnp.asarray(rng.normal(size=params["auto_loc"].shape) * (1 + trial), jnp.float32)
        _, px_grads = per_example(latent, jnp.asarray(codes), jnp.asarray(outcome))
        clipped = clip(px_grads)
        norms = np.linalg.norm(np.asarray(clipped["auto_loc"]), axis=1)
        raw = np.linalg.norm(np.asarray(px_grads), axis=1)
        assert (norms <= CLIP * (1 + 1e-5)).all()
        assert (raw > CLIP).any(), "the data must exercise clipping"
        # The closed form used in training applies the same factors: its sum equals
        # the sum of these clipped gradients, and its norms are the raw norms.
        ll_sum, fast_norms, fast_sum = clipped_sum(latent, jnp.ones(len(codes), bool))
        np.testing.assert_allclose(np.asarray(fast_norms), raw, rtol=1e-4)
        np.testing.assert_allclose(np.asarray(fast_sum), np.asarray(clipped["auto_loc"]).sum(0), rtol=1e-4, atol=1e-4)


def test_stock_variant_clips_the_whole_per_example_gradient():
    dpvi, state, codes, outcome = small_dpvi("stock", sigma=1.0, clip=CLIP, num_records=32)
    @jax.jit
    def clipped_per_example(key):
        _, _, px_grads, _ = dpvi._compute_per_example_gradients(
            state, key, jnp.asarray(codes), jnp.asarray(outcome), num_records=32)
        return dpvi._clip_gradients(state, px_grads)[1]

    clipped = clipped_per_example(strong_rng.PRNGKey(3))
    norms = np.sqrt(sum(np.sum(np.asarray(g).reshape(32, -1) ** 2, axis=1) for g in jax.tree_util.tree_leaves(clipped)))
    assert (norms <= CLIP * (1 + 1e-5)).all() and norms.max() > CLIP * 0.9


@pytest.mark.parametrize("variant", ["aligned", "stock"])
def test_masked_rows_change_nothing(variant):
    """σ = 0: padding rows, whatever they hold, leave loss and gradient unchanged."""
    dpvi, state, codes, outcome = small_dpvi(variant, sigma=0.0, num_records=40)
    gradient_key, noise_key = strong_rng.split(strong_rng.PRNGKey(5), 2)
    valid = np.arange(16) < 9
    rng = np.random.default_rng(11)
    gradients = jax.jit(dpvi.batch_gradients)
    results = []
    for garbage in range(3):
        batch_codes, batch_outcome = codes[:16].copy(), outcome[:16].copy()
        fill_codes, fill_outcome = random_codes(rng, 7)
        batch_codes[9:], batch_outcome[9:] = fill_codes, fill_outcome * (garbage + 1) * 7
        _, loss, grads = gradients(state, gradient_key, noise_key, jnp.asarray(batch_codes),
                                   jnp.asarray(batch_outcome), jnp.asarray(valid), 40)
        results.append((float(loss), _flat(grads)))
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(grads, results[0][1])
    if variant == "aligned":
        # With one shared guide draw the batch capacity does not matter either.
        _, loss, grads = gradients(state, gradient_key, noise_key, jnp.asarray(codes[:9]),
                                   jnp.asarray(outcome[:9]), jnp.ones(9, bool), 40)
        assert float(loss) == pytest.approx(results[0][0], rel=1e-6)
        np.testing.assert_allclose(_flat(grads), results[0][1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["aligned", "stock"])
def test_noise_standard_deviation_is_sigma_c_over_q_n(variant):
    """Gradient with σ minus gradient with σ = 0 (same keys, same batch) is the noise.

    On the mean-gradient scale (divided by N) its standard deviation must be
    σ·C/(q·N). 40 keys × all coordinates ≈ 15k (aligned) / 30k (stock) draws: the
    sample SD has relative standard error < 0.6 %; the tolerance is 3 %.
    """
    sigma, q, n = 1.7, 0.05, 40
    noisy, state, codes, outcome = small_dpvi(variant, sigma=sigma, q=q, num_records=n)
    exact, _, _, _ = small_dpvi(variant, sigma=0.0, q=q, num_records=n)
    batch = (jnp.asarray(codes[:16]), jnp.asarray(outcome[:16]), jnp.asarray(np.arange(16) < 5))

    @jax.jit
    def both(key):
        gradient_key, noise_key = strong_rng.split(key, 2)
        return (noisy.batch_gradients(state, gradient_key, noise_key, *batch, n)[2],
                exact.batch_gradients(state, gradient_key, noise_key, *batch, n)[2])

    differences = []
    for k in range(40):
        with_noise, without = both(strong_rng.PRNGKey(100 + k))
        if variant == "aligned":
            # Only the location gradient carries the noise directly (scale's is rebuilt from it).
            differences.append(np.asarray(with_noise["auto_loc"] - without["auto_loc"]) / n)
        else:
            differences.append((_flat(with_noise) - _flat(without)) / n)
    noise = np.concatenate(differences)
    expected = sigma * CLIP / (effective_rate(q) * n)
    assert noise.std() == pytest.approx(expected, rel=0.03)
    assert abs(noise.mean()) < 4 * expected / np.sqrt(noise.size)


def test_aligned_gradient_is_the_exact_elbo_gradient_without_noise_clipping_or_subsampling():
    """σ = 0, C = ∞ in effect, all records: the aligned gradient (scale part rebuilt from
    the location part) equals autodiff of the single-draw negative ELBO computed with
    numpyro's own potential energy (prior, likelihood and log-Jacobian)."""
    n = 24
    dpvi, state, codes, outcome = small_dpvi("aligned", sigma=0.0, clip=1e9, q=1.0, capacity=n, num_records=n)
    params = dpvi.optim.get_params(state.optim_state)
    params = {"auto_loc": params["auto_loc"] + 0.3, "auto_scale": params["auto_scale"] - 0.5}
    eta = jax.random.normal(jax.random.PRNGKey(2), params["auto_loc"].shape)
    to_scale = biject_to(constraints.softplus_positive)

    def negative_elbo(p):
        loc, scale = p["auto_loc"], to_scale(p["auto_scale"])
        latent = loc + scale * eta
        energy = potential_energy(dpvi.model, (jnp.asarray(codes), jnp.asarray(outcome)), {"num_records": n},
                                  dpvi.guide._unpack_latent(latent))
        log_q = jnp.sum(jax.scipy.stats.norm.logpdf(latent, loc, scale))
        return energy + log_q

    reference_loss, reference = jax.jit(jax.value_and_grad(negative_elbo))(params)
    _, loss, grads = jax.jit(dpvi.aligned_gradients)(state, strong_rng.PRNGKey(0), params, eta, jnp.asarray(codes),
                                                     jnp.asarray(outcome), jnp.ones(n, bool), n)
    assert float(loss) == pytest.approx(float(reference_loss), rel=1e-5)
    for name in ("auto_loc", "auto_scale"):
        np.testing.assert_allclose(np.asarray(grads[name]), np.asarray(reference[name]), rtol=2e-4, atol=2e-4)
    assert np.abs(np.asarray(reference["auto_scale"])).max() > 0.1


def test_update_draws_poisson_batches_and_moves_parameters():
    dpvi, state, codes, outcome = small_dpvi("aligned", sigma=1.0, num_records=40)
    new_state, loss = jax.jit(dpvi.update)(state, jnp.asarray(codes), jnp.asarray(outcome), jnp.int32(40))
    assert np.isfinite(float(loss))
    before, after = _flat(dpvi.optim.get_params(state.optim_state)), _flat(dpvi.optim.get_params(new_state.optim_state))
    assert np.all(np.isfinite(after)) and not np.array_equal(before, after)
    assert not np.array_equal(np.asarray(state.rng_key), np.asarray(new_state.rng_key))
