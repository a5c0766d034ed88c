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
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from numpyro.infer.autoguide import AutoDiagonalNormal

from synthshare.errors import InputError
from synthshare.variables import FEATURE_LEVELS, FEATURES, OUTCOME

LEVEL_COUNTS: tuple[int, ...] = tuple(len(levels) for levels in FEATURE_LEVELS.values())
"""(7, 2, 8, 4, 5): levels per feature, in :data:`FEATURES` order."""


def coefficient_names() -> list[str]:
    """Names of the regression coefficients, in the order of the ``coef`` site.

    ``Intercept`` then ``feature[level]`` for every non-reference level (22 in all);
    the same spelling as ``data/truth.json`` and the analysis stage.
    """
    names = ["Intercept"]
    for feature, levels in FEATURE_LEVELS.items():
        names.extend(f"{feature}[{level}]" for level in levels[1:])
    return names


COEFFICIENT_COUNT = 1 + sum(count - 1 for count in LEVEL_COUNTS)
"""P = 22: intercept plus one coefficient per non-reference level."""


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


def encode_records(frame: pd.DataFrame, source: str = "data frame") -> tuple[np.ndarray, np.ndarray]:
    """Level strings -> integer codes.

    Returns ``codes`` (n, 5) int32, the position of each feature's level in
    ``FEATURE_LEVELS`` (0 = reference), and ``outcome`` (n,) float32 in {0, 1}.
    Raises :class:`InputError` naming ``source``, the column and the value on an
    unknown level, a missing column or a non-boolean outcome.
    """
    for column in FEATURES + (OUTCOME,):
        if column not in frame.columns:
            raise InputError(f"{source}: missing column {column!r}; expected columns {list(FEATURES) + [OUTCOME]}")
    codes = np.empty((len(frame), len(FEATURES)), dtype=np.int32)
    for j, (feature, levels) in enumerate(FEATURE_LEVELS.items()):
        lookup = {level: i for i, level in enumerate(levels)}
        mapped = frame[feature].map(lookup)
        if mapped.isna().any():
            row = int(np.flatnonzero(mapped.isna().to_numpy())[0])
            raise InputError(
                f"{source}: row {row + 1}, column {feature!r}: unknown value {frame[feature].iloc[row]!r}; "
                f"expected one of {list(levels)}"
            )
        codes[:, j] = mapped.to_numpy(dtype=np.int32)
    if not pd.api.types.is_bool_dtype(frame[OUTCOME]):
        raise InputError(f"{source}: column {OUTCOME!r} has dtype {frame[OUTCOME].dtype}; expected bool")
    return codes, frame[OUTCOME].to_numpy(dtype=np.float32)


def decode_records(codes: np.ndarray) -> dict[str, np.ndarray]:
    """Integer codes (n, 5) -> level strings per feature (object arrays), the inverse of encoding."""
    return {
        feature: np.asarray(levels, dtype=object)[np.asarray(codes[:, j])]
        for j, (feature, levels) in enumerate(FEATURE_LEVELS.items())
    }


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


_COLUMN_FEATURE = np.repeat(np.arange(len(LEVEL_COUNTS)), LEVEL_COUNTS)
_COLUMN_LEVEL = np.concatenate([np.arange(count) for count in LEVEL_COUNTS])
_COLUMN_START = np.concatenate([[0], np.cumsum(LEVEL_COUNTS)[:-1]])
_NON_REFERENCE = np.flatnonzero(_COLUMN_LEVEL > 0)


def all_levels_one_hot(codes: jax.Array) -> jax.Array:
    """Codes (..., 5) -> one column per level of every feature (..., 26), float32 0/1.

    Columns follow ``FEATURE_LEVELS`` (feature by feature, level by level); one
    comparison builds all five one-hot blocks at once.
    """
    return (codes[..., _COLUMN_FEATURE] == _COLUMN_LEVEL).astype(jnp.float32)


