"""Mechanism test of the DPVI step (issue 13, item 6): a white-box canary audit.

After Nasr et al. (USENIX Security 2023, "Tight auditing of differentially private
machine learning"): the auditor sees every privatised gradient, knows the other
records and the code, and inserts a canary whose clipped gradient it knows. Here:

- D' = 10 ordinary records + a canary with outcome y = 50 (no real record has y > 1):
  its Poisson log-likelihood gradient (y − λ)·φ(x) has norm ≫ C, so a correct step
  clips it to norm exactly C. The guide scale is set to 1e-4, so its direction is
  (to ~1e-4) the same at every step; u is that direction.
- The production DPVI object (``synthshare.generator.fit.build_dpvi``, both variants,
  the real Poisson sampler at the default q = 0.01, capacity N + 1 so no batch is
  truncated) runs its real ``update`` under ``jax.vmap`` over independent chains and
  ``lax.scan`` over steps. A test-local subclass hooks ``batch_gradients``: it keeps
  the step's privatised gradient, subtracts the same step's gradient computed by a
  noiseless twin (σ = 0, same keys) on the batch without the canary — the other
  records' clipped contributions cancel exactly, so the remainder is the canary's
  clipped gradient if it was drawn plus the noise — and returns the projection
  x_t = q·⟨·, u⟩/C and whether the canary was drawn. The parameters are held fixed
  (``_apply_gradient`` is the identity), so every step is the same mechanism, the
  tight case of the composition the accountant bounds.
- :func:`synthshare.audit.mechanism.fit_step` fits x_t = b_t·κ + s·ξ_t (noise s, shift
  κ, rate q, each with an interval; joint level 99 %), and the implied μ-GDP of T
  steps, μ = q·√(T(e^{1/σ_e²} − 1)) with σ_e = s/κ, is compared with the μ the same
  formula gives for the (σ, q_eff, T) the ledger states.

The check passes when the stated μ lies inside the measured interval (tight in both
directions) and the canary-free x look Gaussian (KS p > 10⁻³). The same check must
fail on two deliberately broken steps, built here as test-local subclasses: noise
halved (μ rises ~5.6× at σ = 1) and clipping skipped (κ ≈ 60).

Measured (seeds fixed; see the report of the audit-groundwork branch): correct steps
μ ≈ 1.23 (aligned) and 1.20 (stock), intervals ≈ [0.70, 2.12], against the stated
1.312 for σ = 1, q_eff = 0.0103, T = 10⁴; halved noise μ ≈ 7.0, interval from 1.9;
skipped clipping κ ≈ 61, μ = ∞.
"""

from __future__ import annotations


import d3p.random as strong_rng
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from synthshare.audit.mechanism import fit_step, gdp_epsilon, gdp_mu
from synthshare.generator.compilation import compile_for_one_thread
from synthshare.generator.fit import build_dpvi
from synthshare.generator.settings import GeneratorSettings
from synthshare.generator.subsampling import effective_rate
from tests.generator_helpers import random_codes

SIGMA = 1.0
CLIP = 2.0
Q = 0.01
OTHERS = 10
CANARY_OUTCOME = 50.0
CLAIMED_STEPS = 10_000
"""T whose μ is compared (100 epochs at q = 0.01); both μ scale as √T, so the verdict holds for any T."""
DELTA = 1e-6


def _flat(grads: dict, variant: str) -> jax.Array:
    # Aligned: only the location gradient carries the noise (the scale's is rebuilt from it).
    if variant == "aligned":
        return grads["auto_loc"]
    return jnp.concatenate([grads["auto_loc"], grads["auto_scale"]])


