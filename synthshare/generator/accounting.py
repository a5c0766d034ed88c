"""Privacy accounting: σ from d3p's Fourier accountant, ε checked by Google's PLD accountant.

The mechanism (see :mod:`synthshare.generator.dpvi`): T steps of the Poisson-subsampled
Gaussian mechanism with sampling rate q, sensitivity C and noise σ·C on the sum of
clipped per-record gradients, under add/remove-one neighbours.

- :func:`calibrate_noise` finds σ for a target (ε, δ) with d3p's
  ``approximate_sigma_remove_relation`` (Fourier accountant, Koskela et al. 2020/2021).
  d3p's search can stop at its evaluation limit and then return a σ whose ε is *larger*
  than asked. Every result is therefore re-evaluated independently; an ε above the
  target triggers a retry with more evaluations and, failing that, an error.
- :func:`fourier_epsilon` evaluates ε for a given σ and states its numerical error as
  the change when the accountant's grid is doubled (range L and points nx).
- :func:`pld_epsilon` is the independent check: dp-accounting's privacy loss
  distribution of the same mechanism (connect-the-dots, pessimistic, so an upper
  bound up to discretisation), error stated the same way (discretisation halved).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from d3p.dputil import approximate_sigma_remove_relation
from dp_accounting.pld import privacy_loss_distribution
from fourier_accountant.compute_eps import get_epsilon_R

from synthshare.errors import InputError

_LOG = logging.getLogger(__name__)


class AccountingError(RuntimeError):
    """The accountant could not certify the requested privacy level."""


@dataclass(frozen=True)
class AccountedEpsilon:
    epsilon: float
    error: float
    """Stated numerical error: |ε(grid) − ε(refined grid)|."""


@dataclass(frozen=True)
class NoiseCalibration:
    """σ for a target (ε, δ) and the Fourier accountant's ε at that σ."""

    sigma: float
    epsilon_target: float
    delta: float
    sampling_rate: float
    steps: int
    fourier: AccountedEpsilon
    evaluations: int
    """Accountant evaluations d3p's search used (last attempt)."""


def _check(epsilon: float, delta: float, q: float, steps: int) -> None:
    if not epsilon > 0 or not math.isfinite(epsilon):
        raise InputError(f"epsilon: {epsilon!r}; expected a finite value > 0")
    if not 0 < delta < 1:
        raise InputError(f"generator.delta: {delta!r}; expected 0 < delta < 1")
    if not 0 < q <= 1:
        raise InputError(f"generator.sampling_rate: {q!r}; expected 0 < q <= 1")
    if int(steps) != steps or steps < 1:
        raise InputError(f"steps: {steps!r}; expected a positive integer")


def _fourier_grid(epsilon: float) -> tuple[float, float]:
    """d3p's grid for ε near ``epsilon``: range L = max(20, 2ε), nx = 10⁶·L/20 points."""
    span = max(20.0, 2.0 * epsilon)
    return span, 1e6 * span / 20.0


def fourier_epsilon(sigma: float, delta: float, q: float, steps: int, epsilon_hint: float = 1.0) -> AccountedEpsilon:
    """ε of T Poisson-subsampled Gaussian steps by the Fourier accountant (add/remove).

    Evaluated on d3p's grid and on a grid twice as wide and fine; the first value is
    reported, their difference is the stated error.
    """
    span, points = _fourier_grid(epsilon_hint)
    coarse = float(get_epsilon_R(delta, sigma, q, ncomp=int(steps), L=span, nx=points))
    fine = float(get_epsilon_R(delta, sigma, q, ncomp=int(steps), L=2 * span, nx=2 * points))
    return AccountedEpsilon(epsilon=coarse, error=abs(coarse - fine))


def pld_epsilon(
    sigma: float, delta: float, q: float, steps: int, discretization: float = 1e-5
) -> AccountedEpsilon:
    """ε by dp-accounting's PLD accountant (pessimistic connect-the-dots), add/remove.

    ``discretization`` is the privacy-loss grid; the error is the change when it is halved.
    """
    def epsilon_at(interval: float) -> float:
        pld = privacy_loss_distribution.from_gaussian_mechanism(
            standard_deviation=sigma,
            sensitivity=1.0,
            sampling_prob=q,
            pessimistic_estimate=True,
            value_discretization_interval=interval,
            neighboring_relation=privacy_loss_distribution.NeighborRel.ADD_OR_REMOVE_ONE,
        )
        return float(pld.self_compose(int(steps)).get_epsilon_for_delta(delta))

    coarse = epsilon_at(discretization)
    fine = epsilon_at(discretization / 2)
    return AccountedEpsilon(epsilon=coarse, error=abs(coarse - fine))


def calibrate_noise(
    epsilon: float,
    delta: float,
    q: float,
    steps: int,
    tolerance: float = 1e-3,
    evaluation_limits: tuple[int, ...] = (20, 40, 80),
) -> NoiseCalibration:
    """Smallest-noise σ (within ``tolerance`` in ε) whose Fourier ε does not exceed ``epsilon``.

    Args:
        epsilon, delta: the target; q: the (effective) sampling rate; steps: T.
        tolerance: accepted shortfall, target − tolerance ≤ ε_Fourier ≤ target.
        evaluation_limits: d3p's ``maxeval`` for successive attempts.

    Raises:
        AccountingError: if no attempt gives ε ≤ target (d3p stopped early above the
            target) — the message names σ and the ε it reached.
    """
    _check(epsilon, delta, q, steps)
    last, loose = None, None
    for limit in evaluation_limits:
        try:
            sigma, _, evaluations = approximate_sigma_remove_relation(
                epsilon, delta, q, int(steps), tol=tolerance, force_smaller=True, maxeval=limit
            )
        except (RuntimeError, AssertionError) as error:
            last = f"d3p's search failed with maxeval={limit}: {error}"
            continue
        # Independent re-evaluation: d3p's own ε is not trusted after an early stop.
        accounted = fourier_epsilon(sigma, delta, q, steps, epsilon_hint=epsilon)
        last = f"σ = {sigma:.6g} gives ε = {accounted.epsilon:.6g} (maxeval={limit})"
        if accounted.epsilon > epsilon:
            _LOG.warning("Fourier search stopped early: %s > target %g; retrying", last, epsilon)
            continue
        calibration = NoiseCalibration(
            sigma=float(sigma), epsilon_target=float(epsilon), delta=float(delta), sampling_rate=float(q),
            steps=int(steps), fourier=accounted, evaluations=int(evaluations),
        )
        if accounted.epsilon >= epsilon - tolerance:
            return calibration
        _LOG.warning("Fourier search ended loose: %s < target %g - %g; retrying", last, epsilon, tolerance)
        loose = calibration
    if loose is not None:
        # Private but noisier than needed: usable, and the ledger shows the ε reached.
        return loose
    raise AccountingError(
        f"Fourier accountant could not reach epsilon = {epsilon} (delta = {delta}, q = {q}, T = {steps}): {last}"
    )
