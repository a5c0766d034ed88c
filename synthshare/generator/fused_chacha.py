"""ChaCha20 words and keys in numba, equal to jax-chacha-prng's (``d3p.random``'s suite),
and the threefry words under η, equal to ``jax.random``'s.

The fused path (:mod:`synthshare.generator.fused`) needs, per step, the batch key's
stream words and the 32-bit words under the noise ξ, ~700 words of ChaCha output at
N = 3,800, and the step's keys (``chacha.random.split`` of the state key). Through
jax-chacha-prng (XLA around a native block function, one block of 16 words per counter
value) the words cost ~8 µs per step (measured at N = 3,800: 3.4 µs for the 294 stream
words, 4.3 µs for the 373 under ξ) and the keys ~0.9 µs, a third of a fused step. Here
all blocks of a key (:func:`random_words`), or the first blocks of many keys, are
computed side by side, one block per loop iteration, which LLVM vectorises: 0.7 µs for
373 words, 0.4 µs for the keys. ChaCha20 is integer arithmetic modulo 2^32, so the
words are the same bits (the tests compare with jax-chacha-prng, counter wrap included).
Likewise η's 373 threefry words (:func:`threefry_words`), 0.7 µs here against 1.3 µs
for ``jax.random.normal`` whole (bits and erf⁻¹) through XLA; the fused step at
N = 3,800 is 0.6 µs faster with them (same process, interleaved).

What ``random_bits`` computes, for a key state S (16 uint32 words, the (4, 4)
``RNGState`` row by row: 4 constants, 8 key words, the block counter at word 12, 3
nonce words): block c is ChaCha20's block function (10 double rounds, then the input
added word by word) of S with word 12 increased by c (mod 2^32), and the words are
blocks 0, 1, ... concatenated, cut to ``count``.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
_MASK = np.uint64(0xFFFFFFFF)
"""The words are held in uint64 and reduced modulo 2^32 after each addition: numba
promotes uint32 arithmetic to 64 bits anyway (casting every result back to uint32
measured no faster: 0.77 vs 0.72 µs for 373 words)."""


@numba.njit(**_JIT)
def _rotl(x, n):
    """32-bit rotation of ``x`` (< 2^32, held in a uint64) left by ``n``."""
    return ((x << np.uint64(n)) | (x >> np.uint64(32 - n))) & _MASK


_INLINE = dict(_JIT, inline="always")


@numba.njit(**_INLINE)
def _quarter(a, b, c, d):
    """ChaCha's quarter round on four words (each < 2^32, held in uint64)."""
    a = (a + b) & _MASK
    d = _rotl(d ^ a, 16)
    c = (c + d) & _MASK
    b = _rotl(b ^ c, 12)
    a = (a + b) & _MASK
    d = _rotl(d ^ a, 8)
    c = (c + d) & _MASK
    b = _rotl(b ^ c, 7)
    return a, b, c, d


@numba.njit(**_INLINE)
def _double_round(x):
    """A column round, then a diagonal round, of the 16 state words (a tuple)."""
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = x
    x0, x4, x8, x12 = _quarter(x0, x4, x8, x12)
    x1, x5, x9, x13 = _quarter(x1, x5, x9, x13)
    x2, x6, x10, x14 = _quarter(x2, x6, x10, x14)
    x3, x7, x11, x15 = _quarter(x3, x7, x11, x15)
    x0, x5, x10, x15 = _quarter(x0, x5, x10, x15)
    x1, x6, x11, x12 = _quarter(x1, x6, x11, x12)
    x2, x7, x8, x13 = _quarter(x2, x7, x8, x13)
    x3, x4, x9, x14 = _quarter(x3, x4, x9, x14)
    return x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15


