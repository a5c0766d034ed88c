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
    stream_decisions,
    stream_exhaustion_bound,
    stream_words,
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


def _read_lazily(words: np.ndarray, own: int, n: int, t: int) -> np.ndarray:
    """The definition, record by record: compare stream bits with t's, most significant first."""
    bits = [(int(w) >> b) & 1 for w in words[:own] for b in range(31, -1, -1)]
    t_bits = [(t >> (15 - k)) & 1 for k in range(16)]
    included, position = np.zeros(n, bool), 0
    for i in range(n):
        for k in range(16):
            if position + k >= len(bits):
                return included  # the stream ran out: this record and the rest are not included
            if bits[position + k] != t_bits[k]:
                included[i] = t_bits[k] == 1
                position += k + 1
                break
        else:
            position += 16  # u_i = t: not included
    return included


@pytest.mark.parametrize("t", [656, 1, 300, 32768, 65535])
def test_stream_decisions_are_the_lazy_bitwise_comparison(t):
    rng = np.random.default_rng(t)
    run = jax.jit(stream_decisions, static_argnums=(2, 3))
    for trial in range(25):
        n, size = int(rng.integers(1, 300)), int(rng.integers(1, 30))
        own = int(rng.integers(1, size + 1))
        words = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)
        if trial % 5 == 0:
            words[:] = 0
        np.testing.assert_array_equal(np.asarray(run(jnp.asarray(words), own, n, t)), _read_lazily(words, own, n, t))


def test_stream_length_bounds_exhaustion_and_small_parties_cannot_run_out():
    for n in (1, 2, 10, 25, 26):
        assert 32 * stream_words(n) >= 16 * n and stream_exhaustion_bound(n, stream_words(n)) == 0.0
    for n in (290, 3800, 47000):
        words = stream_words(n)
        assert 32 * words < 2.4 * n + 400  # 19/8 bits per record + 360 instead of 16 per record
        assert stream_exhaustion_bound(n + 1, words) <= 2.0**-128
        assert stream_exhaustion_bound(n, words // 2) > 1e-3  # the bound is not vacuous
    # A short stream of zeros: each record reads 7 bits (t = 656 = 0b0000001010010000, u < t
    # at the 7th), so 64 bits decide 9 records; the 10th runs out, and it and the rest are
    # not included.
    mask = np.asarray(stream_decisions(jnp.asarray(np.zeros(2, np.uint32)), 2, 100, 656))
    assert mask[:9].all() and not mask[9:].any()


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


def test_overflow_delta_is_the_truncation_probability_times_steps_and_one_plus_e_eps():
    value = overflow_delta(12, 300, 0.01, 1000, 1.0)
    stream = max(stream_exhaustion_bound(n, stream_words(n)) for n in (299, 300, 301))
    assert 0 < stream < 1e-30
    assert value == pytest.approx((1 + math.e) * 1000 * (stats.binom.sf(12, 301, 0.01) + stream), rel=1e-12)
    assert overflow_delta(21, 20, 0.01, 1000, 1.0) == 0.0  # no overflow, and a stream of 16 bits per record


@pytest.mark.parametrize("n,q,steps,eps", [(290, 0.01, 400_000, 1.0), (3800, 0.01, 400_000, 4.0), (30, 0.3, 100, 0.5)])
def test_batch_capacity_is_the_smallest_within_the_overflow_budget(n, q, steps, eps):
    budget = 1e-8
    q = effective_rate(q)
    capacity = batch_capacity(n, q, steps, eps, budget)
    assert overflow_delta(capacity, n, q, steps, eps) <= budget
    assert capacity == n + 1 or overflow_delta(capacity - 1, n, q, steps, eps) > budget
    assert capacity > q * n
