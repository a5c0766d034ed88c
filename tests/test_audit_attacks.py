"""Attack scores on small inputs with known answers."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from synthshare.audit.attacks import (
    CELLS, cell_count, cell_index, cell_log_density, density_ratio, log_probability, read_guide,
)
from synthshare.errors import InputError
from synthshare.generator.model import record_log_likelihood
from tests.generator_helpers import random_codes


def _records(rng, n):
    codes, outcome = random_codes(rng, n)
    return np.concatenate([codes, outcome.astype(np.int32)[:, None]], axis=1)


def test_cell_index_is_a_bijection_onto_4480_cells():
    grid = np.stack(np.unravel_index(np.arange(CELLS), (7, 2, 8, 4, 5, 2)), axis=1)
    np.testing.assert_array_equal(cell_index(grid), np.arange(CELLS))
    with pytest.raises(InputError):
        cell_index(np.array([7, 0, 0, 0, 0, 0]))


def test_cell_count_counts_the_targets_cell_per_set():
    target = np.array([1, 0, 2, 3, 4, 1])
    synthetic = np.zeros((30, 6), np.int64)
    synthetic[[4, 9, 17]] = target
    synthetic[5] = target
    synthetic[5, 5] = 0  # other outcome: another cell
    assert cell_count(target, synthetic, sets=3) == pytest.approx(1.0)


def test_density_ratio_is_the_log_ratio_of_smoothed_cell_frequencies():
    target = np.array([0, 1, 0, 0, 0, 0])
    synthetic = np.zeros((10, 6), np.int64)
    synthetic[:4] = target  # 4 of 10
    reference = np.ones((20, 6), np.int64)
    reference[:1] = target  # 1 of 20
    expected = math.log((4 + 0.5) / (10 + 0.5 * CELLS)) - math.log((1 + 0.5) / (20 + 0.5 * CELLS))
    assert density_ratio(target, synthetic, reference) == pytest.approx(expected, rel=1e-12)
    log_density = cell_log_density(synthetic)
    assert np.exp(log_density).sum() == pytest.approx(1.0)


K = 3
LAYOUT = [["weights", [K - 1]], ["probs_age_group", [K, 6]], ["probs_sex", [K]], ["probs_ethnicity", [K, 7]],
          ["probs_deprivation", [K, 3]], ["probs_education", [K, 4]], ["coef", [22]]]
"""The guide's latent layout at K components (unconstrained shapes, as params.npz stores it)."""


def _fitted_guide(tmp_path, seed=0):
    """A params.npz with random guide parameters (running numpyro's guide to get the layout costs ~20 s)."""
    size = sum(int(np.prod(s)) for _, s in LAYOUT)
    rng = np.random.default_rng(seed)
    loc, scale = rng.normal(size=size), np.exp(rng.normal(-1.0, 0.3, size))
    path = tmp_path / "params.npz"
    np.savez(path, loc=loc, scale=scale, layout=np.array(json.dumps(LAYOUT)), num_records=np.array(4))
    return path


def _model_log_likelihood(flat, records):
    """numpyro's own transforms and the model's record_log_likelihood at one unconstrained draw (float32)."""
    @jax.jit  # one program rather than numpyro's op-by-op dispatch
    def reference(flat, codes, outcome):
        sample, start = {}, 0
        for name, shape in LAYOUT:
            size = int(np.prod(shape))
            value = flat[start:start + size].reshape(shape)
            start += size
            constraint = constraints.real if name == "coef" else (
                constraints.unit_interval if name == "probs_sex" else constraints.simplex)
            sample[name] = biject_to(constraint)(value)
        return record_log_likelihood(sample, codes, outcome)

    return np.asarray(reference(jnp.asarray(flat, jnp.float32), jnp.asarray(records[:, :5]),
                                jnp.asarray(records[:, 5], jnp.float32)))


def test_white_box_log_probability_at_the_mean_is_the_models_log_likelihood(tmp_path):
    loc, scale, layout = read_guide(_fitted_guide(tmp_path))
    records = _records(np.random.default_rng(3), 12)
    ours = log_probability(records, loc, scale, layout, draws=0)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, _model_log_likelihood(loc, records), rtol=2e-5, atol=2e-4)


def test_white_box_log_mean_exp_over_draws_without_underflow(tmp_path):
    loc, scale, layout = read_guide(_fitted_guide(tmp_path))
    coef = slice(loc.size - 22, loc.size)
    loc = loc.copy()
    loc[coef] = 0.0
    loc[loc.size - 22] = 8.0  # intercept 8: rate e^8 ≈ 2981, so y = 0 has log p ≈ −2981 per draw
    scale = scale.copy()
    scale[coef] = 0.05
    records = _records(np.random.default_rng(4), 5)
    records[:, 5] = 0
    value = log_probability(records, loc, scale, layout, draws=64, seed=9)
    assert np.all(np.isfinite(value)) and np.all(value < -800)  # exp(value) is 0 even in float64
    # Independently: each draw at scale 0 (draws=0 on the drawn point), then log-mean-exp by numpy.
    noise = np.random.default_rng(9).standard_normal((64, loc.size))
    per_draw = np.stack([log_probability(records, loc + scale * z, scale, layout, draws=0) for z in noise])
    expected = np.logaddexp.reduce(per_draw, axis=0) - math.log(64)
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_read_guide_checks_sizes(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, loc=np.zeros(3), scale=np.ones(3), layout=np.array(json.dumps([["coef", [4]]])), num_records=np.array(1))
    with pytest.raises(InputError, match="layout of 4 values"):
        read_guide(path)
