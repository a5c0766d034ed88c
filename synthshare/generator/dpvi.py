"""DPVI on d3p 0.2.0: Poisson subsampling with masked batches, and aligned gradients.

Both classes extend :class:`d3p.svi.DPSVI` and reuse its steps (per-example
gradients, clipping, Gaussian perturbation from ``d3p.random``, optimiser step). They
change what d3p 0.2.0 lacks:

- **Poisson subsampling** (:class:`PoissonDPSVI`). ``update`` takes a party's whole
  (padded) data set and draws each step's batch itself: every record enters with
  probability q (``subsampling.poisson_batch``), packed into a batch of fixed
  capacity with a mask. Padded rows' gradients and losses are set to exactly zero.
  The clipped per-example gradients are *summed* and the Gaussian noise σ·C (C the
  clipping threshold, σ the noise multiplier) is added to that sum; the result is
  divided by the data-independent expected batch size q·N (not by the realised
  batch size, which would leak it). That quotient estimates the mean per-record
  gradient; d3p's observation scale, N for this model (see below), then scales it to
  the ELBO's full-data scale, an unbiased estimate of Σ_n ∇ℓ_n (clipping aside):

      ĝ = N · (Σ_{i∈batch} clip_C(g_i) + σ·C·ξ) / (q·N),   ξ ~ N(0, I)   (DP-SGD, eq. of
      Abadi et al. 2016 with Poisson sampling).

  d3p's per-example loss is the negative ELBO of a data set of N copies of record i,
  divided by N ("clip unscaled observations"), so C bounds the gradient of one
  record's log-likelihood plus 1/N of the prior and entropy terms.
- **Aligned gradients** (:class:`AlignedPoissonDPSVI`, DPVIm of Jälkö et al., TMLR
  2023, "aligned" variant). One guide draw z = μ + s ⊙ η is shared by the whole
  batch. Only the per-record log-likelihood gradients with respect to z (equal to the
  location gradients) are clipped and noised; the gradient with respect to the scale
  parameters is rebuilt from the noisy location gradient by the chain rule,
  ∂z/∂s = η (times the softplus derivative for the unconstrained scale), which is
  post-processing. The prior, the log-Jacobian of the constraining transforms and the
  guide entropy do not depend on the data; their gradients are added exactly, with
  no clipping or noise. (The authors' implementation kept the prior term inside the
  clipped per-example gradients, scaled by 1/N; both are DP with the same σ.)

Privacy: each step releases a Poisson-subsampled Gaussian mechanism with sensitivity
C and noise σ·C on the sum under add/remove neighbours, the mechanism the Fourier and
PLD accountants in :mod:`synthshare.generator.accounting` analyse.
"""

from __future__ import annotations

from typing import Any, Callable

import d3p.random as strong_rng
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from d3p.svi import DPSVI, DPSVIState
from numpyro.infer import Trace_ELBO
from numpyro.infer.util import constrain_fn as constrain_sites
from numpyro.infer.util import potential_energy

from synthshare.generator.subsampling import effective_rate, poisson_batch


def _zero_invalid(tree: Any, valid: jax.Array) -> Any:
    """Rows of every leaf where ``valid`` is False set to exactly 0 (also if NaN/inf)."""
    def zero(leaf: jax.Array) -> jax.Array:
        mask = valid.reshape(valid.shape + (1,) * (leaf.ndim - 1))
        return jnp.where(mask, leaf, jnp.zeros_like(leaf))
    return jax.tree_util.tree_map(zero, tree)


