"""The generative model: encoding, likelihood, and the closed-form per-record gradients
checked against autodiff through numpyro's transforms."""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
import pytest
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import constrain_fn, potential_energy

from synthshare.errors import InputError
from synthshare.generator.encoding import (
    COEFFICIENT_COUNT,
    LEVEL_COUNTS,
    coefficient_names,
    decode_records,
    design_matrix,
    encode_records,
)
from synthshare.generator.gradients import (
    clipped_gradient_sum,
    log_categorical,
    prior_log_density,
    prior_log_density_and_gradient,
    record_gradients,
)
from synthshare.generator.model import (
    FeatureMixture,
    ModelSettings,
    generative_model,
    log_rate,
    make_guide,
    record_log_likelihood,
)
from synthshare.variables import FEATURE_LEVELS, FEATURES
from tests.generator_helpers import random_codes, random_frame


@pytest.fixture(scope="module")
def setup():
    """A guide with its layout, a random latent draw and the reference per-record gradients."""
    settings = ModelSettings(components=4)
    model = partial(generative_model, settings=settings)
    guide = make_guide(model)
    numpyro.handlers.seed(guide, rng_seed=0)(jnp.zeros((1, 5), jnp.int32), jnp.zeros((1,)), num_records=1)
    rng = np.random.default_rng(3)
    latent = jnp.asarray(rng.normal(size=guide.latent_dim), jnp.float32)
    codes, outcome = random_codes(rng, 12)
    outcome[:3] = 2.0  # counts > 1 too: the Poisson term must hold for any count

    def one(z, c, y):
        sample = constrain_fn(model, (None, None), {}, guide._unpack_latent(z))
        return record_log_likelihood(sample, c[None], y[None])[0]

    ll, grads = jax.vmap(jax.value_and_grad(one), in_axes=(None, 0, 0))(latent, jnp.asarray(codes), jnp.asarray(outcome))
    return guide, latent, jnp.asarray(codes), jnp.asarray(outcome), np.asarray(ll), np.asarray(grads)


def test_encode_decode_round_trip_and_reference_levels():
    frame = random_frame(np.random.default_rng(0), 50)
    codes, outcome = encode_records(frame, "x.parquet")
    assert codes.dtype == np.int32 and codes.shape == (50, 5) and outcome.dtype == np.float32
    decoded = decode_records(codes)
    for feature in FEATURES:
        assert list(decoded[feature]) == list(frame[feature])
    first = frame.iloc[[0]].copy()
    for feature, levels in FEATURE_LEVELS.items():
        first[feature] = levels[0]
    assert (encode_records(first, "x")[0] == 0).all()


def test_encode_rejects_unknown_level_naming_file_row_column_value():
    frame = random_frame(np.random.default_rng(0), 5)
    frame.loc[3, "education"] = "PhD"
    with pytest.raises(InputError, match=r"local\.parquet: row 4, column 'education': unknown value 'PhD'"):
        encode_records(frame, "local.parquet")
    with pytest.raises(InputError, match="missing column 'sex'"):
        encode_records(frame.drop(columns="sex"), "local.parquet")
    frame = random_frame(np.random.default_rng(0), 5)
    frame["covid_test_result"] = frame["covid_test_result"].astype(int)
    with pytest.raises(InputError, match="expected bool"):
        encode_records(frame, "local.parquet")


def test_design_matrix_is_reference_coding_in_coefficient_order():
    names = coefficient_names()
    assert len(names) == COEFFICIENT_COUNT == 22 and names[0] == "Intercept"
    codes = jnp.asarray([[0, 0, 0, 0, 0], [6, 1, 4, 3, 4]], jnp.int32)
    design = np.asarray(design_matrix(codes))
    assert design[0].tolist() == [1.0] + [0.0] * 21
    active = [names[i] for i in np.flatnonzero(design[1])]
    assert active == ["Intercept", "age_group[[70, 200)]", "sex[Male]", "ethnicity[South Asian]", "deprivation[4th]",
                      "education[None of the above]"]
    coef = jnp.arange(22, dtype=jnp.float32) / 10
    np.testing.assert_allclose(np.asarray(log_rate(coef, codes)), design @ np.asarray(coef), rtol=1e-6)


def test_feature_mixture_is_a_distribution_over_all_cells():
    rng = np.random.default_rng(1)
    k = 3
    weights = jnp.asarray(rng.dirichlet(np.ones(k)), jnp.float32)
    probs = tuple(jnp.asarray(rng.dirichlet(np.ones(c), size=k), jnp.float32) for c in LEVEL_COUNTS)
    cells = jnp.asarray(list(itertools.product(*[range(c) for c in LEVEL_COUNTS])), jnp.int32)
    total = float(jnp.sum(jnp.exp(FeatureMixture(weights, probs).log_prob(cells))))
    assert total == pytest.approx(1.0, abs=1e-5)
    # Its sampler draws from the same distribution: the age marginal of 20k draws.
    draws = np.asarray(FeatureMixture(weights, probs).sample(jax.random.PRNGKey(0), (20000,)))
    expected = np.asarray(weights @ probs[0])
    observed = np.bincount(draws[:, 0], minlength=7) / 20000
    np.testing.assert_allclose(observed, expected, atol=0.015)


