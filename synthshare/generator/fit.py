"""Fit the DP generators of several parties in one vectorised program.

Every party gets its own model, guide, optimiser state, data, record count N_m and
random stream; one compiled program runs a chunk of epochs for all parties without
returning to Python. By default (aligned variant) each epoch draws its randomness as
one block per party (:mod:`synthshare.generator.blocked`) and ``lax.map`` runs the
parties one after another; the reference path (``blocked=False``, and the stock
variant) ``jax.vmap``\ s ``dpvi.update`` over the parties and scans the steps. Parties' data are padded
to the largest N; padding rows are never selected (``subsampling.inclusion_mask``)
and the batch capacity is the largest any party needs. The inclusion bits of record i
and the aligned variant's shared guide draw do not depend on the padding or the
capacity, so a party fitted in a group draws the same batches as fitted alone
(the aligned fits agree up to floating-point summation order; the stock variant's
per-example guide draws depend on the capacity).

Every party pays for the largest N and capacity of its job (benchmarks/README.md:
the one program costs 1.0-1.7x the parties' programs fitted one by one). One program per job is kept because it compiles once; fitting
parties in separate jobs would repeat the ~30 s of accounting, initialisation and
compilation per party.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import d3p.random as strong_rng
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.optim import Adam

from synthshare.errors import InputError
from synthshare.generator.blocked import blocked_steps
from synthshare.generator.compilation import compile_for_one_thread
from synthshare.generator.dpvi import AlignedPoissonDPSVI, PoissonDPSVI
from synthshare.generator.encoding import encode_records
from synthshare.generator.gradients import clipped_gradient_sum, prior_log_density, prior_log_density_and_gradient
from synthshare.generator.model import generative_model, make_guide, record_log_likelihood
from synthshare.generator.settings import GeneratorSettings

MAX_CHUNK_EPOCHS = 25
"""Epochs per compiled call: long enough to amortise the call, short enough for a live progress bar."""


@dataclass(frozen=True)
class PartyData:
    """One party's encoded local data."""

    name: str
    codes: np.ndarray
    """(N, 5) int32 level positions."""
    outcome: np.ndarray
    """(N,) float32 in {0, 1}."""

    @classmethod
    def from_frame(cls, name: str, frame: pd.DataFrame, source: str) -> "PartyData":
        if len(frame) == 0:
            raise InputError(f"{source}: party {name!r} has no records; expected at least one")
        codes, outcome = encode_records(frame, source)
        return cls(name=name, codes=codes, outcome=outcome)

    @property
    def num_records(self) -> int:
        return int(self.codes.shape[0])


@dataclass(frozen=True)
class PartyFit:
    """A fitted variational posterior q(z) = N(loc, diag(scale²)) and its trace."""

    name: str
    num_records: int
    loc: np.ndarray
    """(D,) guide location on the unconstrained latent scale."""
    scale: np.ndarray
    """(D,) guide standard deviation."""
    elbo: np.ndarray
    """(epochs,) mean single-sample ELBO estimate over each epoch's steps (full-data scale)."""
    layout: tuple[tuple[str, tuple[int, ...]], ...]
    """Latent sites in the order of the flat vector, with their unconstrained shapes."""


def party_key(seed: int, scenario: str, party: str) -> strong_rng.PRNGState:
    """The party's d3p (ChaCha20) key: 256 bits of SHA-256 of ``"<seed>/<scenario>/<party>"``.

    Independent of ε and f (common random numbers across them) and of the other
    parties. (Hashing rather than ChaCha's ``fold_in``, which is deprecated.)
    """
    return strong_rng.PRNGKey(hashlib.sha256(f"{int(seed)}/{scenario}/{party}".encode()).digest())


def build_dpvi(settings: GeneratorSettings, sigma: float, capacity: int) -> PoissonDPSVI:
    """The configured DPVI variant for the study's model."""
    model = partial(generative_model, settings=settings.model)
    guide = make_guide(model, init_scale=settings.init_scale)
    common = dict(
        clipping_threshold=settings.clip,
        dp_scale=float(sigma),
        sampling_rate=settings.sampling_rate,
        capacity=capacity,
    )
    if settings.variant == "aligned":
        return AlignedPoissonDPSVI(
            model, guide, Adam(settings.learning_rate), **common,
            record_log_likelihood=record_log_likelihood, clipped_gradient_sum=clipped_gradient_sum,
            prior_log_density=partial(prior_log_density, settings=settings.model),
            prior_gradient=partial(prior_log_density_and_gradient, settings=settings.model),
        )
    return PoissonDPSVI(model, guide, Adam(settings.learning_rate), **common)


def chunk_epochs(epochs: int, limit: int = MAX_CHUNK_EPOCHS) -> int:
    """Largest divisor of ``epochs`` not above ``limit`` (one compiled chunk shape)."""
    return max(d for d in range(1, min(epochs, limit) + 1) if epochs % d == 0)


def _stack(trees: Sequence) -> object:
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack([jnp.asarray(x) for x in leaves]), *trees)