class PoissonDPSVI(DPSVI):
    """d3p's DPSVI (one guide draw per example, whole gradient clipped) with Poisson subsampling.

    Args:
        model, guide, optim: as for :class:`d3p.svi.DPSVI`; the model's data
            arguments are ``(codes, outcome)`` and it takes ``num_records``.
        clipping_threshold: C.
        dp_scale: σ, the noise multiplier (noise std on the gradient sum is σ·C).
        sampling_rate: nominal q; the sampler realises ``effective_rate(q)``.
        capacity: padded batch size B.
        static_kwargs: constant model keyword arguments.

    ``update(state, codes, outcome, num_records)`` takes all records of one party,
    ``codes`` (n, ...) and ``outcome`` (n,) with n ≥ num_records (rows beyond
    ``num_records`` are padding and never selected), and returns
    ``(state, loss)`` with ``loss`` an unbiased single-sample estimate of the
    full-data negative ELBO.
    """

    def __init__(
        self,
        model: Callable,
        guide: Callable,
        optim: Any,
        clipping_threshold: float,
        dp_scale: float,
        sampling_rate: float,
        capacity: int,
        rng_suite: Any = strong_rng,
        **static_kwargs: Any,
    ) -> None:
        super().__init__(
            model, guide, optim, Trace_ELBO(), clipping_threshold, dp_scale,
            rng_suite=rng_suite, clip_unscaled_observations=True, **static_kwargs,
        )
        self.sampling_rate = effective_rate(sampling_rate)
        self.capacity = int(capacity)

    def init(self, rng_key: Any, codes: jax.Array, outcome: jax.Array, *, num_records: int) -> DPSVIState:
        """d3p's init on a one-record batch, then the guide location drawn from ``rng_key``.

        d3p's observation scale is then N (checked). numpyro sets a guide's initial
        location once, when the guide first runs, so a guide shared by several parties
        would start them all at the first party's point; each party's location is
        therefore redrawn here, uniform in (−2, 2) on the unconstrained scale (numpyro's
        default ``init_to_uniform``), from its own key.
        """
        state = super().init(rng_key, codes[:1], outcome[:1], num_records=num_records)
        if abs(float(state.observation_scale) - float(num_records)) > 1e-6 * num_records:
            raise RuntimeError(
                f"model's data plate scale for one record is {state.observation_scale}, expected num_records = {num_records}"
            )
        params = dict(self.optim.get_params(state.optim_state))
        loc_name = f"{self.guide.prefix}_loc"
        init_key = jax.random.fold_in(self._rng_suite.convert_to_jax_rng_key(rng_key), 1)
        params[loc_name] = jax.random.uniform(init_key, jnp.shape(params[loc_name]), minval=-2.0, maxval=2.0)
        return DPSVIState(self.optim.init(params), state.rng_key, state.observation_scale)

    def _draw_batch(self, key: Any, codes: jax.Array, outcome: jax.Array, num_records: jax.Array):
        index, valid, _ = poisson_batch(key, codes.shape[0], num_records, self.sampling_rate, self.capacity)
        return codes[index], outcome[index], valid

    def _expected_batch(self, num_records: jax.Array) -> jax.Array:
        return self.sampling_rate * jnp.asarray(num_records, jnp.float32)

    def update(self, svi_state: DPSVIState, codes: jax.Array, outcome: jax.Array, num_records: jax.Array):
        svi_state, (batch_key, gradient_key, noise_key) = self._split_rng_key(svi_state, 3)
        batch_codes, batch_outcome, valid = self._draw_batch(batch_key, codes, outcome, num_records)
        svi_state, loss, grads = self.batch_gradients(
            svi_state, gradient_key, noise_key, batch_codes, batch_outcome, valid, num_records
        )
        svi_state = self._apply_gradient(svi_state, grads)
        return svi_state, loss

    def batch_gradients(
        self, svi_state: DPSVIState, gradient_key: Any, noise_key: Any,
        codes: jax.Array, outcome: jax.Array, valid: jax.Array, num_records: jax.Array,
    ):
        """Noisy gradient of the negative ELBO from one padded batch.

        ``codes`` (B, ...), ``outcome`` (B,), ``valid`` (B,) bool (False = padding).
        Returns ``(state, loss, grads)`` with grads in the optimiser's parameter tree.
        """
        svi_state, px_losses, px_grads, _ = self._compute_per_example_gradients(
            svi_state, gradient_key, codes, outcome, num_records=num_records
        )
        px_grads = _zero_invalid(px_grads, valid)
        px_losses = jnp.where(valid, px_losses, 0.0)
        svi_state, px_clipped = self._clip_gradients(svi_state, px_grads)
        loss_sum, grad_sum = self._combine_gradients(px_clipped, px_losses)
        expected = self._expected_batch(num_records)
        # d3p adds N(0, (σ·C/b)²) to an average over b examples; with the sum divided
        # by b = q·N that is noise σ·C on the sum, then rescaled by N.
        mean_grad = jax.tree_util.tree_map(lambda g: g / expected, grad_sum)
        svi_state, grads = self._perturb_and_reassemble_gradients(svi_state, noise_key, mean_grad, expected)
        return svi_state, loss_sum / self.sampling_rate / jnp.asarray(num_records, jnp.float32), grads

    def _combine_gradients(self, px_clipped_grads: Any, px_loss: jax.Array):
        """Sums (not means) over the batch; masked rows are zero already."""
        return jnp.sum(px_loss, axis=0), jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), px_clipped_grads)


