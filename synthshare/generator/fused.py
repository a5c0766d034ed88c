"""The fast path of the aligned DPVI fits: randomness drawn in blocks by JAX, steps compiled by numba.

:meth:`AlignedPoissonDPSVI.update` (the reference: d3p's ``DPSVI`` extended) draws
three ChaCha keys per step from the state's key, then the step's Poisson batch from
the first (a stream of ChaCha bits read lazily, :mod:`synthshare.generator.subsampling`),
the shared guide draw η from the second and the Gaussian noise ξ from the third
(``d3p.random.normal``), and runs the clipped, noised gradient and Adam in float32
through XLA. The fast path computes the same steps in two phases per block of steps:

1. The randomness, for all steps of the block: the key chain (the reference's
   ``_split_rng_key`` step after step, :func:`draw_keys`), every step's stream words
   (``chacha.random.random_bits`` of the batch key, the reference's call) and the
   words under ξ, ChaCha20 computed by :mod:`synthshare.generator.fused_chacha`
   (the same bits as jax-chacha-prng's, 2.5-5x faster than through XLA); the words
   under η (``jax.random``'s threefry words of the gradient key, as
   ``dpvi.shared_draw`` draws them, :func:`threefry_words`); then one compiled JAX
   program vectorised over the parties and the steps (:func:`normals`) makes η and ξ
   from their words as ``jax.random.normal`` and ``d3p.random.normal`` do (XLA's
   float32 erf⁻¹). None of them depends on the parameters.
2. :func:`synthshare.generator.fused_kernel.run_steps` — per party, the steps
   themselves in one compiled loop (batch from the stream, gradient, clipping, noise,
   prior, chain rule, Adam), in float64.

So the batches and the noise are the reference's, bit for bit, and the trajectory is
the reference's up to floating-point rounding (float64 here, float32 there; the tests
compare them). The mechanism is the reference's: each record enters each step's batch
independently with probability ``effective_rate(q)``, and noise σ·C is added to the sum
of the clipped per-record gradients. Each party runs at its own N (no padding to the
largest party of the job; each party's stream words are drawn for its own N).

Why it is faster (benchmarks/README.md, "DPVI"): the reference's step is some sixty
small XLA operations, each costing more to dispatch than to compute on a CPU; here one
step is a few thousand scalar operations, and a step reads ~2 stream bits per record
instead of 16.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import d3p.random
import jax
import jax.numpy as jnp
import numpy as np
from d3p.svi import DPSVIState
from scipy.special import gammaln

from synthshare.generator import fused_chacha, fused_kernel
from synthshare.generator.compilation import compile_for_one_thread, largest_divisor
from synthshare.generator.dpvi import AlignedPoissonDPSVI
from synthshare.generator.encoding import LEVEL_COUNTS
from synthshare.generator.settings import GeneratorSettings
from synthshare.generator.subsampling import BERNOULLI_BITS, stream_words, threshold
from synthshare.variables import FEATURES

MAX_DRAW_STEPS = 1000
"""Steps of randomness drawn per block: η, ξ and ξ's words (M, T, 3D), ~70 MB for 16
parties at T = 1,000 (each party's stream words, (T, W), as it runs); more would only
save calls that cost ~1 ms."""


@dataclass
class FusedState:
    """The optimiser state of M parties as the kernel updates it (float64, in place).

    ``loc``, ``scale_u`` (M, D): guide location and unconstrained scale; ``moment1``,
    ``moment2`` (M, 2, D): Adam's m and v of (loc, scale_u); ``step`` (M,) Adam's step
    count; ``keys`` (M, 4, 4) uint32 (numpy): each party's ChaCha key (the reference state's).
    """

    loc: np.ndarray
    scale_u: np.ndarray
    moment1: np.ndarray
    moment2: np.ndarray
    step: np.ndarray
    keys: np.ndarray

    @classmethod
    def from_reference(cls, states: DPSVIState) -> "FusedState":
        """From stacked :class:`DPSVIState` (parties along the first axis) of numpyro's Adam.

        The optimiser state's leaves are (step, loc, m_loc, v_loc, scale, m_scale, v_scale):
        numpyro keeps the step count first and ``jax.example_libraries`` packs (x, m, v)
        per parameter in sorted key order (``auto_loc``, ``auto_scale``).
        """
        step, loc, m_loc, v_loc, scale, m_scale, v_scale = (
            np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(states.optim_state)
        )
        return cls(
            loc=loc.astype(np.float64), scale_u=scale.astype(np.float64),
            moment1=np.stack([m_loc, m_scale], axis=1).astype(np.float64),
            moment2=np.stack([v_loc, v_scale], axis=1).astype(np.float64),
            step=step.astype(np.int64).reshape(-1), keys=np.asarray(states.rng_key, np.uint32),
        )

    def scale(self) -> np.ndarray:
        """The guide's standard deviations softplus(u_s), (M, D)."""
        return np.logaddexp(0.0, self.scale_u)