def _observed(dpvi, twin, variant: str):
    """The step under test with the observation hook and frozen parameters."""
    base = type(dpvi)

    class Observed(base):
        def batch_gradients(self, svi_state, gradient_key, noise_key, codes, outcome, valid, num_records):
            state, _, grads = base.batch_gradients(
                self, svi_state, gradient_key, noise_key, codes, outcome, valid, num_records)
            canary = valid & (outcome > 1.5)
            _, _, rest = twin.batch_gradients(
                svi_state, gradient_key, noise_key, codes, outcome, valid & ~canary, num_records)
            difference = _flat(grads, variant) - _flat(rest, variant)
            x = self.sampling_rate * jnp.dot(difference, self.audit_direction) / CLIP
            return state, jnp.stack([x, jnp.any(canary).astype(x.dtype)]), grads

        def _apply_gradient(self, svi_state, grads):
            return svi_state

    observed = Observed.__new__(Observed)
    observed.__dict__.update(dpvi.__dict__)
    return observed


class HalvedNoise:
    """Broken step: half the noise the ledger's σ promises (d3p's perturbation with σ/2)."""

    def _perturb_and_reassemble_gradients(self, svi_state, key, grads, batch_size):
        stated = self._dp_scale
        self._dp_scale = stated / 2.0  # read while tracing; restored at once
        try:
            return super()._perturb_and_reassemble_gradients(svi_state, key, grads, batch_size)
        finally:
            self._dp_scale = stated


class SkippedClipping:
    """Broken step: per-example gradients summed unclipped."""

    def _clip_gradients(self, svi_state, px_grads):  # stock variant's (and the aligned autodiff path's) clipping
        return svi_state, px_grads

    def clipped_sum(self, svi_state, latent, codes, outcome, valid):  # aligned closed form
        unpacked = self.guide._unpack_latent(latent)
        log_likelihood, norms, sums = self._clipped_gradient_sum(unpacked, codes, outcome, valid, 1e30)
        flat = jnp.concatenate([jnp.reshape(sums[name], -1) for name in unpacked])
        return jnp.sum(log_likelihood), norms, flat


def _build(variant: str, sigma: float, broken=None):
    settings = GeneratorSettings(components=2, variant=variant, sampling_rate=Q, clip=CLIP)
    dpvi = build_dpvi(settings, sigma, OTHERS + 1)
    if broken is not None:
        cls = type(f"{broken.__name__}{type(dpvi).__name__}", (broken, type(dpvi)), {})
        instance = cls.__new__(cls)
        instance.__dict__.update(dpvi.__dict__)
        dpvi = instance
    return dpvi


def _data():
    codes, outcome = random_codes(np.random.default_rng(7), OTHERS + 1)
    codes[-1] = (6, 1, 6, 3, 4)  # the canary: a rare cell, last record (index N)
    outcome[-1] = CANARY_OUTCOME
    return jnp.asarray(codes), jnp.asarray(outcome)


def _frozen_state(dpvi, codes, outcome):
    state = dpvi.init(strong_rng.PRNGKey(11), codes, outcome, num_records=OTHERS + 1)
    params = dict(dpvi.optim.get_params(state.optim_state))
    small = biject_to(constraints.softplus_positive).inv(jnp.full_like(params["auto_scale"], 1e-4))
    params["auto_scale"] = small
    return state._replace(optim_state=dpvi.optim.init(params))


def _direction(twin, state, codes, outcome, variant: str) -> jax.Array:
    """Unit direction of the canary's clipped gradient contribution at the frozen state."""
    key_gradient, key_noise = strong_rng.split(strong_rng.PRNGKey(5), 2)
    only = jnp.arange(OTHERS + 1) == 0
    batch = (jnp.roll(codes, 1, axis=0), jnp.roll(outcome, 1))  # canary in slot 0

    @jax.jit  # one program rather than op-by-op dispatch of the per-example gradients
    def direction(state):
        with_canary = twin.batch_gradients(state, key_gradient, key_noise, *batch, only, OTHERS + 1)[2]
        without = twin.batch_gradients(state, key_gradient, key_noise, *batch, jnp.zeros_like(only), OTHERS + 1)[2]
        difference = _flat(with_canary, variant) - _flat(without, variant)
        return difference / jnp.linalg.norm(difference)

    return direction(state)