@numba.njit(**_JIT)
def _blocks(key, blocks, out):
    """``out[16c:16c + 16]`` = ChaCha20 block c of the key state ``key`` (16,) uint32, for
    c < ``blocks``. One loop iteration is one whole block (the ten double rounds written
    out, the state in locals), so that LLVM vectorises the loop over the blocks: no
    loads in the loop, one store group per block."""
    k0, k1, k2, k3 = np.uint64(key[0]), np.uint64(key[1]), np.uint64(key[2]), np.uint64(key[3])
    k4, k5, k6, k7 = np.uint64(key[4]), np.uint64(key[5]), np.uint64(key[6]), np.uint64(key[7])
    k8, k9, k10, k11 = np.uint64(key[8]), np.uint64(key[9]), np.uint64(key[10]), np.uint64(key[11])
    k12, k13, k14, k15 = np.uint64(key[12]), np.uint64(key[13]), np.uint64(key[14]), np.uint64(key[15])
    for c in range(blocks):
        counter = (k12 + np.uint64(c)) & _MASK
        x = (k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, counter, k13, k14, k15)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        base = 16 * c
        out[base + 0] = np.uint32((x[0] + k0) & _MASK)
        out[base + 1] = np.uint32((x[1] + k1) & _MASK)
        out[base + 2] = np.uint32((x[2] + k2) & _MASK)
        out[base + 3] = np.uint32((x[3] + k3) & _MASK)
        out[base + 4] = np.uint32((x[4] + k4) & _MASK)
        out[base + 5] = np.uint32((x[5] + k5) & _MASK)
        out[base + 6] = np.uint32((x[6] + k6) & _MASK)
        out[base + 7] = np.uint32((x[7] + k7) & _MASK)
        out[base + 8] = np.uint32((x[8] + k8) & _MASK)
        out[base + 9] = np.uint32((x[9] + k9) & _MASK)
        out[base + 10] = np.uint32((x[10] + k10) & _MASK)
        out[base + 11] = np.uint32((x[11] + k11) & _MASK)
        out[base + 12] = np.uint32((x[12] + counter) & _MASK)
        out[base + 13] = np.uint32((x[13] + k13) & _MASK)
        out[base + 14] = np.uint32((x[14] + k14) & _MASK)
        out[base + 15] = np.uint32((x[15] + k15) & _MASK)


@numba.njit(**_JIT)
def random_words(keys, count, out):
    """``out[t] = random_bits(keys[t], 32, (count,))`` for every key.

    ``keys`` (T, 16) uint32 key states (each (4, 4) ``RNGState`` flattened); ``out``
    (T, count) uint32, written.
    """
    blocks = (count + 15) // 16
    buffer = np.empty(16 * blocks, np.uint32)
    for t in range(keys.shape[0]):
        _blocks(keys[t], blocks, buffer)
        for i in range(count):
            out[t, i] = buffer[i]