def draw_keys(keys: np.ndarray, steps: int):
    """The keys of the next ``steps`` reference steps of one party (no JAX).

    ``keys`` (4, 4) the party's ChaCha key. Returns the key after the block (4, 4) and,
    per step, the batch key (T, 4, 4), the gradient key as a JAX key (T, 2) (what
    ``dpvi.shared_draw`` draws η from) and the key whose first D ChaCha words
    ``d3p.random.normal`` turns into ξ (T, 4, 4) (the first split of the noise key, as
    ``dpvi.standard_noise``): :func:`synthshare.generator.fused_chacha.key_chain`, the
    reference's ``_split_rng_key`` step after step, 2.5x faster than the same through XLA.
    """
    after = np.empty(16, np.uint32)
    batch_keys = np.empty((steps, 16), np.uint32)
    eta_keys = np.empty((steps, 2), np.uint32)
    noise_keys = np.empty((steps, 16), np.uint32)
    fused_chacha.key_chain(np.ascontiguousarray(keys, np.uint32).reshape(16), after, batch_keys, eta_keys, noise_keys)
    return after.reshape(4, 4), batch_keys.reshape(steps, 4, 4), eta_keys, noise_keys.reshape(steps, 4, 4)


def normal_from_words(words: jax.Array) -> jax.Array:
    """Standard normals (float32) from ChaCha words (uint32), as ``d3p.random.normal``
    makes them from its key's words (``chacha.random.uniform`` on (nextafter(−1, 0), 1),
    then √2·erf⁻¹): the 23 high bits as the mantissa of a float in [1, 2), minus 1,
    scaled to the interval. The tests check the values bit for bit against d3p's."""
    low = np.nextafter(np.float32(-1.0), np.float32(0.0))
    high = np.float32(1.0)
    mantissa = jax.lax.shift_right_logical(words, np.uint32(32 - 23)) | np.float32(1.0).view(np.uint32)
    floats = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - np.float32(1.0)
    uniform = jax.lax.max(low, floats * (high - low) + low)
    return np.float32(np.sqrt(2)) * jax.lax.erf_inv(uniform)


def normals(eta_words: jax.Array, noise_words: jax.Array) -> tuple[jax.Array, jax.Array]:
    """η and ξ (..., D) float32 from their words (..., D) uint32 (:func:`normal_from_words`
    both: ``jax.random.normal`` makes its normals from threefry's words exactly as
    ``d3p.random.normal`` from ChaCha's)."""
    return normal_from_words(eta_words), normal_from_words(noise_words)


def _words_per_key(fill, keys: np.ndarray, key_dims: int, count: int) -> np.ndarray:
    """``fill(flat keys (K, key words), count, out (K, count))`` over keys (..., *key shape)
    whose last ``key_dims`` axes are one key: (..., count) uint32."""
    keys = np.ascontiguousarray(keys, np.uint32)
    batch = keys.shape[:keys.ndim - key_dims]
    flat = keys.reshape(int(np.prod(batch, dtype=np.int64)), -1)
    out = np.empty((flat.shape[0], count), np.uint32)
    fill(flat, count, out)
    return out.reshape(batch + (count,))


def threefry_words(keys: np.ndarray, count: int) -> np.ndarray:
    """``jax.random.bits(key, (count,), uint32)`` for each of the raw keys (..., 2):
    (..., count) uint32, by :func:`synthshare.generator.fused_chacha.threefry_words`."""
    return _words_per_key(fused_chacha.threefry_words, keys, 1, count)


def chacha_words(keys: np.ndarray, count: int) -> np.ndarray:
    """``chacha.random.random_bits(key, 32, (count,))`` for each of the keys (..., 4, 4):
    (..., count) uint32, by :func:`synthshare.generator.fused_chacha.random_words`."""
    return _words_per_key(fused_chacha.random_words, keys, 2, count)


def draw_block(keys: np.ndarray, words: int, dim: int, steps: int):
    """Every random quantity of the next ``steps`` reference steps of one party.

    ``keys`` (4, 4) the party's ChaCha key. Returns the key after the block and, per
    step, the batch key's first ``words`` stream words (T, W) uint32, η (T, D) and
    ξ (T, D) float32: what ``update`` draws from the same keys. (:func:`run_fused`
    does the same for all parties at once, with the same compiled program.)
    """
    after, batch_keys, eta_keys, noise_keys = draw_keys(np.asarray(keys), steps)
    stream = chacha_words(batch_keys, words)
    eta, noise = _normals_program((steps,), dim)(threefry_words(eta_keys, dim), chacha_words(noise_keys, dim))
    return after, stream, np.asarray(eta), np.asarray(noise)