@functools.lru_cache(maxsize=4)
def _chunk_runner(settings: GeneratorSettings, sigma: float, capacity: int, parties: int, largest: int, features: int,
                  blocked: bool = True):
    """The DPVI object and its compiled chunk of epochs for these shapes, built once per
    process (a job compiles once; repeated fits, as in tests and benchmarks, reuse it).

    ``blocked``: the aligned variant draws each epoch's randomness as one block
    (:mod:`synthshare.generator.blocked`, same trajectory, faster); False runs
    ``dpvi.update`` step by step (the reference; the stock variant always does)."""
    dpvi = build_dpvi(settings, sigma, capacity)
    per_chunk = chunk_epochs(settings.epochs)
    step = jax.vmap(dpvi.update)
    def epoch_block(states, codes, outcome, num_records):
        # Parties one after another inside the program (lax.map): with the blocked draws
        # this measured 1.0-1.6x faster than vmapping them (benchmarks/README.md).
        def party(args):
            return blocked_steps(dpvi, *args, steps=settings.steps_per_epoch)
        return jax.lax.map(party, (states, codes, outcome, num_records))
    blocked = blocked and isinstance(dpvi, AlignedPoissonDPSVI)

    def run_chunk(states, codes, outcome, num_records):
        def epoch(states, _):
            if blocked:
                states, losses = epoch_block(states, codes, outcome, num_records)  # losses (M, steps)
                return states, -jnp.mean(losses, axis=1)

            def one_step(states, _):
                return step(states, codes, outcome, num_records)
            states, losses = jax.lax.scan(one_step, states, None, length=settings.steps_per_epoch)
            return states, -jnp.mean(losses, axis=0)
        return jax.lax.scan(epoch, states, None, length=per_chunk)

    # Shapes only: a throwaway state per party, stacked, to lower the program.
    dummy_codes = jnp.zeros((2, features), jnp.int32)
    state = dpvi.init(party_key(0, "", ""), dummy_codes, jnp.zeros((2,), jnp.float32), num_records=2)
    states = _stack([state] * parties)
    compiled = compile_for_one_thread(
        run_chunk, states, jnp.zeros((parties, largest, features), jnp.int32),
        jnp.zeros((parties, largest), jnp.float32), jnp.zeros((parties,), jnp.int32),
    )
    return dpvi, compiled


def fit_parties(
    parties: Sequence[PartyData],
    settings: GeneratorSettings,
    sigma: float,
    capacity: int,
    seed: int,
    scenario: str,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
    blocked: bool = True,
) -> list[PartyFit]:
    """Fit every party's generator with DPVI, all parties in one vectorised program.

    Args:
        parties: the parties' encoded data (M of them).
        settings: the generator settings (variant, epochs, q, C, ...).
        sigma: noise multiplier σ from :func:`accounting.calibrate_noise`.
        capacity: padded batch size B (at least every party's own need).
        seed, scenario: select each party's random stream (:func:`party_key`).
        on_chunk: called after each compiled chunk with the number of epochs done
            and that chunk's ELBO, shape (chunk epochs, M) — for a progress bar.
        blocked: draw each epoch's randomness as one block (aligned variant; same
            trajectory as the step-by-step reference up to rounding, faster).

    Returns:
        One :class:`PartyFit` per party, in input order.
    """
    if not parties:
        raise InputError("fit_parties: no parties given; expected at least one")
    largest = max(p.num_records for p in parties)
    features = parties[0].codes.shape[1]
    dpvi, compiled = _chunk_runner(settings, float(sigma), int(capacity), len(parties), largest, features, bool(blocked))
    codes = np.zeros((len(parties), largest, features), np.int32)
    outcome = np.zeros((len(parties), largest), np.float32)
    for m, party in enumerate(parties):
        codes[m, : party.num_records] = party.codes
        outcome[m, : party.num_records] = party.outcome
    num_records = jnp.asarray([p.num_records for p in parties], jnp.int32)
    states = _stack([
        dpvi.init(party_key(seed, scenario, p.name), jnp.asarray(p.codes), jnp.asarray(p.outcome), num_records=p.num_records)
        for p in parties
    ])
    codes, outcome = jnp.asarray(codes), jnp.asarray(outcome)
    per_chunk = chunk_epochs(settings.epochs)
    elbo_chunks = []
    for done in range(per_chunk, settings.epochs + 1, per_chunk):
        states, elbo = compiled(states, codes, outcome, num_records)
        elbo = np.asarray(elbo)
        elbo_chunks.append(elbo)
        if on_chunk is not None:
            on_chunk(done, elbo)
    elbo = np.concatenate(elbo_chunks, axis=0)

    layout = tuple((name, tuple(int(d) for d in np.shape(value))) for name, value in dpvi.guide._init_locs.items())
    prefix = dpvi.guide.prefix
    fits = []
    for m, party in enumerate(parties):
        state = jax.tree_util.tree_map(lambda leaf: leaf[m], states)
        params = dpvi.get_params(state)
        loc = np.asarray(params[f"{prefix}_loc"], np.float64)
        scale = np.asarray(params[f"{prefix}_scale"], np.float64)
        if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(scale))):
            raise RuntimeError(f"party {party.name!r}: DPVI diverged (non-finite guide parameters) with sigma={sigma}")
        fits.append(PartyFit(
            name=party.name, num_records=party.num_records, loc=loc, scale=scale,
            elbo=elbo[:, m].astype(np.float64), layout=layout,
        ))
    return fits