@numba.njit(**_JIT)
def _first_blocks(keys, out):
    """``out[t]`` = block 0 of key state ``keys[t]`` ((T, 16) uint32 both): one key per
    loop iteration, so that the loop over the keys vectorises as :func:`_blocks`' does."""
    for t in range(keys.shape[0]):
        k0, k1, k2, k3 = np.uint64(keys[t, 0]), np.uint64(keys[t, 1]), np.uint64(keys[t, 2]), np.uint64(keys[t, 3])
        k4, k5, k6, k7 = np.uint64(keys[t, 4]), np.uint64(keys[t, 5]), np.uint64(keys[t, 6]), np.uint64(keys[t, 7])
        k8, k9, k10, k11 = np.uint64(keys[t, 8]), np.uint64(keys[t, 9]), np.uint64(keys[t, 10]), np.uint64(keys[t, 11])
        k12, k13, k14, k15 = np.uint64(keys[t, 12]), np.uint64(keys[t, 13]), np.uint64(keys[t, 14]), np.uint64(keys[t, 15])
        x = (k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        x = _double_round(x)
        out[t, 0] = np.uint32((x[0] + k0) & _MASK)
        out[t, 1] = np.uint32((x[1] + k1) & _MASK)
        out[t, 2] = np.uint32((x[2] + k2) & _MASK)
        out[t, 3] = np.uint32((x[3] + k3) & _MASK)
        out[t, 4] = np.uint32((x[4] + k4) & _MASK)
        out[t, 5] = np.uint32((x[5] + k5) & _MASK)
        out[t, 6] = np.uint32((x[6] + k6) & _MASK)
        out[t, 7] = np.uint32((x[7] + k7) & _MASK)
        out[t, 8] = np.uint32((x[8] + k8) & _MASK)
        out[t, 9] = np.uint32((x[9] + k9) & _MASK)
        out[t, 10] = np.uint32((x[10] + k10) & _MASK)
        out[t, 11] = np.uint32((x[11] + k11) & _MASK)
        out[t, 12] = np.uint32((x[12] + k12) & _MASK)
        out[t, 13] = np.uint32((x[13] + k13) & _MASK)
        out[t, 14] = np.uint32((x[14] + k14) & _MASK)
        out[t, 15] = np.uint32((x[15] + k15) & _MASK)


@numba.njit(**_JIT)
def _split_from(key, words, index, out):
    """``out`` = key ``index`` of ``chacha.random.split(key, n)`` given the split's words
    (the key's first 3n stream words): the key with counter 0 and nonce words 3i..3i+2."""
    for i in range(12):
        out[i] = key[i]
    out[12] = 0
    for i in range(3):
        out[13 + i] = words[3 * index + i]


@numba.njit(**_JIT)
def key_chain(key, after, batch_keys, eta_keys, noise_keys):
    """The reference's keys for T steps from the state's key ``key`` (16,) uint32.

    Per step (``DPSVI._split_rng_key(state, 3)``): ``split(key, 4)`` gives the next
    state key and the batch, gradient and noise keys. Written: ``after`` (16,) the key
    after the T steps; ``batch_keys`` (T, 16); ``eta_keys`` (T, 2) the gradient keys as
    JAX keys (``d3p.random.convert_to_jax_rng_key``: the first two stream words);
    ``noise_keys`` (T, 16) the keys under ξ (``split(noise key, 1)[0]``).
    """
    steps = batch_keys.shape[0]
    gradient_keys = np.empty((steps, 16), np.uint32)
    raw_noise = np.empty((steps, 16), np.uint32)
    words = np.empty(16, np.uint32)
    state = key.copy()
    following = np.empty(16, np.uint32)
    for s in range(steps):  # sequential: each step splits the previous state key
        _blocks(state, 1, words)
        _split_from(state, words, 1, batch_keys[s])
        _split_from(state, words, 2, gradient_keys[s])
        _split_from(state, words, 3, raw_noise[s])
        _split_from(state, words, 0, following)
        state[:] = following
    after[:] = state
    blocks = np.empty((steps, 16), np.uint32)
    _first_blocks(gradient_keys, blocks)
    for s in range(steps):
        eta_keys[s, 0] = blocks[s, 0]
        eta_keys[s, 1] = blocks[s, 1]
    _first_blocks(raw_noise, blocks)
    for s in range(steps):
        _split_from(raw_noise[s], blocks[s], 0, noise_keys[s])


@numba.njit(**_INLINE)
def _threefry_round(x0, x1, rotation):
    """One Threefry-2x32 round: x0 += x1, x1 = rotl(x1) ^ x0 (uint32 values in uint64)."""
    x0 = (x0 + x1) & _MASK
    return x0, _rotl(x1, rotation) ^ x0


@numba.njit(**_INLINE)
def _threefry_four(x0, x1, odd, add0, add1, injection):
    """Four rounds (rotations 13, 15, 26, 6, or 17, 29, 16, 24 when ``odd``), then the key
    injection x0 += add0, x1 += add1 + injection."""
    if odd:
        x0, x1 = _threefry_round(x0, x1, 17)
        x0, x1 = _threefry_round(x0, x1, 29)
        x0, x1 = _threefry_round(x0, x1, 16)
        x0, x1 = _threefry_round(x0, x1, 24)
    else:
        x0, x1 = _threefry_round(x0, x1, 13)
        x0, x1 = _threefry_round(x0, x1, 15)
        x0, x1 = _threefry_round(x0, x1, 26)
        x0, x1 = _threefry_round(x0, x1, 6)
    return (x0 + add0) & _MASK, (x1 + add1 + np.uint64(injection)) & _MASK


@numba.njit(**_JIT)
def threefry_words(keys, count, out):
    """``out[t]`` = the ``count`` random words ``jax.random`` draws from the raw key
    ``keys[t]`` (threefry, ``jax_threefry_partitionable`` off, as in jax 0.4.30): the
    counters 0..count−1 (one 0 appended for an odd count) split in halves, the halves
    hashed pairwise by Threefry-2x32 (20 rounds), the hashes concatenated, cut to
    ``count``. ``keys`` (T, 2) uint32, ``out`` (T, count) uint32. The words under η:
    ``jax.random.normal`` makes its normals from them as ``d3p.random.normal`` from
    ChaCha's (the tests check η bit for bit). One pair per loop iteration.
    """
    half = (count + 1) // 2
    first = np.empty(half, np.uint32)  # unconditional stores to two arrays, so that the loop vectorises
    last = np.empty(half, np.uint32)
    for t in range(keys.shape[0]):
        k0 = np.uint64(keys[t, 0])
        k1 = np.uint64(keys[t, 1])
        k2 = k0 ^ k1 ^ np.uint64(0x1BD11BDA)
        for i in range(half):
            x0 = (np.uint64(i) + k0) & _MASK
            second = i + half
            x1 = ((np.uint64(second) if second < count else np.uint64(0)) + k1) & _MASK
            # 20 rounds in five groups of four, each followed by the key schedule's
            # injection (k1, k2), (k2, k0), (k0, k1), ... and the group's index
            x0, x1 = _threefry_four(x0, x1, False, k1, k2, 1)
            x0, x1 = _threefry_four(x0, x1, True, k2, k0, 2)
            x0, x1 = _threefry_four(x0, x1, False, k0, k1, 3)
            x0, x1 = _threefry_four(x0, x1, True, k1, k2, 4)
            x0, x1 = _threefry_four(x0, x1, False, k2, k0, 5)
            first[i] = np.uint32(x0)
            last[i] = np.uint32(x1)
        for i in range(half):
            out[t, i] = first[i]
        for i in range(count - half):
            out[t, half + i] = last[i]
