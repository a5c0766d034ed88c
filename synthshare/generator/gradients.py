"""Closed-form gradients of the study's model for DPVI: per-record, clipped and summed, and the prior's.

The DP step needs, per record n of a batch, the gradient g_n of its log-likelihood with
respect to every unconstrained latent site, clipped to norm C and summed (paper,
Methods: DPVI). Autodiff through numpyro's transforms materialises (B, D) per-example
gradients; here the same quantities are written out in the log category
probabilities, so the clipped sum costs a few (B × K) and (K × L) products. The tests
compare every function with autodiff through numpyro.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from synthshare.generator.encoding import LEVEL_COUNTS, all_levels_one_hot, design_matrix, feature_columns
from synthshare.generator.model import ModelSettings
from synthshare.variables import FEATURES


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
        picked = jnp.einsum("bl,kld->bkd", feature_columns(one_hot, j), jacobian)
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
        total = jnp.einsum("kl,kld->kd", feature_columns(counts, j), jacobian)
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
