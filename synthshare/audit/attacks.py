"""Membership-inference scores of one target against one released generator fit.

Each function returns a score that is higher when the target looks like a member.
A record is its 6 codes (five feature level positions and the outcome 0/1, as in
:func:`synthshare.audit.targets.record_codes`); its *cell* is the combination of all
six, one of 7·2·8·4·5·2 = 4,480.

- :func:`cell_count` (black box): how often the target's cell occurs in the released
  synthetic sets, per set.
- :func:`density_ratio` (black box, DOMIAS-style: van Breugel et al., AISTATS 2023):
  log p_syn(target) − log p_ref(target), with p_syn a density fitted to the synthetic
  sets and p_ref one fitted to reference records the attacker knows (the party's
  other records). Both densities are the cell model with additive smoothing,
  p(cell) = (count + a)/(n + a·4480), a = 0.5 (Jeffreys' pseudo-count): a member
  inflates its cell in the synthetic data relative to what the population predicts.
- :func:`log_probability` (white box): log of the target's probability under the
  fitted generator, log E_{q(z)} p(x, y | z) estimated by log-mean-exp over draws of the
  released guide N(loc, diag(scale²)) (``params.npz``), evaluated in float64 with
  logsumexp throughout (no probability is formed, so nothing underflows to 0).
"""

from __future__ import annotations

import json
import math
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import enable_x64

from synthshare.errors import InputError
from synthshare.generator.encoding import LEVEL_COUNTS, all_levels_one_hot, design_matrix
from synthshare.generator.gradients import log_categorical
from synthshare.variables import FEATURES

CELL_SHAPE: tuple[int, ...] = tuple(LEVEL_COUNTS) + (2,)
"""(7, 2, 8, 4, 5, 2): levels per record column, outcome last."""

CELLS = int(np.prod(CELL_SHAPE))
"""4,480 cells."""

PSEUDO_COUNT = 0.5
"""Additive smoothing of the cell model (Jeffreys)."""


def cell_index(records: np.ndarray) -> np.ndarray:
    """Records (..., 6) codes -> flat cell index (...,) in [0, 4480)."""
    records = np.asarray(records)
    if records.shape[-1] != len(CELL_SHAPE) or not np.issubdtype(records.dtype, np.integer):
        raise InputError(f"records: shape {records.shape}, dtype {records.dtype}; expected (..., 6) integer codes")
    if np.any(records < 0) or np.any(records >= np.asarray(CELL_SHAPE)):
        raise InputError(f"records: codes outside the levels {CELL_SHAPE}")
    return np.ravel_multi_index(tuple(np.moveaxis(records, -1, 0)), CELL_SHAPE)


def cell_count(target: np.ndarray, synthetic: np.ndarray, sets: int) -> float:
    """Black box: occurrences of the target's cell in the synthetic records, per set.

    ``target`` (6,), ``synthetic`` (M, 6) the K = ``sets`` released sets stacked.
    """
    if sets < 1:
        raise InputError(f"cell_count: sets = {sets}; expected >= 1")
    return float(np.sum(cell_index(synthetic) == cell_index(target))) / sets


def cell_log_density(records: np.ndarray, pseudo_count: float = PSEUDO_COUNT) -> np.ndarray:
    """(4480,) log p(cell) of the additively smoothed cell model fitted to ``records`` (n, 6)."""
    if not pseudo_count > 0:
        raise InputError(f"pseudo_count: {pseudo_count!r}; expected > 0")
    counts = np.bincount(cell_index(records).ravel(), minlength=CELLS).astype(np.float64)
    return np.log(counts + pseudo_count) - math.log(counts.sum() + pseudo_count * CELLS)


def density_ratio(target: np.ndarray, synthetic: np.ndarray, reference: np.ndarray,
                  pseudo_count: float = PSEUDO_COUNT) -> float:
    """Black box, DOMIAS-style: log p_syn(target) − log p_ref(target) (cell models)."""
    cell = cell_index(target)
    return float(cell_log_density(synthetic, pseudo_count)[cell] - cell_log_density(reference, pseudo_count)[cell])