def test_closed_form_per_record_gradients_match_autodiff(setup):
    guide, latent, codes, outcome, ll_ref, grads_ref = setup
    unpacked = guide._unpack_latent(latent)
    ll, site_grads = record_gradients(unpacked, codes, outcome)
    flat = np.concatenate([np.asarray(site_grads[name]).reshape(len(codes), -1) for name in unpacked], axis=1)
    np.testing.assert_allclose(np.asarray(ll), ll_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flat, grads_ref, rtol=1e-4, atol=1e-5)
    assert np.abs(grads_ref).max() > 0.1  # the comparison is not between zeros


@pytest.mark.parametrize("clip", [0.5, 2.0, 1e6])
def test_clipped_sum_without_per_record_gradients_matches_clipping_them(setup, clip):
    guide, latent, codes, outcome, ll_ref, grads_ref = setup
    valid = jnp.asarray(np.arange(len(codes)) % 4 != 1)
    unpacked = guide._unpack_latent(latent)
    ll, norms, sums = clipped_gradient_sum(unpacked, codes, outcome, valid, clip)
    flat_sum = np.concatenate([np.asarray(sums[name]).reshape(-1) for name in unpacked])
    ref_norms = np.linalg.norm(grads_ref, axis=1)
    factor = np.where(np.asarray(valid), np.minimum(1.0, clip / ref_norms), 0.0)
    np.testing.assert_allclose(np.asarray(norms), ref_norms, rtol=1e-4)
    np.testing.assert_allclose(flat_sum, (factor[:, None] * grads_ref).sum(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ll), np.where(np.asarray(valid), ll_ref, 0.0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("settings", [ModelSettings(components=4), ModelSettings(components=4, dirichlet_concentration=2.5,
                                                                                 coef_prior_scale=0.7)])
def test_closed_form_prior_density_is_numpyros_potential_energy(settings):
    model = partial(generative_model, settings=settings)
    guide = make_guide(model)
    numpyro.handlers.seed(guide, rng_seed=0)(jnp.zeros((1, 5), jnp.int32), jnp.zeros((1,)), num_records=1)
    latent = jnp.asarray(np.random.default_rng(4).normal(size=guide.latent_dim) * 1.5, jnp.float32)

    def numpyro_value(z):
        return -potential_energy(model, (None, None), {}, guide._unpack_latent(z))

    def closed_form(z):
        return prior_log_density(guide._unpack_latent(z), settings)

    assert float(closed_form(latent)) == pytest.approx(float(numpyro_value(latent)), rel=1e-5)
    reference = np.asarray(jax.grad(numpyro_value)(latent))
    np.testing.assert_allclose(np.asarray(jax.grad(closed_form)(latent)), reference, rtol=1e-4, atol=1e-5)
    unpacked = guide._unpack_latent(latent)
    value, site_grads = prior_log_density_and_gradient(unpacked, settings)
    flat = np.concatenate([np.asarray(site_grads[name]).reshape(-1) for name in unpacked])
    assert float(value) == pytest.approx(float(numpyro_value(latent)), rel=1e-5)
    np.testing.assert_allclose(flat, reference, rtol=1e-4, atol=1e-5)


def test_log_categorical_matches_numpyros_transforms():
    u = jnp.asarray(np.random.default_rng(2).normal(size=(3, 6)) * 2, jnp.float32)
    table, jacobian, log_det = log_categorical(u)
    to_simplex = biject_to(constraints.simplex)
    np.testing.assert_allclose(np.exp(np.asarray(table)), np.asarray(to_simplex(u)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(jacobian), np.asarray(jax.vmap(jax.jacfwd(lambda r: jnp.log(to_simplex(r))))(u)),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(log_det), np.asarray(to_simplex.log_abs_det_jacobian(u, to_simplex(u))),
                               rtol=1e-5)
    table, jacobian, _ = log_categorical(u[:, 0], binary=True)
    p = 1.0 / (1.0 + np.exp(-np.asarray(u[:, 0])))
    np.testing.assert_allclose(np.exp(np.asarray(table)), np.stack([1 - p, p], axis=-1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jacobian)[..., 0], np.stack([-p, 1 - p], axis=-1), rtol=1e-5)


def test_model_settings_reject_bad_values():
    with pytest.raises(InputError, match="generator.components"):
        ModelSettings(components=0)
    with pytest.raises(InputError, match="generator.coef_prior_scale"):
        ModelSettings(coef_prior_scale=-1.0)
