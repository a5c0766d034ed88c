"""The compiled DPVI step: Poisson batch, aligned clipped gradient, noise and Adam, fused.

One numba function runs T aligned DPVI steps of one party (DPVIm's aligned variant,
:class:`~synthshare.generator.dpvi.AlignedPoissonDPSVI`) from randomness drawn ahead of
time by the reference's own functions from the reference's own keys
(:mod:`synthshare.generator.fused`): each step's ChaCha bit stream, shared guide draw
η (D,) and standard noise ξ (D,). Per step, in float64:

1. **Batch.** The included records are read from the step's bit stream exactly as
   :func:`synthshare.generator.subsampling.stream_decisions` decides them (module
   docstring there): with t's ``lead`` leading zero bits, runs of ``lead`` zeros after
   a 1 are searched for in 64-bit windows (every 1 before such a run ends one excluded
   record), and only the records found there are compared with t bit by bit. The first
   ``capacity`` included records form the batch.
2. **Guide draw.** s = softplus(u_s), z = μ + s ⊙ η.
3. **Log tables** of the categorical sites from z (stick-breaking, as
   :func:`synthshare.generator.gradients.log_categorical`): log θ, the stick fractions,
   and the row norms of the Jacobians, ‖∂log θ_l/∂u‖² = [l < d](1 − z_l)² + Σ_{i<l} z_i².
4. **Clipped gradient sum** over the batch (:func:`~synthshare.generator.gradients.clipped_gradient_sum`):
   per record the responsibilities ρ, the Poisson residual y − λ, the gradient norm
   ‖g_n‖² = ‖J_πᵀρ‖² + Σ_j Σ_r ρ_r² N_j^(r)[x_j] + (y − λ)²‖φ(x)‖², the factor
   c_n = min(1, C/‖g_n‖); then Σ c_n g_n from the accumulated c_n ρ per level.
   A stick-breaking Jacobian is applied in O(L): (Jᵀa)_i = a_i(1 − z_i) − z_i Σ_{l>i} a_l.
5. **Noise and prior:** ĝ = (Σ c_n g_n + σ·C·ξ)/(q·N)·N, plus the prior's gradient at z
   in closed form (:func:`~synthshare.generator.gradients.prior_log_density_and_gradient`).
6. **Chain rule** through z = μ + s(u_s) ⊙ η and the entropy term:
   ∂/∂μ = −(ĝ + ∇log p), ∂/∂u_s = −(ĝ + ∇log p) ⊙ η ⊙ σ(u_s) − σ(u_s)/s; loss
   −Σℓ/q − log p(z) + log q(z).
7. **Adam** (numpyro's, i.e. ``jax.example_libraries.optimizers.adam``) on (μ, u_s).

The reference computes the same in float32 through XLA; the tests hold the fused
trajectory to the reference's within float32 rounding. Determinism: sequential loops,
no fastmath (same bytes every run); compiled once per machine (``cache=True``).

Shapes: N records, T steps, W stream words, D = 373 latent dimensions (K = 16), K
components, 26 level columns, P = 22 coefficients.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros, viewer

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
_U64 = numba.uint64
_ONES64 = np.uint64(0xFFFFFFFFFFFFFFFF)
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
"""numpyro's Adam defaults (``jax.example_libraries.optimizers.adam``)."""


@numba.njit(**_JIT)
def _popcount(x):
    x = x - ((x >> _U64(1)) & _U64(0x5555555555555555))
    x = (x & _U64(0x3333333333333333)) + ((x >> _U64(2)) & _U64(0x3333333333333333))
    x = (x + (x >> _U64(4))) & _U64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * _U64(0x0101010101010101)) >> _U64(56))


@numba.njit(**_JIT)
def _window64(words, count, position):
    """The 64 stream bits from ``position`` on (most significant first), zeros past ``count`` words."""
    word = position >> 5
    offset = position & 31
    first = _U64(words[word]) if word < count else _U64(0)
    second = _U64(words[word + 1]) if word + 1 < count else _U64(0)
    third = _U64(words[word + 2]) if word + 2 < count else _U64(0)
    value = (first << _U64(32)) | second
    if offset > 0:
        value = (value << _U64(offset)) | (third >> _U64(32 - offset))
    return value


