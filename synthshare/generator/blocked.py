"""Aligned DPVI steps with their randomness drawn a block of steps at a time.

:meth:`AlignedPoissonDPSVI.update` (the reference, d3p's ``DPSVI`` extended) draws,
every step, three keys from the state's ChaCha key, the Poisson batch (16 random bits
per record, then compaction), the shared guide draw η and the Gaussian noise ξ, and
then computes the clipped, noised gradient and the Adam step. :func:`blocked_steps`
runs the same T steps in two phases:

1. the key chain of all T steps (each step's split of the previous state key, the
   reference's ``_split_rng_key``), then every step's batch, η and ξ from those keys,
   vectorised over the steps (``jax.vmap``) — none of them depends on the parameters;
2. a ``lax.scan`` over the steps with the pre-drawn batch, η and ξ: gradient,
   clipping, noise, Adam.

So the batches, η and ξ are the reference's, drawn by the same functions from the same
keys, and the trajectory is the reference's up to floating-point rounding (the tests
compare them). The mechanism is unchanged: each record enters each step's batch
independently with probability ``effective_rate(q)`` (``subsampling.poisson_batch``),
and the noise σ·C is added to the sum of clipped gradients; only the order of
evaluation differs.

Why it is faster (benchmarks/README.md, "DPVI"): on XLA's CPU backend the per-step
random draws inside the training loop cost far more than the same draws vectorised
over a block of steps (measured at N = 3,800, B = 94, threads pinned: the reference
step 160–230 µs, the blocked step 72–90 µs); the noise draw (``d3p.random.normal``, an
inverse error function of 373 ChaCha uniforms) cost 50–60 µs more inside the loop body
than a cheap stand-in, and 5 µs per step drawn in a block.

Memory per party and block: T × (B × 5 codes + B outcomes + B mask + 2·D normals),
about 0.5 MB at T = 100, B = 94, D = 373.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from d3p.svi import DPSVI, DPSVIState

from synthshare.generator.dpvi import AlignedPoissonDPSVI


def draw_block(dpvi: AlignedPoissonDPSVI, state: DPSVIState, codes: jax.Array, outcome: jax.Array,
               num_records: jax.Array, steps: int):
    """Every random quantity of the next ``steps`` reference steps of one party.

    Returns the state key after the block and, stacked over the steps, the batch codes
    (T, B, 5), outcomes (T, B), mask (T, B), shared draws η (T, D) and noise ξ (T, D).
    """
    shape = jnp.shape(dpvi.optim.get_params(state.optim_state)[f"{dpvi.guide.prefix}_loc"])

    def next_keys(carry: DPSVIState, _):
        carry, keys = dpvi._split_rng_key(carry, 3)  # the reference's split, step by step
        return carry, tuple(keys)

    after, (batch_keys, gradient_keys, noise_keys) = jax.lax.scan(next_keys, state, None, length=steps)
    batch_codes, batch_outcome, valid = jax.vmap(lambda key: dpvi._draw_batch(key, codes, outcome, num_records))(
        batch_keys
    )
    eta = jax.vmap(lambda key: dpvi.shared_draw(key, shape))(gradient_keys)
    noise = jax.vmap(lambda key: dpvi.standard_noise(key, shape))(noise_keys)
    return after.rng_key, (batch_codes, batch_outcome, valid, eta, noise)


def blocked_steps(dpvi: AlignedPoissonDPSVI, state: DPSVIState, codes: jax.Array, outcome: jax.Array,
                  num_records: jax.Array, steps: int):
    """``steps`` steps of ``dpvi.update`` for one party, randomness drawn as a block.

    Args and shapes as :meth:`AlignedPoissonDPSVI.update` (``codes`` (n, 5), ``outcome``
    (n,), all of the party's records, padded). Returns ``(state, losses (steps,))``,
    equal to scanning ``dpvi.update`` ``steps`` times up to floating-point rounding.
    """
    if not isinstance(dpvi, AlignedPoissonDPSVI):
        raise TypeError(f"blocked_steps needs the aligned variant, got {type(dpvi).__name__}")
    key_after, block = draw_block(dpvi, state, codes, outcome, num_records, steps)

    def step(state: DPSVIState, drawn):
        batch_codes, batch_outcome, valid, eta, noise = drawn
        params = dpvi.optim.get_params(state.optim_state)
        state, loss, grads = dpvi.aligned_gradients(
            state, None, params, eta, batch_codes, batch_outcome, valid, num_records, noise=noise
        )
        return dpvi._apply_gradient(state, grads), loss

    state, losses = jax.lax.scan(step, state, block)
    return DPSVI._update_state_rng(state, key_after), losses
