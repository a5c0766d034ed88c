"""Poisson subsampling into a fixed-size, masked batch.

DP-SGD's privacy amplification by subsampling (the accountants' "Poisson-sampled
Gaussian") assumes every record enters each step's batch independently with
probability q. XLA needs static shapes, so the selected records are packed into a
batch of fixed ``capacity`` B with a mask; rows beyond the selected count are padding.

- **Exact inclusion from few random bits.** Record i is included iff its uniform
  16-bit integer u_i is below the threshold t = ceil(q·2^16), so the inclusion
  probability is exactly ``effective_rate(q) = t/2^16`` (≥ q, at most 2^-16 above it);
  the accountants are run with this effective rate. u_i is *revealed lazily*, most
  significant bit first, from one stream of ChaCha20 bits per step (d3p's strong RNG):
  record 0 reads from the stream's start, and each record reads only until its bits
  differ from t's (then u_i < t or u_i > t is decided) or all 16 agree (u_i = t, not
  included). The next record continues where it stopped. Each bit read is uniform and
  independent of everything before it, so u_i is uniform and the records are
  independent: the same mechanism as comparing 16 fresh bits per record, with
  min(1 + Geometric(1/2), 16) bits per record, 2 on average, instead of 16. At
  q = 0.01 (t = 656 = 0b0000001010010000) a record is excluded as soon as one of its
  first six bits is 1, so the included records are found by searching the stream for
  runs of six zeros after a 1: O(N/64) word operations in the compiled kernel
  (:mod:`synthshare.generator.fused_kernel`), O(N log N) vectorised work in the JAX
  reference here.
- **Stream length.** A step's stream has :func:`stream_words` 32-bit words for N
  records, enough that running out has probability at most 2^-128 (a Chernoff bound,
  :func:`stream_exhaustion_bound`); if it runs out, the undecided records are not
  included (truncation). N/2 words (16 bits per record) can never run out, so small
  parties get that.
- **Independence of padding.** The stream and its length depend only on the key and
  the party's own N, so a party fitted alone or inside a group of parties (padded to
  the largest) draws the same batches.
- **Overflow.** If more than B records are selected, the first B in record order are
  kept. Truncation (of the batch or of the stream) can change the mechanism, so its
  probability is charged to δ: with p = P(Binomial(N + 1, q') > B) + the stream bound,
  a truncation in any of T steps has probability at most T·p on either of two
  neighbouring data sets, and the usual coupling argument gives
  (ε, δ + (1 + e^ε)·T·p)-DP. :func:`batch_capacity` picks the smallest B that keeps
  this extra term below a budget (config ``overflow_delta``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from chacha import random as chacha_random
from scipy import stats

from synthshare.errors import InputError

BERNOULLI_BITS = 16
"""Bits of each record's uniform u_i. 16 bits put the inclusion probability within
1.5e-5 of q (q = 0.01 -> 0.0100098); a record reads 2 of them on average."""

_WORD = 32
"""Bits per stream word, and mask bits per packed word in :func:`compact`."""

STREAM_RATE = (19, 8)
"""Stream bits per record of :func:`stream_words`, 19/8 = 2.375 (the mean is 2)."""
STREAM_SLACK = 360
"""Extra stream bits of :func:`stream_words`. With λ = 1/4, E[exp(λ·bits of one record)]
= exp(0.5837) < exp(λ·19/8) and λ·360 > 128·ln 2, so (N + 1) records exhaust
19/8·(N + 1) + 360 bits with probability below 2^-128 (Chernoff)."""
EXHAUSTION_LOG2 = -128
"""The stream length's design bound on running out, per step, as a power of 2."""


def effective_rate(q: float, bits: int = BERNOULLI_BITS) -> float:
    """The exact inclusion probability ``ceil(q·2^bits)/2^bits`` the sampler realises."""
    if not 0.0 < q <= 1.0:
        raise InputError(f"generator.sampling_rate: {q!r}; expected 0 < q <= 1")
    return math.ceil(q * 2**bits) / 2**bits


def _threshold(q: float, bits: int) -> int:
    return math.ceil(q * 2**bits)


def stream_words(num_records):
    """32-bit words of one step's bit stream for ``num_records`` records (a Python int or
    a JAX integer array): ceil((ceil(19·(N + 1)/8) + 360)/32), at most ceil(N/2) (16 bits
    per record, which cannot run out)."""
    bits = (STREAM_RATE[0] * (num_records + 1) + STREAM_RATE[1] - 1) // STREAM_RATE[1] + STREAM_SLACK
    chernoff = (bits + _WORD - 1) // _WORD
    cap = (num_records + 1) // 2
    if isinstance(num_records, (int, np.integer)):
        return int(min(chernoff, cap))
    return jnp.minimum(chernoff, cap)