@numba.njit(**_JIT)
def stream_batch(words, own_words, num_records, t, lead, capacity, index):
    """The batch of one step from its bit stream: ``index[:filled]`` the first ``capacity``
    included records in order. Returns ``(filled, selected)`` (selected before truncation).

    ``words`` (≥ own_words,) uint32; ``t`` the threshold (2^16 for q = 1: every record),
    ``lead`` its leading zero bits in 16 bits. Same decisions as ``subsampling.stream_decisions``.
    """
    if t >= 65536:  # q = 1: every record, no bits read
        filled = min(num_records, capacity)
        for i in range(filled):
            index[i] = i
        return filled, num_records
    limit = 32 * own_words
    position = 0
    record = 0
    filled = 0
    selected = 0
    while record < num_records:
        if lead > 0:
            available = limit - position
            if available <= 0:
                break
            x = _window64(words, own_words, position)
            valid = min(64, available)
            valid_mask = _ONES64 if valid == 64 else ~(_ONES64 >> _U64(valid))
            zeros = ~x & valid_mask
            runs = zeros
            for shift in range(1, lead):
                runs &= zeros << _U64(shift)
            if runs != _U64(0):
                start = np.int64(leading_zeros(runs))
                skipped = 0 if start == 0 else _popcount(x >> _U64(64 - start))
                record += skipped
                position += start
                if record >= num_records:
                    break
            else:
                ones = x & valid_mask
                if ones == _U64(0):
                    break  # fewer than `lead` bits left: the record cannot be decided
                last = 63 - np.int64(trailing_zeros(ones))
                record += _popcount(ones)
                position += last + 1
                continue
        # Decide the record starting at `position`: first bit differing from t's.
        differ = (_window64(words, own_words, position) >> _U64(48)) ^ _U64(t)  # 16 bits, in a uint64
        k = 16 if differ == _U64(0) else np.int64(leading_zeros(differ)) - 48
        consumed = min(k + 1, 16)
        if position + consumed > limit:
            break  # the stream ends before the decision: this and later records excluded
        if k < 16 and (t >> (15 - k)) & 1 == 1:
            selected += 1
            if filled < capacity:
                index[filled] = record
                filled += 1
        position += consumed
        record += 1
    return filled, selected


# Elementary functions as plain arithmetic, so that LLVM vectorises the loops over the
# latent vector (libm calls cannot be vectorised and cost 6-11 ns each; a step needs
# ~2,000 of them). Accuracy ~1-2 ulp (tests compare with numpy over wide ranges).
_INLINE = dict(_JIT, inline="always")
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_TWO52 = 4503599627370496.0


@numba.njit(**_INLINE)
def _exp(x):
    """e^x: x = k·ln 2 + r, |r| ≤ ln 2/2, Taylor polynomial of degree 12 for e^r, times 2^k
    built in the exponent bits; 0 below −708 (where e^x is subnormal)."""
    clamped = min(max(x, -708.0), 709.0)
    k = math.floor(clamped * _INV_LN2 + 0.5)
    r = (clamped - k * _LN2_HI) - k * _LN2_LO
    p = ((((((((((((2.08767569878681e-09) * r + 2.505210838544172e-08) * r + 2.755731922398589e-07) * r + 2.7557319223985893e-06) * r + 2.48015873015873e-05) * r + 0.0001984126984126984) * r + 0.001388888888888889) * r + 0.008333333333333333) * r + 0.041666666666666664) * r + 0.16666666666666666) * r + 0.5) * r + 1.0) * r + 1.0  # Σ_{k≤12} r^k/k!
    biased = viewer(k + (1023.0 + _TWO52), numba.int64) << np.int64(52)  # (k + 1023) << 52
    value = p * viewer(biased, numba.float64)
    return 0.0 if x < -708.0 else value