def observe(variant: str, broken=None, chains: int = 100, steps: int = 200, seed: int = 0):
    """Run the (possibly broken) production step; returns x (chains·steps,) and canary flags."""
    codes, outcome = _data()
    dpvi = _build(variant, SIGMA, broken)
    twin = _build(variant, 0.0, broken)
    state = _frozen_state(dpvi, codes, outcome)
    twin.init(strong_rng.PRNGKey(11), codes, outcome, num_records=OTHERS + 1)  # sets up its guide and transforms
    observed = _observed(dpvi, twin, variant)
    observed.audit_direction = _direction(twin, state, codes, outcome, variant)
    keys = strong_rng.split(strong_rng.PRNGKey(1000 + seed), chains)
    states = jax.tree_util.tree_map(lambda leaf: jnp.broadcast_to(leaf, (chains,) + jnp.shape(leaf)), state)
    states = states._replace(rng_key=keys)
    step = jax.vmap(observed.update, in_axes=(0, None, None, None))
    # Compiled as the production fits are (one compile-time thread: many small operations per step).
    run = compile_for_one_thread(
        lambda s: jax.lax.scan(lambda s, _: step(s, codes, outcome, OTHERS + 1), s, None, length=steps)[1], states)
    out = np.asarray(run(states), np.float64).reshape(-1, 2)
    return out[:, 0], out[:, 1] > 0.5


CLAIMED_MU = gdp_mu(SIGMA, effective_rate(Q), CLAIMED_STEPS)


@pytest.mark.parametrize("variant,chains,steps", [("aligned", 150, 150), ("stock", 100, 200)])
def test_correct_step_matches_the_accountant(variant, chains, steps):
    x, included = observe(variant, chains=chains, steps=steps)
    fit = fit_step(x, included, alpha=0.01)
    mu, mu_lo, mu_hi = fit.mu(CLAIMED_STEPS)
    print(f"{variant}: steps={fit.steps} drawn={fit.included} s={fit.noise} kappa={fit.shift} q={fit.rate} "
          f"mu={mu:.4g} [{mu_lo:.4g}, {mu_hi:.4g}] claimed {CLAIMED_MU:.4g}; "
          f"eps(δ={DELTA:g}) {gdp_epsilon(mu, DELTA):.4g} [{gdp_epsilon(mu_lo, DELTA):.4g}, "
          f"{gdp_epsilon(mu_hi, DELTA):.4g}] claimed {gdp_epsilon(CLAIMED_MU, DELTA):.4g}; KS p={fit.normality_pvalue:.3g}")
    assert fit.normality_pvalue > 1e-3
    assert mu_lo <= CLAIMED_MU <= mu_hi
    # The pieces, too: noise σ·C on the sum, canary clipped to exactly C, rate q_eff.
    assert fit.noise[1] <= SIGMA <= fit.noise[2]
    assert fit.shift[1] <= 1.0 <= fit.shift[2]
    assert fit.rate[1] <= effective_rate(Q) <= fit.rate[2]


@pytest.mark.parametrize("variant,broken,chains,steps", [
    ("aligned", HalvedNoise, 50, 100), ("aligned", SkippedClipping, 20, 50), ("stock", SkippedClipping, 20, 50),
])
def test_broken_step_is_caught(variant, broken, chains, steps):
    """Fewer steps than the correct run: the broken steps leak far more (skipped clipping:
    κ ≈ 60, so a few canary draws suffice). Skipped clipping on both variants (each
    clips in its own code: the closed-form sum, d3p's per-example clipping); halved noise
    once, since both variants add noise through the same d3p perturbation."""
    x, included = observe(variant, broken=broken, chains=chains, steps=steps, seed=1)
    fit = fit_step(x, included, alpha=0.01)
    mu, mu_lo, mu_hi = fit.mu(CLAIMED_STEPS)
    print(f"{variant} {broken.__name__}: s={fit.noise} kappa={fit.shift} mu={mu:.4g} [{mu_lo:.4g}, {mu_hi:.4g}] "
          f"claimed {CLAIMED_MU:.4g}; eps {gdp_epsilon(mu_lo, DELTA):.4g}.. vs {gdp_epsilon(CLAIMED_MU, DELTA):.4g}")
    assert mu_lo > CLAIMED_MU
