"""Poisson subsampling: inclusion rate, independence of padding, compaction, capacity and overflow δ."""

from __future__ import annotations

import math

import d3p.random as strong_rng
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from synthshare.errors import InputError
from synthshare.generator.subsampling import (
    batch_capacity,
    compact,
    effective_rate,
    inclusion_mask,
    overflow_delta,
    poisson_batch,
)


def test_effective_rate_is_the_smallest_16_bit_grid_point_not_below_q():
    assert effective_rate(0.01) == 656 / 65536
    assert effective_rate(0.5) == 0.5 and effective_rate(1.0) == 1.0
    for q in (0.001, 0.01, 0.0137, 0.2):
        assert q <= effective_rate(q) < q + 2**-16
    with pytest.raises(InputError, match="sampling_rate"):
        effective_rate(0.0)


def test_inclusion_rate_matches_the_effective_rate():
    """2,000 steps × 500 records: the count is Binomial(10⁶, q'); allow 5 standard errors."""
    q = 0.01
    masks = jax.jit(jax.vmap(lambda key: inclusion_mask(key, 500, 500, q)))(strong_rng.split(strong_rng.PRNGKey(1), 2000))
    count = int(np.asarray(masks).sum())
    trials = 2000 * 500
    p = effective_rate(q)
    assert abs(count - trials * p) < 5 * math.sqrt(trials * p * (1 - p))
    # Records are included independently: no position is favoured (chi-square over positions).
    per_record = np.asarray(masks).sum(axis=0)
    assert stats.chisquare(per_record).pvalue > 1e-4


def test_inclusion_bits_do_not_depend_on_padding_and_padding_is_never_selected():
    key = strong_rng.PRNGKey(9)
    small = np.asarray(inclusion_mask(key, 300, 300, 0.2))
    padded = np.asarray(inclusion_mask(key, 1000, 300, 0.2))
    np.testing.assert_array_equal(padded[:300], small)
    assert not padded[300:].any()


@pytest.mark.parametrize("size,capacity,rate", [(1000, 40, 0.02), (97, 10, 0.3), (64, 64, 1.0), (33, 5, 0.0)])
def test_compact_returns_the_first_selected_positions_in_order(size, capacity, rate):
    rng = np.random.default_rng(size)
    run = jax.jit(compact, static_argnums=1)
    for _ in range(30):
        mask = rng.random(size) < rate
        index, valid = (np.asarray(a) for a in run(jnp.asarray(mask), capacity))
        expected = np.flatnonzero(mask)[:capacity]  # overflow keeps the first `capacity`
        assert valid.sum() == len(expected)
        np.testing.assert_array_equal(index[valid], expected)
        assert (index[~valid] == 0).all()


def test_poisson_batch_truncates_on_overflow():
    index, valid, selected = poisson_batch(strong_rng.PRNGKey(0), 200, 200, 0.5, 10)
    assert int(selected) > 10 and np.asarray(valid).all()
    assert np.all(np.diff(np.asarray(index)) > 0)


def test_overflow_delta_is_the_binomial_tail_times_steps_and_one_plus_e_eps():
    value = overflow_delta(12, 300, 0.01, 1000, 1.0)
    assert value == pytest.approx((1 + math.e) * 1000 * stats.binom.sf(12, 301, 0.01), rel=1e-12)
    assert overflow_delta(301, 300, 0.01, 1000, 1.0) == 0.0


@pytest.mark.parametrize("n,q,steps,eps", [(290, 0.01, 400_000, 1.0), (3800, 0.01, 400_000, 4.0), (30, 0.3, 100, 0.5)])
def test_batch_capacity_is_the_smallest_within_the_overflow_budget(n, q, steps, eps):
    budget = 1e-8
    q = effective_rate(q)
    capacity = batch_capacity(n, q, steps, eps, budget)
    assert overflow_delta(capacity, n, q, steps, eps) <= budget
    assert capacity == n + 1 or overflow_delta(capacity - 1, n, q, steps, eps) > budget
    assert capacity > q * n
