"""The noise of one privacy level, calibrated once and shared by every job that uses it.

σ depends only on (ε, δ, q, T) (:func:`~synthshare.generator.accounting.calibrate_noise`),
not on the scenario, the fraction, the seed or the party: every generator job of one ε
uses the same σ. Calibrating it (Fourier accountant search + its independent
re-evaluation + dp-accounting's PLD check) takes ~15 s at the paper's T = 400,000, so the
workflow does it in one job per ε (rule ``calibrate_noise``) and the generator jobs read
the result (``privacy/noise/eps<ε>.json``) instead of repeating it: 4 calibrations for the
paper grid's 110 generator jobs.

A noise file states what it was calibrated for; :func:`read_noise` refuses one whose
(ε, δ, q, T) differ from the reading job's, so a stale file can never give a job a σ
for other settings. JSON floats round-trip exactly (shortest repr), so a job that reads
σ gets the bytes it would have computed.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass

from synthshare.errors import InputError
from synthshare.generator.accounting import calibrate_noise, pld_epsilon

NOISE_FIELDS = ("epsilon", "delta", "q", "steps", "sigma", "epsilon_fourier", "epsilon_fourier_error",
                "epsilon_pld", "epsilon_pld_error")
"""The keys of a noise file."""


@dataclass(frozen=True)
class AccountedNoise:
    """σ for (ε, δ, q, T) and the ε both accountants give at that σ."""

    epsilon: float
    """The target ε."""
    delta: float
    q: float
    """The effective sampling rate (``subsampling.effective_rate``)."""
    steps: int
    sigma: float
    epsilon_fourier: float
    epsilon_fourier_error: float
    epsilon_pld: float
    epsilon_pld_error: float

    def accounted(self) -> dict[str, float]:
        """The ledger's ε columns."""
        return dict(epsilon_fourier=self.epsilon_fourier, epsilon_fourier_error=self.epsilon_fourier_error,
                    epsilon_pld=self.epsilon_pld, epsilon_pld_error=self.epsilon_pld_error)


@functools.lru_cache(maxsize=16)
def account_noise(epsilon: float, delta: float, q: float, steps: int) -> AccountedNoise:
    """σ by the Fourier accountant and the PLD check (cached within a process)."""
    calibration = calibrate_noise(epsilon, delta, q, steps)
    pld = pld_epsilon(calibration.sigma, delta, q, steps)
    return AccountedNoise(
        epsilon=float(epsilon), delta=float(delta), q=float(q), steps=int(steps), sigma=calibration.sigma,
        epsilon_fourier=calibration.fourier.epsilon, epsilon_fourier_error=calibration.fourier.error,
        epsilon_pld=pld.epsilon, epsilon_pld_error=pld.error,
    )


def noise_record(noise: AccountedNoise) -> dict:
    """The JSON object of a noise file (keys :data:`NOISE_FIELDS`)."""
    return asdict(noise)


def read_noise(path: str | os.PathLike, epsilon: float, delta: float, q: float, steps: int) -> AccountedNoise:
    """The noise file at ``path``, checked against the settings of the job reading it.

    Raises:
        InputError: unreadable or malformed file, a missing or extra key, or a stated
            ε, δ, q or T other than the job's (the message names the file, key and values).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the noise calibration: {error}") from None
    if not isinstance(record, dict) or set(record) != set(NOISE_FIELDS):
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise InputError(f"{path}: keys {keys}; expected exactly {list(NOISE_FIELDS)}")
    expected = {"epsilon": float(epsilon), "delta": float(delta), "q": float(q), "steps": int(steps)}
    for key, value in expected.items():
        if record[key] != value:
            raise InputError(f"{path}: {key} = {record[key]!r}, but this job needs {key} = {value!r}; "
                             "recalibrate (delete the file or rerun the rule calibrate_noise)")
    sigma = record["sigma"]
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not (math.isfinite(sigma) and sigma > 0):
        raise InputError(f"{path}: sigma = {sigma!r}; expected a finite number > 0")
    return AccountedNoise(**{key: record[key] for key in NOISE_FIELDS})
