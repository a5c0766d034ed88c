"""What a white-box canary audit of one DPVI step measures, and the privacy it implies.

The mechanism test (``tests/test_audit_mechanism.py``, after Nasr et al., USENIX
Security 2023, "Tight auditing of differentially private machine learning": a
white-box auditor who sees every privatised gradient and inserts a canary whose
clipped gradient it knows) observes, per DPVI step t, the scalar

    x_t = q · ⟨ĝ_t − ĝ_t^rest, u⟩ / C

where ĝ_t is the step's privatised gradient on D' = D ∪ {canary}, ĝ_t^rest the same
step's gradient computed without noise and without the canary (same keys, so the other
records' clipped contributions cancel exactly), u the unit direction of the canary's
clipped gradient and b_t whether the Poisson sampler drew the canary. If the step is
the Poisson-subsampled Gaussian the accountant analyses,

    x_t = b_t · κ + σ · ξ_t,   b_t ~ Bernoulli(q),   ξ_t ~ N(0, 1),   κ = 1

(the canary's gradient norm is far above C, so its clipped contribution has norm C).
:func:`fit_step` estimates the three numbers the privacy depends on, each with a
confidence interval:

- the noise s = root mean square of x over steps without the canary (their mean is 0
  under the model; χ² interval with n d.f.);
- the canary's shift κ = mean of x over steps with it (t interval with s);
- the rate q = fraction of steps with the canary (Clopper–Pearson).

The effective noise multiplier is σ_e = s/κ (sensitivity-normalised; a skipped
clipping shows as κ ≫ 1, halved noise as s = σ/2). The three intervals are at level
1 − α/3 each, so the box of them covers all three at once with probability ≥ 1 − α
(Bonferroni). Privacy is monotone in the box (decreasing in σ_e, increasing in q), so
the box's corners bound the implied μ.

The comparison is in μ-GDP: T steps of the Poisson-subsampled Gaussian with noise
multiplier σ and rate q are asymptotically μ-GDP with μ = q·√(T·(e^{1/σ²} − 1))
(central limit theorem of Bu, Dong, Long & Su 2020, Dong, Roth & Su 2022), and μ-GDP
gives (ε, δ(ε)) with δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2). The accountant's
(σ, q, T) give μ_claimed; the audit passes when μ_claimed lies in the interval of the
measured μ (tight: neither more nor less private than stated) and a broken step shows
as an interval entirely above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from synthshare.audit.metrics import clopper_pearson
from synthshare.errors import InputError


def gdp_mu(sigma: float, q: float, steps: int) -> float:
    """μ of T Poisson-subsampled Gaussian steps (CLT): q·√(T·(e^{1/σ²} − 1))."""
    if not sigma > 0 or not 0 < q <= 1 or steps < 1:
        raise InputError(f"gdp_mu: sigma={sigma!r}, q={q!r}, steps={steps!r}; expected sigma > 0, 0 < q <= 1, steps >= 1")
    if 1.0 / sigma**2 > 700.0:  # e^{1/σ²} overflows a float: no privacy to speak of
        return math.inf
    return q * math.sqrt(steps * math.expm1(1.0 / sigma**2))


def gdp_delta(epsilon: float, mu: float) -> float:
    """δ(ε) of μ-GDP: Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2) (Dong, Roth & Su 2022, Cor. 2.13)."""
    return float(stats.norm.cdf(-epsilon / mu + mu / 2) - math.exp(epsilon) * stats.norm.cdf(-epsilon / mu - mu / 2))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The ε with δ(ε) = ``delta`` under μ-GDP (0 if δ(0) ≤ δ already)."""
    if not mu > 0 or not 0 < delta < 1:
        raise InputError(f"gdp_epsilon: mu={mu!r}, delta={delta!r}; expected mu > 0 and 0 < delta < 1")
    if math.isinf(mu):
        return math.inf
    if gdp_delta(0.0, mu) <= delta:
        return 0.0
    upper = 1.0
    while gdp_delta(upper, mu) > delta:
        upper *= 2.0
    return float(optimize.brentq(lambda e: gdp_delta(e, mu) - delta, 0.0, upper, xtol=1e-12))


@dataclass(frozen=True)
class StepFit:
    """Estimates (and intervals) of the per-step mechanism from canary observations."""

    steps: int
    included: int
    noise: tuple[float, float, float]
    """s: estimate, lower, upper (units of C)."""
    shift: tuple[float, float, float]
    """κ: estimate, lower, upper (units of C)."""
    rate: tuple[float, float, float]
    """q: estimate, lower, upper."""
    normality_pvalue: float
    """Kolmogorov–Smirnov p-value of the canary-free x/s against N(0, 1)."""

    @property
    def sigma(self) -> tuple[float, float, float]:
        """σ_e = s/κ: estimate, lower (s_lo/κ_hi), upper (s_hi/κ_lo)."""
        s, s_lo, s_hi = self.noise
        k, k_lo, k_hi = self.shift
        return s / k, s_lo / k_hi, (s_hi / k_lo if k_lo > 0 else math.inf)

    def mu(self, steps: int) -> tuple[float, float, float]:
        """Implied μ for T = ``steps``: estimate, lower, upper (box corners)."""
        sigma, sigma_lo, sigma_hi = self.sigma
        _, q_lo, q_hi = self.rate
        estimate = gdp_mu(sigma, self.rate[0], steps) if self.rate[0] > 0 else 0.0
        lower = gdp_mu(sigma_hi, q_lo, steps) if q_lo > 0 and math.isfinite(sigma_hi) else 0.0
        return estimate, lower, gdp_mu(sigma_lo, q_hi, steps)


def fit_step(observations: np.ndarray, included: np.ndarray, alpha: float = 0.01) -> StepFit:
    """Fit x_t = b_t·κ + s·ξ_t from ``observations`` (n,) and canary indicators ``included`` (n,).

    Intervals at level 1 − α/3 each (joint ≥ 1 − α). Needs at least 2 steps with and
    2 without the canary.
    """
    x = np.asarray(observations, np.float64).ravel()
    b = np.asarray(included, bool).ravel()
    if x.shape != b.shape or not np.all(np.isfinite(x)):
        raise InputError(f"fit_step: observations {x.shape} and included {b.shape} must match and be finite")
    inside, outside = x[b], x[~b]
    if inside.size < 2 or outside.size < 2:
        raise InputError(f"fit_step: {inside.size} steps with and {outside.size} without the canary; expected >= 2 each")
    level = alpha / 3.0
    n_out = outside.size
    s = float(np.sqrt(np.mean(outside**2)))  # mean 0 is known under the null: n d.f.
    s_lo = s * math.sqrt(n_out / stats.chi2.ppf(1 - level / 2, n_out))
    s_hi = s * math.sqrt(n_out / stats.chi2.ppf(level / 2, n_out))
    kappa = float(np.mean(inside))
    half = stats.norm.ppf(1 - level / 2) * s_hi / math.sqrt(inside.size)
    q_lo, q_hi = clopper_pearson(int(b.sum()), b.size, 1 - level)
    ks = stats.kstest(outside / s, "norm").pvalue
    return StepFit(
        steps=int(b.size), included=int(b.sum()), noise=(s, s_lo, s_hi),
        shift=(kappa, kappa - half, kappa + half), rate=(float(b.mean()), q_lo, q_hi),
        normality_pvalue=float(ks),
    )
