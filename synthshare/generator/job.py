"""One generator job: calibrate σ, fit every party, sample synthetic sets, account.

This is what ``scripts/fit_generators.py`` runs for one (scenario, ε, f, seed); it
returns plain tables and arrays and :func:`write_party_outputs` writes them (atomically)
to the files of docs/architecture.md, generator stage.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from synthshare.atomic import write_csv, write_json, write_npz, write_parquet
from synthshare.errors import InputError
from synthshare.generator.fit import PartyData, PartyFit, fit_parties
from synthshare.generator.ledger import ledger_record
from synthshare.generator.noise import AccountedNoise, account_noise
from synthshare.generator.sampling import sample_synthetic
from synthshare.generator.privacy_level import NO_PRIVACY
from synthshare.generator.settings import GeneratorSettings
from synthshare.generator.subsampling import batch_capacity, effective_rate, expected_batch, overflow_delta

_LOG = logging.getLogger(__name__)


UNCLIPPED = 1e30
"""The clipping threshold of a non-private fit: finite (so d3p's noise scale σ·C is
0·C = 0, not 0·∞ = NaN) and far above any float32 gradient norm of the model, so the
clipping factor min(1, C/‖g‖) is exactly 1 (tests/test_audit_shadow.py checks both)."""


@dataclass(frozen=True)
class PartyOutputs:
    fit: PartyFit
    synthetic: pd.DataFrame
    elbo: pd.DataFrame
    record: dict


def elbo_table(fit: PartyFit) -> pd.DataFrame:
    """``epoch`` (1-based), ``elbo`` (the epoch's mean full-data ELBO estimate).

    A training diagnostic for the party itself: the ELBO values are computed from the
    private data without noise, so unlike the parameters and synthetic sets they are
    *not* covered by the DP guarantee and should not be published.
    """
    return pd.DataFrame({"epoch": np.arange(1, len(fit.elbo) + 1, dtype=np.int64), "elbo": fit.elbo})


def fit_and_sample(
    parties: Sequence[PartyData],
    scenario: str,
    epsilon: float,
    fraction: float,
    seed: int,
    settings: GeneratorSettings,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
    noise: AccountedNoise | None = None,
) -> list[PartyOutputs]:
    """Everything one job produces, per party, in input order.

    σ is calibrated once for the job (all parties share ε, δ, q and T), or taken from
    ``noise`` (the workflow's ``calibrate_noise`` job, one per ε), which must state this
    job's ε, δ, q and T; the batch
    capacity is the largest any party needs, and each party's overflow δ is computed
    with that capacity and its own N.

    ``epsilon`` = :data:`NO_PRIVACY` (∞) fits without privacy: σ = 0 and the clipping
    threshold replaced by :data:`UNCLIPPED`, everything else (Poisson batches, steps,
    optimiser, sampling) as a DP fit. Its capacity is sized as at ε = 0, i.e. the
    probability that any of the T batches overflows is at most ``overflow_delta``/2.
    """
    names = [p.name for p in parties]
    if len(set(names)) != len(names):
        raise InputError(f"parties: duplicate names in {names}; expected distinct party names")
    q = effective_rate(settings.sampling_rate)
    steps = settings.steps
    started = time.perf_counter()
    private = epsilon != NO_PRIVACY
    if private:
        needed = (float(epsilon), float(settings.delta), q, steps)
        if noise is None:
            noise = account_noise(*needed)
        elif (noise.epsilon, noise.delta, noise.q, noise.steps) != needed:
            raise ValueError(f"noise calibrated for (epsilon, delta, q, T) = {(noise.epsilon, noise.delta, noise.q, noise.steps)}, "
                             f"but this job has {needed}")
        sigma = noise.sigma
        accounted = noise.accounted()
        _LOG.info(
            "sigma = %.6g for epsilon = %g, delta = %g, q = %.8g, T = %d: epsilon_fourier = %.6g (±%.2g), "
            "epsilon_pld = %.6g (±%.2g) [%.1f s]",
            sigma, epsilon, settings.delta, q, steps, noise.epsilon_fourier, noise.epsilon_fourier_error,
            noise.epsilon_pld, noise.epsilon_pld_error, time.perf_counter() - started,
        )
    else:
        settings = replace(settings, clip=UNCLIPPED)
        sigma = 0.0
        accounted = dict(epsilon_fourier=math.inf, epsilon_fourier_error=0.0, epsilon_pld=math.inf, epsilon_pld_error=0.0)
        _LOG.info("no privacy: sigma = 0, clipping off (C = %g), q = %.8g, T = %d", UNCLIPPED, q, steps)
    capacity_epsilon = float(epsilon) if private else 0.0
    capacity = max(
        batch_capacity(p.num_records, q, steps, capacity_epsilon, settings.overflow_delta) for p in parties
    )
    _LOG.info("batch capacity %d for N = %s (q·N up to %.1f)", capacity, [p.num_records for p in parties],
              max(expected_batch(p.num_records, q) for p in parties))

    started = time.perf_counter()
    fits = fit_parties(parties, settings, sigma, capacity, seed, scenario, on_chunk=on_chunk)
    _LOG.info("fitted %d parties, %d steps each, in %.1f s", len(parties), steps, time.perf_counter() - started)

    outputs = []
    for fit in fits:
        synthetic = sample_synthetic(fit, settings.model, settings.synthetic_sets, seed, scenario)
        overflow = overflow_delta(capacity, fit.num_records, q, steps, capacity_epsilon)
        record = ledger_record(
            scenario=scenario, party=fit.name, epsilon_target=float(epsilon), fraction=float(fraction),
            seed=int(seed), variant=settings.variant, **accounted,
            delta=settings.delta + overflow, delta_accountant=settings.delta, delta_overflow=overflow,
            q=settings.sampling_rate, q_effective=q, steps=steps, epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch, batch_capacity=capacity,
            expected_batch=expected_batch(fit.num_records, q), clip=settings.clip, sigma=sigma,
            N=fit.num_records, components=settings.components, learning_rate=settings.learning_rate,
        )
        outputs.append(PartyOutputs(fit=fit, synthetic=synthetic, elbo=elbo_table(fit), record=record))
    return outputs


def write_party_outputs(
    output: PartyOutputs,
    synthetic_path: str | os.PathLike,
    params_path: str | os.PathLike,
    elbo_path: str | os.PathLike,
    privacy_path: str | os.PathLike,
) -> None:
    """Write one party's four files atomically (Parquet, NPZ, CSV, JSON; no pickle).

    ``params.npz``: ``loc`` and ``scale`` (D,) float64, ``layout`` (JSON text: the latent
    sites in flat order with their unconstrained shapes) and ``num_records``.
    """
    fit = output.fit
    write_parquet(output.synthetic, synthetic_path)
    write_npz(
        params_path,
        loc=fit.loc,
        scale=fit.scale,
        layout=np.array(json.dumps([[name, list(shape)] for name, shape in fit.layout])),
        num_records=np.array(fit.num_records, dtype=np.int64),
    )
    write_csv(output.elbo, elbo_path, float_format="%.9g")
    write_json(output.record, privacy_path)


def read_party_fit(name: str, params_path: str | os.PathLike, elbo: np.ndarray | None = None) -> PartyFit:
    """A :class:`PartyFit` from ``params.npz`` (e.g. to sample more sets later)."""
    with np.load(params_path, allow_pickle=False) as data:
        layout = tuple((site, tuple(shape)) for site, shape in json.loads(str(data["layout"])))
        return PartyFit(
            name=name, num_records=int(data["num_records"]), loc=data["loc"], scale=data["scale"],
            elbo=np.asarray([] if elbo is None else elbo, np.float64), layout=layout,
        )