def read_guide(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[tuple[str, tuple[int, ...]], ...]]:
    """``params.npz`` -> (loc (D,), scale (D,), layout), float64, checked against each other."""
    with np.load(path, allow_pickle=False) as data:
        loc, scale = np.asarray(data["loc"], np.float64), np.asarray(data["scale"], np.float64)
        layout = tuple((str(site), tuple(int(d) for d in shape)) for site, shape in json.loads(str(data["layout"])))
    size = sum(int(np.prod(shape)) for _, shape in layout)
    if loc.shape != (size,) or scale.shape != (size,) or not np.all(scale > 0):
        raise InputError(f"{path}: loc {loc.shape}, scale {scale.shape} for a layout of {size} values; expected equal sizes and scale > 0")
    return loc, scale, layout


def _unpack(flat: jax.Array, layout) -> dict[str, jax.Array]:
    """(S, D) draws -> {site: (S, *shape)} in the guide's flat order."""
    sites, start = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape))
        sites[name] = flat[:, start:start + size].reshape((flat.shape[0],) + tuple(shape))
        start += size
    return sites


def _record_log_likelihood(sites: dict[str, jax.Array], records: jax.Array) -> jax.Array:
    """log p(x, y | z) for draws (S, ...) and records (n, 6): (S, n), all in log space.

    The model of :mod:`synthshare.generator.model`: mixture of per-feature categoricals
    (log-probabilities straight from the unconstrained draws by
    :func:`~synthshare.generator.gradients.log_categorical`) times Poisson(y | exp(w·φ(x))).
    """
    codes, outcome = records[:, :5], records[:, 5].astype(jnp.float64)
    log_weights = log_categorical(sites["weights"])[0]  # (S, K)
    tables = [log_categorical(sites[f"probs_{f}"], binary=c == 2)[0] for f, c in zip(FEATURES, LEVEL_COUNTS)]
    table = jnp.concatenate(tables, axis=-1)  # (S, K, 26)
    one_hot = all_levels_one_hot(codes).astype(jnp.float64)  # (n, 26)
    features = jax.nn.logsumexp(log_weights[:, None, :] + jnp.einsum("nl,skl->snk", one_hot, table), axis=-1)
    eta = jnp.einsum("np,sp->sn", design_matrix(codes).astype(jnp.float64), sites["coef"])
    return features + outcome * eta - jnp.exp(eta) - jax.scipy.special.gammaln(outcome + 1.0)


def log_probability(records: np.ndarray, loc: np.ndarray, scale: np.ndarray, layout, draws: int = 256,
                    seed: int = 0) -> np.ndarray:
    """White box: log E_{z~q} p(x, y | z) ≈ logsumexp_s ℓ(z_s) − log S, per record (n,), float64.

    ``draws`` = 0 evaluates at the guide's mean z = loc instead. Draws use a fixed
    ``seed`` (common random numbers: the same z_s for every record and fit of equal D).
    """
    records = np.asarray(records)
    cell_index(records)  # checks codes
    with enable_x64():
        if draws == 0:
            flat = jnp.asarray(loc, jnp.float64)[None, :]
        else:
            noise = np.random.default_rng(seed).standard_normal((draws, loc.size))
            flat = jnp.asarray(loc + scale * noise, jnp.float64)
        value = _log_mean_exp(flat, jnp.asarray(records, jnp.int64), tuple(layout))
        return np.asarray(value, np.float64)


@partial(jax.jit, static_argnums=2)
def _log_mean_exp(flat: jax.Array, records: jax.Array, layout) -> jax.Array:
    """logsumexp_s ℓ(z_s) − log S (one compiled program per shape; traced in float64)."""
    ll = _record_log_likelihood(_unpack(flat, layout), records)
    return jax.nn.logsumexp(ll, axis=0) - jnp.log(flat.shape[0])