def _bits_moment_log(lam: float) -> float:
    """log E[exp(λ·C)] for C = min(1 + Geometric(1/2), 16), the stream bits one record reads."""
    return math.log(sum(2.0**-k * math.exp(lam * k) for k in range(1, 16)) + 2.0**-15 * math.exp(16 * lam))


def stream_exhaustion_bound(num_records: int, words: int) -> float:
    """Upper bound on P(N records read more than 32·words stream bits) (Chernoff, best of
    a grid of λ); 0 when the stream holds 16 bits per record."""
    if _WORD * words >= BERNOULLI_BITS * num_records:
        return 0.0
    bits = _WORD * words
    log_bound = min(num_records * _bits_moment_log(lam) - lam * bits for lam in np.linspace(0.05, 2.0, 40))
    return 1.0 if log_bound >= 0.0 else math.exp(log_bound)


def overflow_delta(capacity: int, num_records: int, q: float, steps: int, epsilon: float) -> float:
    """δ charged for truncation, batch overflow and stream exhaustion:
    (1 + e^ε)·T·(P(Binomial(N + 1, q) > B) + max over N' ∈ {N − 1, N, N + 1} of the
    stream bound at N' records and :func:`stream_words` (N')).

    N + 1 covers the larger of two neighbouring data sets under add/remove; the batch
    tail is increasing in N, so it bounds both; the stream's length follows each data
    set's own N, hence the maximum over the neighbours.
    """
    tail = float(stats.binom.sf(capacity, num_records + 1, q))
    stream = max(stream_exhaustion_bound(n, stream_words(n)) for n in (num_records - 1, num_records, num_records + 1) if n >= 1)
    return (1.0 + math.exp(epsilon)) * steps * (tail + stream)


def batch_capacity(num_records: int, q: float, steps: int, epsilon: float, delta_budget: float) -> int:
    """Smallest padded batch size B whose overflow term is at most ``delta_budget``.

    ``q`` should be the effective rate. B never exceeds ``num_records + 1``, where
    overflow is impossible.
    """
    if num_records < 1:
        raise InputError(f"num_records: {num_records!r}; expected at least one record")
    if not delta_budget > 0:
        raise InputError(f"generator.overflow_delta: {delta_budget!r}; expected > 0")
    per_step = delta_budget / ((1.0 + math.exp(epsilon)) * steps)
    # isf gives the smallest B with P(X > B) <= per_step (up to float rounding, checked below).
    capacity = int(stats.binom.isf(per_step, num_records + 1, q))
    capacity = max(1, min(capacity, num_records + 1))
    while capacity > 1 and overflow_delta(capacity - 1, num_records, q, steps, epsilon) <= delta_budget:
        capacity -= 1
    while capacity <= num_records and overflow_delta(capacity, num_records, q, steps, epsilon) > delta_budget:
        capacity += 1
    return capacity


def threshold(q: float) -> int:
    """t = ceil(q·2^16): record i is included iff its 16-bit uniform u_i < t."""
    return _threshold(q, BERNOULLI_BITS)


def stream_decisions(words: jax.Array, own_words: jax.Array | int, size: int, t: int) -> jax.Array:
    """(size,) bool: the inclusion of records 0..size−1 read from one bit stream.

    ``words`` (W,) uint32 is the stream (bit j is bit 31 − j % 32 of word j // 32, most
    significant first); only its first ``own_words`` words are used. The JAX reference
    of the lazy reading (module docstring), vectorised:

    1. for every bit position p, the decision of a record starting at p: the first
       index k < 16 where the stream's bit p + k differs from t's bit k (t's bits most
       significant first), included iff t's bit is 1 there, and p + min(k + 1, 16) the
       next record's start; a decision needing bits past the stream is truncated, and
       so is every later record (an absorbing end state);
    2. record i's start s_i = next^i(0) for all i, by pointer doubling (log2(size)
       rounds of gathers).

    The compiled kernel's sampler reads the same bits one record after another and
    decides the same; the tests compare them.
    """
    positions = words.shape[0] * _WORD
    end = positions
    limit = jnp.asarray(own_words, jnp.int32) * _WORD
    padded = jnp.concatenate([words.astype(jnp.uint32), jnp.zeros((1,), jnp.uint32)])
    p = jnp.arange(positions, dtype=jnp.int32)
    word, offset = p // _WORD, (p % _WORD).astype(jnp.uint32)
    first, second = padded[word], padded[word + 1]
    shifted = jnp.where(offset == 0, first,
                        (first << offset) | (second >> (jnp.uint32(_WORD) - jnp.maximum(offset, 1))))
    window = shifted >> jnp.uint32(_WORD - BERNOULLI_BITS)  # the 16 bits from p on
    differ = window ^ jnp.uint32(t)
    k = jax.lax.clz(differ).astype(jnp.int32) - (_WORD - BERNOULLI_BITS)  # 16 when all agree
    t_bit = (jnp.uint32(t) >> jnp.uint32(BERNOULLI_BITS - 1 - jnp.minimum(k, BERNOULLI_BITS - 1))) & 1
    included = (k < BERNOULLI_BITS) & (t_bit == 1)
    after = p + jnp.minimum(k + 1, BERNOULLI_BITS)
    decided = after <= limit
    table = jnp.concatenate([jnp.where(decided, after, end), jnp.asarray([end], jnp.int32)])
    inclusion = jnp.concatenate([included & decided, jnp.asarray([False])])
    record = jnp.arange(size, dtype=jnp.int32)
    start = jnp.zeros((size,), jnp.int32)
    for level in range(max(1, int(size).bit_length())):
        start = jnp.where((record >> level) & 1 == 1, table[start], start)
        table = table[table]
    return inclusion[start]