@functools.lru_cache(maxsize=8)
def _normals_program(batch: tuple[int, ...], dim: int):
    """:func:`normals` compiled for one thread, for words (*batch, D)."""
    return compile_for_one_thread(normals, jnp.zeros(batch + (dim,), jnp.uint32), jnp.zeros(batch + (dim,), jnp.uint32))


@dataclass(frozen=True)
class ModelLayout:
    """Where each site of the flat latent vector lives, for the kernel (int64 arrays)."""

    level_counts: np.ndarray
    column_start: np.ndarray
    site_offset: np.ndarray
    coef_offset: int
    components: int
    dim: int

    @classmethod
    def from_guide(cls, layout: tuple[tuple[str, tuple[int, ...]], ...], components: int) -> "ModelLayout":
        """From a fit's ``layout`` (sites in flat order with their shapes); refuses any other order."""
        expected = ["weights"] + [f"probs_{feature}" for feature in FEATURES] + ["coef"]
        if [name for name, _ in layout] != expected:
            raise RuntimeError(f"fused DPVI kernel: latent layout {layout}; expected the sites {expected} in this order")
        offsets, position = [], 0
        for name, shape in layout:
            offsets.append(position)
            position += int(np.prod(shape, dtype=np.int64))
        counts = np.asarray(LEVEL_COUNTS, np.int64)
        return cls(
            level_counts=counts, column_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
            site_offset=np.asarray(offsets[1:-1], np.int64), coef_offset=int(offsets[-1]),
            components=int(components), dim=int(position),
        )


def run_fused(
    dpvi: AlignedPoissonDPSVI,
    settings: GeneratorSettings,
    layout: ModelLayout,
    state: FusedState,
    codes: list[np.ndarray],
    outcome: list[np.ndarray],
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` aligned DPVI steps of every party, in place on ``state``.

    ``settings``: the generator settings ``dpvi`` was built from (learning rate, priors).
    ``codes[m]`` (N_m, 5) int32 and ``outcome[m]`` (N_m,) are party m's own records
    (unpadded). Returns the losses (M, steps) and the records selected per step
    (M, steps) before truncation to the capacity (for overflow diagnostics).
    """
    if dpvi._rng_suite is not d3p.random:
        raise RuntimeError("fused DPVI: the ChaCha words are d3p.random's (chacha); the fit uses another RNG suite")
    if jax.config.jax_threefry_partitionable or jax.config.jax_default_prng_impl != "threefry2x32":
        raise RuntimeError("fused DPVI: η's words are jax.random's threefry with jax_threefry_partitionable off")
    parties = len(codes)
    sizes = [int(c.shape[0]) for c in codes]
    own_words = [stream_words(n) for n in sizes]
    t = threshold(dpvi.sampling_rate)
    lead = max(0, BERNOULLI_BITS - int(t).bit_length())
    model = settings.model
    losses = np.empty((parties, steps), np.float64)
    selected = np.empty((parties, steps), np.int64)
    prepared = [
        (np.ascontiguousarray(c, np.int32), np.asarray(y, np.float64), gammaln(np.asarray(y, np.float64) + 1.0))
        for c, y in zip(codes, outcome)
    ]
    # One block length for the whole call where a divisor allows it: each length is a
    # separately compiled draw program (seconds each for 16 parties).
    divisor = largest_divisor(steps, MAX_DRAW_STEPS)
    even = divisor if divisor * 4 >= min(steps, MAX_DRAW_STEPS) else MAX_DRAW_STEPS
    done = 0
    while done < steps:
        block = min(even, steps - done)
        chains = [draw_keys(state.keys[m], block) for m in range(parties)]
        state.keys = np.stack([chain[0] for chain in chains])
        eta_words = threefry_words(np.stack([chain[2] for chain in chains]), layout.dim)
        noise_words = chacha_words(np.stack([chain[3] for chain in chains]), layout.dim)
        eta, noise = (np.asarray(x) for x in _normals_program((parties, block), layout.dim)(eta_words, noise_words))
        for m in range(parties):
            party_codes, party_outcome, party_log_factorial = prepared[m]
            n = sizes[m]
            stream = chacha_words(chains[m][1], own_words[m])  # (T, own words): only what party m reads
            state.step[m] = fused_kernel.run_steps(
                party_codes, party_outcome, party_log_factorial, n, stream, own_words[m], int(t), lead,
                int(dpvi.capacity), eta[m], noise[m],
                state.loc[m], state.scale_u[m], state.moment1[m], state.moment2[m], int(state.step[m]),
                layout.level_counts, layout.column_start, layout.site_offset, layout.coef_offset, layout.components,
                float(dpvi.sampling_rate), float(dpvi._clipping_threshold), float(dpvi._dp_scale),
                float(settings.learning_rate), float(model.dirichlet_concentration), float(model.coef_prior_scale),
                float(dpvi.sampling_rate) * n, float(n),
                losses[m, done:done + block], selected[m, done:done + block],
            )
        done += block
    return losses, selected
