"""The study's generative model for one party, and its variational guide.

Per party (method.md "Generative model"; paper Methods, eqs. for G_m):

    π ~ Dirichlet(α·1_K)                                   mixture weights, K = 16
    θ_j^(r) ~ Dirichlet(α·1_{L_j})   (Beta(α, α) if L_j = 2) per component r, feature j
    w ~ Normal(0, s²·I_P)                                  Poisson regression, P = 22
    x_n ~ Σ_r π_r Π_j Categorical(x_nj | θ_j^(r))
    y_n | x_n ~ Poisson(exp(w·φ(x_n)))

with φ(x) the reference coding of the five features plus an intercept (first-listed
level = reference, :data:`synthshare.variables.FEATURE_LEVELS`). Defaults α = 1, s = 1.

Records enter the model as integer codes ``(n, 5)`` (level positions) and the outcome
as a float 0/1 vector ``(n,)``. The data plate is scaled by ``num_records / n``, the
usual minibatch scaling, so one evaluation on a batch is an unbiased estimate of the
full-data log joint; ``num_records`` may be a traced value (one model serves parties of
different sizes inside one vectorised program).

The guide is numpyro's ``AutoDiagonalNormal`` over the unconstrained latent vector
(373 dimensions at K = 16), initial scale 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.infer.autoguide import AutoDiagonalNormal

from synthshare.errors import InputError
from synthshare.generator.encoding import COEFFICIENT_COUNT, LEVEL_COUNTS, all_levels_one_hot, design_matrix
from synthshare.variables import FEATURES


@dataclass(frozen=True)
class ModelSettings:
    """Hyperparameters of the generative model (config ``generator:``)."""

    components: int = 16
    """K, mixture components."""
    dirichlet_concentration: float = 1.0
    """α of the Dirichlet priors on weights and category probabilities (Beta(α, α) for binary features)."""
    coef_prior_scale: float = 1.0
    """s, standard deviation of the Normal prior on every regression coefficient."""

    def __post_init__(self) -> None:
        if int(self.components) != self.components or self.components < 1:
            raise InputError(f"generator.components: {self.components!r}; expected a positive integer")
        if not self.dirichlet_concentration > 0:
            raise InputError(f"generator.dirichlet_concentration: {self.dirichlet_concentration!r}; expected > 0")
        if not self.coef_prior_scale > 0:
            raise InputError(f"generator.coef_prior_scale: {self.coef_prior_scale!r}; expected > 0")


class FeatureMixture(dist.Distribution):
    """Mixture of products of independent categoricals over the five features.

    p(x) = Σ_r π_r Π_j θ_j^(r)[x_j]   (paper, Methods, first equation of G_m)

    Args:
        weights: (K,) mixture weights π.
        probs: one (K, L_j) array of category probabilities per feature.

    ``log_prob(codes)`` takes integer codes (..., 5) and returns (...,).
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.nonnegative_integer, 1)
    pytree_data_fields = ("weights", "probs")

    def __init__(self, weights: jax.Array, probs: tuple[jax.Array, ...], validate_args: bool | None = None):
        self.weights = weights
        self.probs = tuple(probs)
        super().__init__(batch_shape=(), event_shape=(len(self.probs),), validate_args=validate_args)

    def component_log_prob(self, codes: jax.Array) -> jax.Array:
        """log π_r + Σ_j log θ_j^(r)[x_j] for every component: (..., 5) -> (..., K)."""
        # One product with all features' one-hot codes rather than gathers: XLA's CPU
        # gathers are slow and their gradients are scatters; a dot is fast both ways.
        tables = jnp.concatenate([jnp.log(probs) for probs in self.probs], axis=1)  # (K, 26)
        return jnp.log(self.weights) + all_levels_one_hot(codes) @ tables.T

    def log_prob(self, value: jax.Array) -> jax.Array:
        return jax.nn.logsumexp(self.component_log_prob(value), axis=-1)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Codes (*sample_shape, 5), int32: a component, then each feature given it."""
        keys = jax.random.split(key, len(self.probs) + 1)
        component = jax.random.categorical(keys[0], jnp.log(self.weights), shape=sample_shape)
        columns = [
            jax.random.categorical(keys[j + 1], jnp.log(probs)[component], axis=-1)
            for j, probs in enumerate(self.probs)
        ]
        return jnp.stack(columns, axis=-1).astype(jnp.int32)


def log_rate(coef: jax.Array, codes: jax.Array) -> jax.Array:
    """Linear predictor w·φ(x) of the Poisson regression: coef (P,), codes (..., 5) -> (...,)."""
    return design_matrix(codes) @ coef


def feature_probabilities(sample: dict[str, jax.Array]) -> tuple[jax.Array, ...]:
    """Per-feature (K, L_j) category probabilities from the latent sites (Beta sites -> [1-p, p])."""
    probs = []
    for feature, count in zip(FEATURES, LEVEL_COUNTS):
        value = sample[f"probs_{feature}"]
        probs.append(jnp.stack([1.0 - value, value], axis=-1) if count == 2 else value)
    return tuple(probs)


def record_log_likelihood(sample: dict[str, jax.Array], codes: jax.Array, outcome: jax.Array) -> jax.Array:
    """log p(x_n, y_n | parameters) per record, unscaled: codes (n, 5), outcome (n,) -> (n,)."""
    features = FeatureMixture(sample["weights"], feature_probabilities(sample)).log_prob(codes)
    return features + dist.Poisson(jnp.exp(log_rate(sample["coef"], codes))).log_prob(outcome)


def generative_model(
    codes: jax.Array | None,
    outcome: jax.Array | None,
    *,
    num_records: float | jax.Array = 1.0,
    settings: ModelSettings = ModelSettings(),
) -> None:
    """The numpyro model. ``codes=None`` gives the prior alone (no likelihood sites).

    Latent sites, in the order the guide flattens them: ``weights`` (K,),
    ``probs_<feature>`` (K, L_j) — (K,) for the binary ``sex``, the probability of its
    second level —, ``coef`` (P,).
    """
    k = settings.components
    alpha = settings.dirichlet_concentration
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.full((k,), alpha)))
    sample = {"weights": weights}
    with numpyro.plate("components", k):
        for feature, count in zip(FEATURES, LEVEL_COUNTS):
            prior = dist.Beta(alpha, alpha) if count == 2 else dist.Dirichlet(jnp.full((count,), alpha))
            sample[f"probs_{feature}"] = numpyro.sample(f"probs_{feature}", prior)
    coef = numpyro.sample(
        "coef", dist.Normal(0.0, settings.coef_prior_scale).expand([COEFFICIENT_COUNT]).to_event(1)
    )
    if codes is None:
        return
    batch = codes.shape[0]
    with numpyro.plate("records", batch), numpyro.handlers.scale(scale=num_records / batch):
        numpyro.sample("features", FeatureMixture(weights, feature_probabilities(sample)), obs=codes)
        numpyro.sample("outcome", dist.Poisson(jnp.exp(log_rate(coef, codes))), obs=outcome)


def make_guide(model=generative_model, init_scale: float = 0.1) -> AutoDiagonalNormal:
    """AutoDiagonalNormal over the model's latent vector, initial scale ``init_scale``.

    Initial locations: numpyro's default ``init_to_uniform`` (uniform in (-2, 2) on the
    unconstrained scale), drawn from the fit's seed.
    """
    if not init_scale > 0:
        raise InputError(f"generator.init_scale: {init_scale!r}; expected > 0")
    return AutoDiagonalNormal(model, init_scale=init_scale)
