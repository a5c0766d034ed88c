"""The real-data-sharing yardstick (issue 16): local data ∪ the partners' real local data.

What the party would get if the partners shared the data their generators were trained
on (the same fraction f) instead of synthetic sets: at step j of order r, ONE fit of the
party's local records plus the real local records of the first j partners of the order,
with the study's HC1 variance. Like step 0 it is a single fit, so Rubin's rules with
K = 1 reduce to its own coefficients and variances (b = 0, T = v̄ = HC1, K_t = 1), and
it is scored exactly like step 0: S draws from N(coef, diag(var)) on the evaluation set.

Scenario jobs only: the skew job holds only the centres' synthetic data (its partners'
real data are not its inputs).

Step j's data depend only on the set of the first j partners, so each distinct set is
fitted once (as in ``PartyExperiment._pool_prefixes``), step by step, each new set
warm-started from the fit of the set one partner smaller (the solver replays
statsmodels wherever the MLE does not exist, so the start changes no number beyond the
solver's tolerance). Draws come from the caller's generator (a stream of its own, so the
synthetic variants' draws do not move), consumed order by order, (O, S, P) each.
"""

from __future__ import annotations

import numpy as np

from synthshare.analysis.experiment import FitSummary, PartyExperiment, by_order, pooled_row, warm_starts
from synthshare.analysis.rubin import Pooled, pool_rubin
from synthshare.analysis.scoring import draw_coefficients
from synthshare.glm.design import Design


def real_sharing(experiment: PartyExperiment, local_counts: np.ndarray, real_counts: np.ndarray, orders: np.ndarray,
                 reference: dict[str, str], draw_rng: np.random.Generator,
                 summary: FitSummary | None = None) -> tuple[np.ndarray, Pooled]:
    """The yardstick at every step of every order.

    Args:
        experiment: supplies the solver and the evaluation set (the full model's design).
        local_counts: (*CELL_SHAPE, 2) the party's local data.
        real_counts: (O, *CELL_SHAPE, 2) the partners' real local data (the generators'
            training data), in the partners' order (the order indices refer to it).
        orders: (R, O) permutations of 0..O−1 (the synthetic steps' orders).
        reference: the party's reference levels.
        draw_rng: the yardstick's own draw generator.
        summary: fit counts are added here.

    Returns:
        ll (R, O, S): per-record log-likelihoods (NaN where the fit failed), and a
        :class:`Pooled` of arrays (R, O, P): step j of order r at ``[r, j − 1]``.
    """
    design = Design.build(reference)
    solver = experiment.solver(design)
    orders = np.asarray(orders)
    R, O = orders.shape
    local_table = np.asarray(local_counts).astype(np.int64)
    real = np.asarray(real_counts).astype(np.int64)
    if real.shape != (O,) + local_table.shape:
        raise ValueError(f"real count tables of shape {real.shape}; expected {(O,) + local_table.shape}")
    local_fit = solver.fit(local_table[None].astype(np.int32))
    if summary is not None:
        summary.add(local_fit)
    pooled_by_set: dict[frozenset, Pooled] = {}
    starts_by_set = {frozenset(): warm_starts(local_fit, np.zeros(1, np.intp))}
    for j in range(O):
        keys, starts = [], []
        for order in orders:
            key = frozenset(order[: j + 1].tolist())
            if key not in pooled_by_set and key not in keys:
                keys.append(key)
                starts.append(starts_by_set[frozenset(order[:j].tolist())])
        if not keys:
            continue
        tables = np.stack([local_table + real[sorted(key)].sum(axis=0) for key in keys])
        batch = solver.fit(tables.astype(np.int32), start=np.concatenate(starts))
        if summary is not None:
            summary.add(batch)
        # a single fit per set: Rubin's rules with K = 1 (as step 0)
        pooled = pool_rubin(batch.coef[:, None], batch.var[:, None], batch.present[:, None])
        for i, key in enumerate(keys):
            pooled_by_set[key] = pooled_row(pooled, i)
            starts_by_set[key] = warm_starts(batch, np.array([i]))
    steps = by_order(pooled_by_set, orders, design.size)
    evaluation = experiment.evaluation(design)
    ll = np.empty((R, O, experiment.draws))
    for r in range(R):
        coef = draw_coefficients(steps.mean[r], steps.var[r], steps.present[r], experiment.draws, draw_rng)
        ll[r] = np.where(steps.present[r, :, :1], evaluation.loglik(coef), np.nan)
    return ll, steps