class AlignedPoissonDPSVI(PoissonDPSVI):
    """DPVIm "aligned gradients" for an ``AutoDiagonalNormal`` guide, Poisson subsampled.

    Extra args:
        record_log_likelihood: ``f(sample, codes, outcome) -> (n,)``, the unscaled
            per-record log-likelihood given constrained latent values ``sample``
            (the model's likelihood sites, without prior).
        clipped_gradient_sum: optional closed form of the masked, clipped sum of
            per-record gradients, ``h(unconstrained, codes, outcome, valid, C) ->
            (log-likelihood (n,), norms (n,), {site: sum})`` with ``unconstrained``
            the guide's unpacked draw. When given it replaces materialising the (B, D)
            per-example gradients and d3p's clipping; ``jax.vmap(jax.grad(...))`` of
            ``record_log_likelihood`` stays the reference the tests compare it with.
        prior_log_density: optional closed form of log p(θ) + log|∂θ/∂u| given the
            unpacked unconstrained draw; default numpyro's ``potential_energy`` of the
            prior-only model.
        prior_gradient: optional closed form ``u -> (log p + log|J|, {site: gradient})``;
            when given, the data-independent terms are not differentiated by autodiff:
            their latent gradient joins the likelihood's before the chain rule.
        prior_args: model positional arguments that run the prior alone
            (default ``(None, None)``: no data, no likelihood sites).

    The guide must expose ``auto_loc`` and ``auto_scale`` (numpyro's
    ``AutoDiagonalNormal``); the latent has D dimensions and per-example gradients
    are (B, D), half of the stock variant's (B, 2D).
    """

    def __init__(
        self,
        *args: Any,
        record_log_likelihood: Callable,
        clipped_gradient_sum: Callable | None = None,
        prior_log_density: Callable | None = None,
        prior_gradient: Callable | None = None,
        prior_args: tuple = (None, None),
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._record_log_likelihood = record_log_likelihood
        self._clipped_gradient_sum = clipped_gradient_sum
        self._prior_log_density = prior_log_density
        self._prior_gradient = prior_gradient
        self._prior_args = prior_args

    def _constrained_sample(self, latent: jax.Array) -> dict[str, jax.Array]:
        unpacked = self.guide._unpack_latent(latent)
        return constrain_sites(self.model, self._prior_args, self.static_kwargs, unpacked)

    def _latent(self, params: dict, eta: jax.Array) -> jax.Array:
        """z = μ + s ⊙ η, from unconstrained optimiser parameters."""
        constrained = self.constrain_fn(params)
        return constrained[f"{self.guide.prefix}_loc"] + constrained[f"{self.guide.prefix}_scale"] * eta

    def _data_free_loss(self, params: dict, eta: jax.Array) -> jax.Array:
        """−log p(θ) − log|∂θ/∂z| + log q(z) at z = μ + s ⊙ η: the negative ELBO's
        data-independent terms for this draw (prior, Jacobian, entropy)."""
        constrained = self.constrain_fn(params)
        loc = constrained[f"{self.guide.prefix}_loc"]
        scale = constrained[f"{self.guide.prefix}_scale"]
        latent = loc + scale * eta
        unpacked = self.guide._unpack_latent(latent)
        if self._prior_log_density is not None:
            energy = -self._prior_log_density(unpacked)
        else:
            energy = potential_energy(self.model, self._prior_args, self.static_kwargs, unpacked)
        return energy + jnp.sum(dist.Normal(loc, scale).log_prob(latent))

    def per_example_gradients(self, latent: jax.Array, codes: jax.Array, outcome: jax.Array):
        """Per-record log-likelihood and its gradient w.r.t. the shared latent draw:
        (B,) and (B, D), by ``jax.vmap(jax.value_and_grad)`` through the model's
        transforms. These are the location gradients that get clipped."""
        def one(z: jax.Array, c: jax.Array, y: jax.Array) -> jax.Array:
            return self._record_log_likelihood(self._constrained_sample(z), c[None], y[None])[0]
        return jax.vmap(jax.value_and_grad(one), in_axes=(None, 0, 0))(latent, codes, outcome)

    def clipped_sum(self, svi_state: DPSVIState, latent: jax.Array, codes: jax.Array, outcome: jax.Array, valid: jax.Array):
        """(Σ valid log-likelihoods, norms (B,), Σ_n valid_n·clip_C(∇_z ℓ_n) (D,)).

        Uses the closed form when the model provides one, else d3p's clipping of the
        materialised per-example gradients.
        """
        if self._clipped_gradient_sum is not None:
            unpacked = self.guide._unpack_latent(latent)
            log_likelihood, norms, sums = self._clipped_gradient_sum(
                unpacked, codes, outcome, valid, self._clipping_threshold
            )
            # Flatten in the guide's latent layout (the order of its unpacked sites).
            flat = jnp.concatenate([jnp.reshape(sums[name], -1) for name in unpacked])
            return jnp.sum(log_likelihood), norms, flat
        px_ll, px_grads = self.per_example_gradients(latent, codes, outcome)
        px_grads = _zero_invalid(px_grads, valid)
        _, px_clipped = self._clip_gradients(svi_state, px_grads)
        norms = jnp.linalg.norm(px_grads, axis=1)
        return jnp.sum(jnp.where(valid, px_ll, 0.0)), norms, jnp.sum(px_clipped, axis=0)

    def batch_gradients(
        self, svi_state: DPSVIState, gradient_key: Any, noise_key: Any,
        codes: jax.Array, outcome: jax.Array, valid: jax.Array, num_records: jax.Array,
    ):
        params = self.optim.get_params(svi_state.optim_state)
        eta = self.shared_draw(gradient_key, jnp.shape(params[f"{self.guide.prefix}_loc"]))
        return self.aligned_gradients(svi_state, noise_key, params, eta, codes, outcome, valid, num_records)

    def shared_draw(self, gradient_key: Any, shape: tuple[int, ...]) -> jax.Array:
        """η ~ N(0, I) of one step, shared by the whole batch (DPVIm's alignment)."""
        return jax.random.normal(self._rng_suite.convert_to_jax_rng_key(gradient_key), shape)

    def standard_noise(self, noise_key: Any, shape: tuple[int, ...]) -> jax.Array:
        """ξ ~ N(0, I) of one step: the draw d3p's ``perturbation_function`` makes from
        ``noise_key`` for a one-leaf gradient tree (its first split key, then
        ``d3p.random.normal``), so that noise drawn ahead of time is the same noise."""
        return self._rng_suite.normal(self._rng_suite.split(noise_key, 1)[0], shape)

    def aligned_gradients(
        self, svi_state: DPSVIState, noise_key: Any, params: dict, eta: jax.Array,
        codes: jax.Array, outcome: jax.Array, valid: jax.Array, num_records: jax.Array,
        noise: jax.Array | None = None,
    ):
        """The aligned noisy gradient for a given shared draw η (D,).

        With σ = 0, no clipping and every record in the batch (q = 1) this is the exact
        gradient of the single-sample negative ELBO at z = μ + s ⊙ η. ``noise``: the
        step's ξ of :meth:`standard_noise`, drawn ahead of time (``noise_key`` is then
        unused); by default d3p draws it from ``noise_key``.
        """
        loc_name = f"{self.guide.prefix}_loc"
        latent, latent_vjp = jax.vjp(lambda p: self._latent(p, eta), params)
        ll_sum, _, grad_sum = self.clipped_sum(svi_state, latent, codes, outcome, valid)
        expected = self._expected_batch(num_records)
        # Noise σ·C on the sum of clipped location gradients, rescaled to Σ_n ∇_z ℓ_n.
        if noise is None:
            svi_state, noisy = self._perturb_and_reassemble_gradients(
                svi_state, noise_key, {loc_name: grad_sum / expected}, expected
            )
        else:
            # d3p's perturbation with the given ξ: mean + ξ·σ·C/(q·N), times the observation scale.
            scale = self._dp_scale * (self._clipping_threshold / expected)
            noisy = {loc_name: (grad_sum / expected + noise * scale) * svi_state.observation_scale}
        if self._prior_gradient is not None:
            unpacked = self.guide._unpack_latent(latent)
            prior, site_grads = self._prior_gradient(unpacked)
            prior_grad = jnp.concatenate([jnp.reshape(site_grads[name], -1) for name in unpacked])
            # Chain rule through z = μ + s(u) ⊙ η for likelihood and prior together; the
            # entropy term −Σ log s(u) separately (log q(z) = −Σ log s − |η|²/2 + const).
            (grads,) = latent_vjp(-(noisy[loc_name] + prior_grad))
            scale_name = f"{self.guide.prefix}_scale"
            log_q, entropy_grads = jax.value_and_grad(
                lambda p: jnp.sum(dist.Normal(0.0, self.constrain_fn(p)[scale_name]).log_prob(eta * self.constrain_fn(p)[scale_name]))
            )(params)
            grads = jax.tree_util.tree_map(jnp.add, grads, entropy_grads)
            return svi_state, -ll_sum / self.sampling_rate - prior + log_q, grads
        # Chain rule through z = μ + s(u) ⊙ η rebuilds loc and scale gradients of −Σ ℓ.
        (likelihood_grads,) = latent_vjp(-noisy[loc_name])
        data_free, data_free_grads = jax.value_and_grad(self._data_free_loss)(params, eta)
        grads = jax.tree_util.tree_map(jnp.add, likelihood_grads, data_free_grads)
        return svi_state, -ll_sum / self.sampling_rate + data_free, grads