def inclusion_mask(key: chacha_random.RNGState, size: int, num_records: jax.Array | int, q: float) -> jax.Array:
    """(size,) bool: record i < num_records is included with probability ``effective_rate(q)``.

    The step's stream is :func:`stream_words` (size) words of ``key``'s ChaCha bits, of
    which the first :func:`stream_words` (num_records) are read (ChaCha is a counter-mode
    stream, so the shorter stream is a prefix of the longer one).
    """
    t = threshold(q)
    inside = jnp.arange(size) < num_records
    if t >= 2**BERNOULLI_BITS:  # q = 1: every record, no bits needed
        return inside
    words = chacha_random.random_bits(key, _WORD, (stream_words(size),))
    return stream_decisions(words, stream_words(jnp.asarray(num_records, jnp.int32)), size, t) & inside


def compact(mask: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array]:
    """Positions of the first ``capacity`` True entries of ``mask``, in order.

    Returns ``index`` (capacity,) int32 (0 where there is no entry) and ``valid``
    (capacity,) bool. The mask is packed into 32-bit words; each output slot finds its
    word from the running popcounts and its bit by a 5-step binary search on
    popcounts of the word's low bits. O(n + capacity·n/32) cheap integer work, an
    order of magnitude faster than ``jnp.nonzero`` on a CPU.
    """
    size = mask.shape[0]
    words_count = -(-size // _WORD)
    bits = jnp.pad(mask, (0, words_count * _WORD - size)).reshape(words_count, _WORD).astype(jnp.uint32)
    words = jnp.sum(bits << jnp.arange(_WORD, dtype=jnp.uint32), axis=1, dtype=jnp.uint32)
    through = jnp.cumsum(jax.lax.population_count(words).astype(jnp.int32))  # selected up to each word
    slot = jnp.arange(capacity, dtype=jnp.int32)
    valid = slot < through[-1]
    # Slot k lives in the first word whose running count exceeds k.
    word = jnp.minimum(jnp.sum(through[None, :] <= slot[:, None], axis=1), words_count - 1)
    rank = (slot - jnp.where(word > 0, through[word - 1], 0)).astype(jnp.uint32)
    value = words[word]
    # Largest p with popcount(value & (2^p − 1)) <= rank: the bit of the (rank+1)-th one.
    position = jnp.zeros((capacity,), jnp.uint32)
    for step in (16, 8, 4, 2, 1):
        candidate = position + step
        low = jnp.where(candidate >= _WORD, jnp.uint32(0xFFFFFFFF), (jnp.uint32(1) << candidate) - 1)
        position = jnp.where(jax.lax.population_count(value & low) <= rank, candidate, position)
    index = jnp.where(valid, word * _WORD + position.astype(jnp.int32), 0)
    return index.astype(jnp.int32), valid


def poisson_batch(
    key: chacha_random.RNGState, size: int, num_records: jax.Array | int, q: float, capacity: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One Poisson-subsampled batch of the first ``num_records`` of ``size`` rows.

    Returns ``index`` (capacity,) row positions, ``valid`` (capacity,) mask and the
    number of records selected before truncation (for overflow diagnostics).
    """
    mask = inclusion_mask(key, size, num_records, q)
    index, valid = compact(mask, capacity)
    return index, valid, jnp.sum(mask)


def expected_batch(num_records: int, q: float) -> float:
    """q·N, the mean batch size."""
    return float(np.float64(q) * num_records)