def design_matrix(codes: jax.Array) -> jax.Array:
    """Reference-coded design φ(x) with intercept: codes (..., 5) -> (..., P), float32 0/1.

    Column order is :func:`coefficient_names`; a feature at its reference level
    (code 0) has all its columns 0.
    """
    one_hot = all_levels_one_hot(codes)
    return jnp.concatenate([jnp.ones(codes.shape[:-1] + (1,), jnp.float32), one_hot[..., _NON_REFERENCE]], axis=-1)


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


def log_categorical(u: jax.Array, binary: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Log-probabilities of categorical rows from their unconstrained values, with Jacobian.

    numpyro's transforms, written out so that nothing needs ``cumprod`` or autodiff:

    - simplex rows (Dirichlet sites, ``u`` (..., d), L = d + 1): stick-breaking with
      x_i = u_i − log(d − i), z_i = σ(x_i); θ_i = z_i Π_{j<i}(1 − z_j) (i < d) and
      θ_d = Π_{j<d}(1 − z_j). So log θ is linear in log z and log(1 − z):
      log θ_i = [i<d] log z_i + Σ_{j<i} log(1 − z_j), and
      ∂log θ_i/∂u_j = [i = j](1 − z_j) − [j < i] z_j.
      log|det ∂θ_{:d}/∂u| = Σ_{i<d} (log θ_i + log(1 − z_i)).
    - binary sites (Beta, ``u`` (...,), ``binary=True``): p = σ(u) is the second level's
      probability, log θ = (log(1 − p), log p), ∂log θ/∂u = (−p, 1 − p),
      log|dp/du| = log p + log(1 − p).

    Returns ``(log θ (..., L), Jacobian (..., L, d), log|det|) (...)`` with d = 1 for
    binary sites. Numerically, log σ is used directly rather than log of a clipped σ.
    """
    if binary:
        log_p, log_q = jax.nn.log_sigmoid(u), jax.nn.log_sigmoid(-u)
        p = jnp.exp(log_p)
        table = jnp.stack([log_q, log_p], axis=-1)
        jacobian = jnp.stack([-p, 1.0 - p], axis=-1)[..., None]
        return table, jacobian, log_p + log_q
    d = u.shape[-1]
    x = u - jnp.log(d - jnp.arange(d, dtype=u.dtype))
    log_z, log_1mz = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    z = jnp.exp(log_z)
    rows, cols = np.arange(d + 1)[:, None], np.arange(d)[None, :]
    on = jnp.asarray(rows == cols, u.dtype)  # (L, d): log z_i enters log θ_i
    below = jnp.asarray(cols < rows, u.dtype)  # (L, d): log(1 − z_j) enters log θ_i for j < i
    table = log_z @ on.T + log_1mz @ below.T
    jacobian = on * (1.0 - z)[..., None, :] - below * z[..., None, :]
    log_det = jnp.sum(table[..., :d] + log_1mz, axis=-1)
    return table, jacobian, log_det


def _record_terms(unconstrained: dict[str, jax.Array], codes: jax.Array, outcome: jax.Array):
    """Forward pass shared by the closed-form gradients.

    Returns the log-likelihood (B,), responsibilities ρ (B, K), the all-levels one-hot
    codes (B, 26), each feature's log-table Jacobian (K, L_j, d_j), the weights'
    Jacobian (K, K-1), the design (B, P) and the Poisson residual y − λ (B,). The five
    features share one (B, 26) × (26, K) product rather than five small ones: on a CPU
    the number of operations per step, not their size, sets the cost.
    """
    log_weights, jac_weights, _ = log_categorical(unconstrained["weights"])
    tables, jacobians = [], []
    for feature, count in zip(FEATURES, LEVEL_COUNTS):
        table, jacobian, _ = log_categorical(unconstrained[f"probs_{feature}"], binary=count == 2)
        tables.append(table)
        jacobians.append(jacobian)
    one_hot = all_levels_one_hot(codes)
    logits = log_weights[None, :] + one_hot @ jnp.concatenate(tables, axis=1).T
    log_features = jax.nn.logsumexp(logits, axis=1)
    responsibility = jnp.exp(logits - log_features[:, None])
    design = design_matrix(codes)
    eta = design @ unconstrained["coef"]
    rate = jnp.exp(eta)
    log_likelihood = log_features + outcome * eta - rate - jax.scipy.special.gammaln(outcome + 1.0)
    return log_likelihood, responsibility, one_hot, jacobians, jac_weights, design, outcome - rate


def _feature_columns(one_hot: jax.Array, j: int) -> jax.Array:
    """Feature j's block of an all-levels array (..., 26) -> (..., L_j)."""
    start = int(_COLUMN_START[j])
    return one_hot[..., start:start + LEVEL_COUNTS[j]]


def record_gradients(
    unconstrained: dict[str, jax.Array], codes: jax.Array, outcome: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-record log-likelihood and its gradient w.r.t. every unconstrained latent site.

    The same quantity as ``jax.vmap(jax.grad(...))`` of :func:`record_log_likelihood`
    composed with the constraining transforms (the tests compare the two), in closed
    form in the log category probabilities:

        ℓ_n = logsumexp_r(log π_r + Σ_j log θ_j^(r)[x_nj]) + y_n η_n − e^{η_n} − log y_n!
        ∂ℓ_n/∂u_π = J_π^T ρ_n,   ∂ℓ_n/∂u_j^(r) = ρ_nr · J_j^(r)[x_nj, :],   ∂ℓ_n/∂w = (y_n − e^{η_n}) φ(x_n),

    with ρ_n the component responsibilities and J the Jacobians of log ∘ transform of
    each (small) categorical row, from ``jax.jacfwd``.

    Args:
        unconstrained: latent sites on the unconstrained scale (the guide's unpacked draw).
        codes: (B, 5) int; outcome: (B,) float.

    Returns:
        ``(log_likelihood (B,), {site: (B, *site shape)})``.
    """
    log_likelihood, resp, one_hot, jacobians, jac_weights, design, residual = _record_terms(unconstrained, codes, outcome)
    grads = {"weights": resp @ jac_weights}
    for j, (feature, count, jacobian) in enumerate(zip(FEATURES, LEVEL_COUNTS, jacobians)):
        picked = jnp.einsum("bl,kld->bkd", _feature_columns(one_hot, j), jacobian)
        grad = resp[:, :, None] * picked  # (B, K, d)
        grads[f"probs_{feature}"] = grad[:, :, 0] if count == 2 else grad
    grads["coef"] = residual[:, None] * design
    return log_likelihood, grads


def clipped_gradient_sum(
    unconstrained: dict[str, jax.Array], codes: jax.Array, outcome: jax.Array, valid: jax.Array, clip: float
) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """Σ_n valid_n · clip_C(∇ℓ_n) without forming the (B, D) per-record gradients.

    With g_n the gradient of :func:`record_gradients` and
    c_n = valid_n · min(1, C / ‖g_n‖), returns the per-record log-likelihood (B,), the
    norms ‖g_n‖ (B,) and Σ_n c_n g_n per site. Both are linear in ρ_n and one-hot codes,
    so (per feature j, component r, level l; N_j the row norms² of J_j)

        ‖g_n‖² = ‖J_π^T ρ_n‖² + Σ_j Σ_r ρ_nr² N_j^(r)[x_nj] + (y_n − λ_n)² ‖φ(x_n)‖²
        Σ_n c_n g_n|_{j,r} = Σ_l (Σ_n c_n ρ_nr [x_nj = l]) J_j^(r)[l, :]

    a few (B × K) and (K × L) products instead of B × D work: the same clipped sum
    d3p's per-example path computes, much faster on a CPU.
    """
    log_likelihood, resp, one_hot, jacobians, jac_weights, design, residual = _record_terms(unconstrained, codes, outcome)
    weights_grad = resp @ jac_weights  # (B, K-1), small
    row_norms = jnp.concatenate([jnp.sum(jacobian**2, axis=-1) for jacobian in jacobians], axis=1)  # (K, 26)
    squared = (jnp.sum(weights_grad**2, axis=1) + residual**2 * jnp.sum(design, axis=1)
               + jnp.sum(resp**2 * (one_hot @ row_norms.T), axis=1))
    norms = jnp.sqrt(squared)
    # Masked rows get factor 0 through `where`, so a NaN in a padded row cannot leak.
    factor = jnp.where(valid, jnp.minimum(1.0, clip / jnp.maximum(norms, 1e-30)), 0.0)
    weighted = factor[:, None] * resp  # (B, K)
    sums = {"weights": jnp.sum(weighted, axis=0) @ jac_weights}
    counts = weighted.T @ one_hot  # (K, 26)
    for j, (feature, count, jacobian) in enumerate(zip(FEATURES, LEVEL_COUNTS, jacobians)):
        total = jnp.einsum("kl,kld->kd", _feature_columns(counts, j), jacobian)
        sums[f"probs_{feature}"] = total[:, 0] if count == 2 else total
    sums["coef"] = design.T @ (factor * residual)
    return jnp.where(valid, log_likelihood, 0.0), norms, sums


def prior_log_density(unconstrained: dict[str, jax.Array], settings: ModelSettings) -> jax.Array:
    """log p(T(u)) + log|det ∂T/∂u| for the latent sites on the unconstrained scale.

    The same value as minus numpyro's ``potential_energy`` of the prior-only model
    (the tests compare them), written out with :func:`log_categorical`: Dirichlet(α)
    (Beta(α, α) for binary features) densities of the category probabilities,
    Normal(0, s²) of the coefficients, and the transforms' log-Jacobians. Cheaper to
    differentiate than tracing the model through numpyro's handlers, once per DPVI step.
    """
    alpha = settings.dirichlet_concentration
    gammaln = jax.scipy.special.gammaln
    total = jnp.asarray(0.0)
    sites = [("weights", False)] + [(f"probs_{f}", c == 2) for f, c in zip(FEATURES, LEVEL_COUNTS)]
    for site, binary in sites:
        table, _, log_det = log_categorical(unconstrained[site], binary=binary)
        count = table.shape[-1]
        log_norm = gammaln(alpha * count) - count * gammaln(alpha)
        total = total + jnp.sum(log_norm + (alpha - 1.0) * jnp.sum(table, axis=-1) + log_det)
    coef = unconstrained["coef"]
    scale = settings.coef_prior_scale
    return total + jnp.sum(-0.5 * (coef / scale) ** 2 - jnp.log(scale) - 0.5 * jnp.log(2.0 * jnp.pi))


def prior_log_density_and_gradient(
    unconstrained: dict[str, jax.Array], settings: ModelSettings
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`prior_log_density` and its gradient per site, in closed form.

    With c_i = (α − 1) + [i < d] the weight of log θ_i in a simplex site's density plus
    log-Jacobian, the gradient is c·J − z (J from :func:`log_categorical`, z the stick
    fractions); a binary site's is α(1 − 2p); the coefficients' −w/s². The tests compare
    it with autodiff of :func:`prior_log_density`.
    """
    alpha = settings.dirichlet_concentration
    grads = {}
    for site, binary in [("weights", False)] + [(f"probs_{f}", c == 2) for f, c in zip(FEATURES, LEVEL_COUNTS)]:
        u = unconstrained[site]
        if binary:
            grads[site] = alpha * (1.0 - 2.0 * jax.nn.sigmoid(u))
            continue
        d = u.shape[-1]
        _, jacobian, _ = log_categorical(u)
        weight = (alpha - 1.0) + jnp.asarray(np.arange(d + 1) < d, u.dtype)  # (L,)
        stick = jax.nn.sigmoid(u - jnp.log(d - jnp.arange(d, dtype=u.dtype)))
        grads[site] = jnp.einsum("l,...ld->...d", weight, jacobian) - stick
    grads["coef"] = -unconstrained["coef"] / settings.coef_prior_scale**2
    return prior_log_density(unconstrained, settings), grads


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