@numba.njit(**_INLINE)
def _log1p_unit(e):
    """log(1 + e) for 0 ≤ e ≤ 1: 2 atanh(s) with s = e/(2 + e) ≤ 1/3, odd series to s^35."""
    s = e / (2.0 + e)
    s2 = s * s
    p = (((((((((((((((((0.02857142857142857) * s2 + 0.030303030303030304) * s2 + 0.03225806451612903) * s2 + 0.034482758620689655) * s2 + 0.037037037037037035) * s2 + 0.04) * s2 + 0.043478260869565216) * s2 + 0.047619047619047616) * s2 + 0.05263157894736842) * s2 + 0.058823529411764705) * s2 + 0.06666666666666667) * s2 + 0.07692307692307693) * s2 + 0.09090909090909091) * s2 + 0.1111111111111111) * s2 + 0.14285714285714285) * s2 + 0.2) * s2 + 0.3333333333333333) * s2 + 1.0  # Σ_{k≤17} s^2k/(2k + 1)
    return 2.0 * s * p


@numba.njit(**_INLINE)
def _log(y):
    """log y for finite y > 0: y = m·2^e with m ∈ [√½, √2), log m = 2 atanh((m − 1)/(m + 1))."""
    bits = viewer(y, numba.int64)
    mantissa = viewer((bits & np.int64(0x000FFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000), numba.float64)
    exponent = viewer((bits >> np.int64(52)) | np.int64(0x4330000000000000), numba.float64) - (_TWO52 + 1023.0)
    big = mantissa > 1.4142135623730951
    mantissa = mantissa * 0.5 if big else mantissa
    exponent = exponent + 1.0 if big else exponent
    s = (mantissa - 1.0) / (mantissa + 1.0)
    s2 = s * s
    p = ((((((((((0.047619047619047616) * s2 + 0.05263157894736842) * s2 + 0.058823529411764705) * s2 + 0.06666666666666667) * s2 + 0.07692307692307693) * s2 + 0.09090909090909091) * s2 + 0.1111111111111111) * s2 + 0.14285714285714285) * s2 + 0.2) * s2 + 0.3333333333333333) * s2 + 1.0  # Σ_{k≤10} s^2k/(2k + 1), |s| ≤ 0.172
    return 2.0 * s * p + exponent * _LN2_HI + exponent * _LN2_LO


@numba.njit(**_JIT)
def apply_elementary(name, x, out):
    """Apply ``_exp`` (0), ``_log1p_unit`` (1) or ``_log`` (2) elementwise (for the tests)."""
    for i in range(x.shape[0]):
        if name == 0:
            out[i] = _exp(x[i])
        elif name == 1:
            out[i] = _log1p_unit(x[i])
        else:
            out[i] = _log(x[i])


@numba.njit(**_JIT)
def _stick_transpose(a, frac, base, count, out):
    """out[base + i] += (Jᵀa)_i = a_i(1 − z_i) − z_i Σ_{l>i} a_l for one simplex row of
    ``count`` levels (a (count,), stick fractions z at ``frac[base:]``)."""
    d = count - 1
    tail = a[d]
    for i in range(d - 1, -1, -1):
        z = frac[base + i]
        out[base + i] += a[i] * (1.0 - z) - z * tail
        tail += a[i]


@numba.njit(**_JIT)
def _row_tables(log_z, log_1mz, frac, base, count, log_theta, norms, column, r):
    """log θ and the Jacobian row norms of one simplex row (component ``r``, levels at
    ``column``.. of the (columns, K) tables) from its stick terms at ``base``:
    log θ_l = [l < d] log z_l + Σ_{j<l} log(1 − z_j),
    ‖∂log θ_l/∂u‖² = [l < d](1 − z_l)² + Σ_{j<l} z_j²."""
    running = 0.0
    squares = 0.0
    for i in range(count - 1):
        z = frac[base + i]
        log_theta[column + i, r] = log_z[base + i] + running
        norms[column + i, r] = (1.0 - z) * (1.0 - z) + squares
        running += log_1mz[base + i]
        squares += z * z
    log_theta[column + count - 1, r] = running
    norms[column + count - 1, r] = squares


@numba.njit(**_JIT)
def _adam(x, g, m, v, rate, eps):
    """One Adam update of x in place (m, v the moments; rate and eps bias-corrected)."""
    for d in range(x.shape[0]):
        m[d] = (1.0 - ADAM_B1) * g[d] + ADAM_B1 * m[d]
    for d in range(x.shape[0]):
        v[d] = (1.0 - ADAM_B2) * g[d] * g[d] + ADAM_B2 * v[d]
    for d in range(x.shape[0]):
        x[d] -= rate * m[d] / (math.sqrt(v[d]) + eps)


@numba.njit(**_JIT)
def run_steps(
    codes, outcome, log_factorial, num_records, words, own_words, t, lead, capacity, eta, xi,
    loc, scale_u, moment1, moment2, step,
    level_counts, column_start, site_offset, coef_offset, components,
    q, clip, sigma, learning_rate, alpha, coef_scale, expected, observation_scale,
    losses, selected_counts,
):
    """T aligned DPVI steps of one party, in place on (loc, scale_u, moment1, moment2).

    Args:
        codes (N, 5) int32, outcome (N,) float64, log_factorial (N,) log(y!).
        words (T, W) uint32 stream words per step (the first ``own_words`` are read).
        eta, xi (T, D) float32: shared guide draws and standard noise per step.
        loc, scale_u (D,) float64: guide location and unconstrained scale (softplus).
        moment1, moment2 (2, D) float64: Adam's m and v for (loc, scale_u).
        step: Adam's step count before the first of these steps.
        level_counts (5,), column_start (5,), site_offset (5,): each feature's levels,
            its first column among the 26, and its site's offset in the latent vector
            (weights at 0, K − 1 values; a binary feature has K values, one per
            component; others K × (L − 1), component-major); ``coef_offset`` P values.
        expected: q·N; observation_scale: N (d3p's).
        losses (T,) float64, selected_counts (T,) int64: written per step.
    Returns the step count after the T steps.
    """
    steps, dim = eta.shape
    features = level_counts.shape[0]
    columns = column_start[features - 1] + level_counts[features - 1]
    coefficients = dim - coef_offset
    categorical = coef_offset  # latent entries of the categorical sites

    # Per latent entry of the categorical sites: the stick shift log(d − i) (0 for a
    # binary value), and the prior's weights: log p(θ) + log|J| = const + Σ α·log z +
    # b·log(1 − z) with b = α(d − i) (α for a binary value), gradient α − c·z with
    # c = α + 1 + (d − i)(α − 1) + (d − 1 − i) (2α for a binary value).
    shift = np.zeros(categorical)
    weight_1mz = np.empty(categorical)
    gradient_c = np.empty(categorical)
    prior_const = 0.0
    lgamma_alpha = math.lgamma(alpha)
    for j in range(-1, features):
        count = components if j < 0 else level_counts[j]
        rows = 1 if j < 0 else components
        base0 = 0 if j < 0 else site_offset[j]
        prior_const += rows * (math.lgamma(alpha * count) - count * lgamma_alpha)
        for r in range(rows):
            if count == 2:
                position = base0 + r
                weight_1mz[position] = alpha
                gradient_c[position] = 2.0 * alpha
                continue
            d = count - 1
            for i in range(d):
                position = base0 + r * d + i
                shift[position] = math.log(d - i)
                weight_1mz[position] = alpha * (d - i)
                gradient_c[position] = alpha + 1.0 + (d - i) * (alpha - 1.0) + (d - 1 - i)
    prior_const -= coefficients * (math.log(coef_scale) + HALF_LOG_2PI)
    log_q_const = -dim * HALF_LOG_2PI

    index = np.empty(capacity, np.int64)
    scale = np.empty(dim)
    slope = np.empty(dim)
    latent = np.empty(dim)
    gradient = np.empty(dim)
    terms = np.empty(dim)
    exps = np.empty(dim)
    shifted = np.empty(categorical)
    log_z = np.empty(categorical)
    log_1mz = np.empty(categorical)
    frac = np.empty(categorical)
    # Level tables are (columns, K): a record's five rows are contiguous vectors over K.
    log_w = np.empty((1, components))
    norms_w = np.empty((1, components))  # written by _row_tables, not read: the weights' norms are per record
    log_theta = np.empty((columns, components))
    norms = np.empty((columns, components))
    cols = np.empty((features, capacity), np.int64)  # per batch record: its five level columns
    rho = np.empty((capacity, components))  # logits, then exp, then responsibilities
    lin = np.empty(capacity)
    rate = np.empty(capacity)
    top = np.empty(capacity)
    total = np.empty(capacity)
    log_features = np.empty(capacity)
    squared = np.empty(capacity)
    tail_w = np.empty(capacity)
    factor = np.empty(capacity)
    weighted_w = np.empty(components)
    weighted = np.empty((columns, components))
    coef_sum = np.empty(coefficients)
    noise_scale = sigma * clip / expected

    for s in range(steps):
        # 2. guide draw z = μ + softplus(u_s) ⊙ η, and log q(z)
        # Each loop reads and writes few arrays and keeps no running sum, so that LLVM
        # vectorises it (measured 11x faster than one fused scalar loop); sums follow.
        for d in range(dim):
            exps[d] = _exp(-abs(scale_u[d]))
        for d in range(dim):
            scale[d] = max(scale_u[d], 0.0) + _log1p_unit(exps[d])
        for d in range(dim):
            slope[d] = (1.0 if scale_u[d] >= 0.0 else exps[d]) / (1.0 + exps[d])  # σ(u) = softplus'(u)
        for d in range(dim):
            latent[d] = loc[d] + scale[d] * eta[s, d]
        for d in range(dim):
            terms[d] = _log(scale[d])
        log_q = log_q_const
        for d in range(dim):
            log_q -= terms[d] + 0.5 * float(eta[s, d]) * float(eta[s, d])
        # 3. stick terms of every categorical entry, then the rows' tables; prior value
        for p in range(categorical):
            shifted[p] = latent[p] - shift[p]
        for p in range(categorical):
            exps[p] = _exp(-abs(shifted[p]))
        for p in range(categorical):
            log_z[p] = min(shifted[p], 0.0) - _log1p_unit(exps[p])
        for p in range(categorical):
            log_1mz[p] = log_z[p] - shifted[p]
        for p in range(categorical):
            frac[p] = (1.0 if shifted[p] >= 0.0 else exps[p]) / (1.0 + exps[p])
        prior = prior_const
        for p in range(categorical):
            prior += alpha * log_z[p] + weight_1mz[p] * log_1mz[p]
        for i in range(coefficients):
            w = latent[coef_offset + i] / coef_scale
            prior -= 0.5 * w * w
        _row_tables(log_z, log_1mz, frac, 0, components, log_w.T, norms_w.T, 0, 0)  # weights: one row of K
        for j in range(features):
            count = level_counts[j]
            column = column_start[j]
            if count == 2:
                for r in range(components):
                    position = site_offset[j] + r
                    p = frac[position]
                    log_theta[column, r] = log_1mz[position]
                    log_theta[column + 1, r] = log_z[position]
                    norms[column, r] = p * p
                    norms[column + 1, r] = (1.0 - p) * (1.0 - p)
            else:
                for r in range(components):
                    _row_tables(log_z, log_1mz, frac, site_offset[j] + r * (count - 1), count,
                                log_theta, norms, column, r)

        # 1. and 4. the batch and its clipped gradient sum
        filled, selected = stream_batch(words[s], own_words, num_records, t, lead, capacity, index)
        selected_counts[s] = selected
        weighted_w[:] = 0.0
        weighted[:, :] = 0.0
        coef_sum[:] = 0.0
        # The batch's records side by side: every per-record quantity is a loop over the
        # records, so that their dependent chains (exp, log, sums over K) overlap; each
        # record's sums keep the order of a record-by-record loop.
        for b in range(filled):
            n = index[b]
            linear = latent[coef_offset]
            active = 1
            for j in range(features):
                level = codes[n, j]
                cols[j, b] = column_start[j] + level
                if level > 0:
                    linear += latent[coef_offset + column_start[j] - j + level]
                    active += 1
            lin[b] = linear
            squared[b] = active  # ‖φ(x)‖², times the squared residual below
        for b in range(filled):
            c0, c1, c2, c3, c4 = cols[0, b], cols[1, b], cols[2, b], cols[3, b], cols[4, b]
            for r in range(components):
                rho[b, r] = log_w[0, r] + log_theta[c0, r] + log_theta[c1, r] + log_theta[c2, r] + log_theta[c3, r] + log_theta[c4, r]
        for b in range(filled):
            top[b] = rho[b, 0]
        for r in range(1, components):
            for b in range(filled):
                top[b] = max(top[b], rho[b, r])
        for b in range(filled):
            for r in range(components):
                rho[b, r] = _exp(rho[b, r] - top[b])
        for b in range(filled):
            total[b] = 0.0
        for r in range(components):
            for b in range(filled):
                total[b] += rho[b, r]
        for b in range(filled):
            log_features[b] = top[b] + _log(total[b])
        for b in range(filled):
            rate[b] = _exp(lin[b])
        ll_sum = 0.0
        for b in range(filled):
            n = index[b]
            y = outcome[n]
            ll_sum += log_features[b] + y * lin[b] - rate[b] - log_factorial[n]
            rate[b] = y - rate[b]  # the Poisson residual y − λ from here on
            squared[b] *= rate[b] * rate[b]
        for b in range(filled):
            inverse = 1.0 / total[b]
            for r in range(components):
                rho[b, r] *= inverse  # responsibilities ρ
        for b in range(filled):
            tail_w[b] = rho[b, components - 1]
        for i in range(components - 2, -1, -1):
            z = frac[i]
            for b in range(filled):
                g = rho[b, i] * (1.0 - z) - z * tail_w[b]
                squared[b] += g * g
                tail_w[b] += rho[b, i]
        for r in range(components):
            for b in range(filled):
                part = norms[cols[0, b], r] + norms[cols[1, b], r] + norms[cols[2, b], r] + norms[cols[3, b], r] + norms[cols[4, b], r]
                squared[b] += rho[b, r] * rho[b, r] * part
        for b in range(filled):
            factor[b] = min(1.0, clip / max(math.sqrt(squared[b]), 1e-30))
        for b in range(filled):
            c0, c1, c2, c3, c4 = cols[0, b], cols[1, b], cols[2, b], cols[3, b], cols[4, b]
            for r in range(components):
                cr = factor[b] * rho[b, r]
                weighted_w[r] += cr
                weighted[c0, r] += cr
                weighted[c1, r] += cr
                weighted[c2, r] += cr
                weighted[c3, r] += cr
                weighted[c4, r] += cr
            cres = factor[b] * rate[b]
            coef_sum[0] += cres
            for j in range(features):
                level = cols[j, b] - column_start[j]
                if level > 0:
                    coef_sum[column_start[j] - j + level] += cres
        gradient[:] = 0.0
        _stick_transpose(weighted_w, frac, 0, components, gradient)
        for j in range(features):
            count = level_counts[j]
            column = column_start[j]
            if count == 2:
                for r in range(components):
                    position = site_offset[j] + r
                    p = frac[position]
                    gradient[position] += -p * weighted[column, r] + (1.0 - p) * weighted[column + 1, r]
            else:
                for r in range(components):
                    _stick_transpose(weighted[column:column + count, r], frac, site_offset[j] + r * (count - 1),
                                     count, gradient)
        for i in range(coefficients):
            gradient[coef_offset + i] = coef_sum[i]

        # 5. noise σ·C on the sum, rescaled to the full data; the prior's gradient
        for d in range(dim):
            gradient[d] = (gradient[d] / expected + float(xi[s, d]) * noise_scale) * observation_scale
        for p in range(categorical):
            gradient[p] += alpha - gradient_c[p] * frac[p]
        for i in range(coefficients):
            gradient[coef_offset + i] -= latent[coef_offset + i] / (coef_scale * coef_scale)

        # 6. chain rule and loss; 7. Adam: m̂/(√v̂ + ε) written as m·(√c₂/c₁)/(√v + ε√c₂)
        losses[s] = -ll_sum / q - prior + log_q
        correction1 = 1.0 - ADAM_B1 ** (step + 1)
        root2 = math.sqrt(1.0 - ADAM_B2 ** (step + 1))
        rate_t = learning_rate * root2 / correction1
        eps_t = ADAM_EPS * root2
        for d in range(dim):
            gradient[d] = -gradient[d]  # ∂loss/∂μ
        for d in range(dim):
            terms[d] = gradient[d] * eta[s, d] * slope[d] - slope[d] / scale[d]  # ∂loss/∂u_s
        _adam(loc, gradient, moment1[0], moment2[0], rate_t, eps_t)
        _adam(scale_u, terms, moment1[1], moment2[1], rate_t, eps_t)
        step += 1
    return step
