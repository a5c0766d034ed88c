"""The utility experiment of one party (method.md, Analysis; the paper's Figs 1-6).

Step 0 ("local only"): the model fitted on the party's local data. Steps j = 1…O (O
other parties, in each of R random orders): for every k = 1…K the model fitted on
local data ∪ the k-th synthetic set of each of the first j parties of the order; the K
fits pooled with Rubin's rules. Every pooled model is scored by S Monte Carlo draws on
an evaluation set (:mod:`synthshare.analysis.scoring`).

Everything runs on count tables: the combined table of step j is the local table plus
a running sum of synthetic tables, and the fits of a few orders go through one batched
solver call. Step j's data depend only on the set of the first j parties, so each
distinct set is fitted once per party (exact: the same tables give the same fits). The reference levels are the local data's most frequent levels
(``design.most_frequent_levels``), kept for every combined fit of the party.

Randomness: orders come from one generator per party keyed by the order seed only (so
every generator seed sees the same orders); draws from one generator per (draw seed,
generator seed, party), consumed in a fixed order (step 0 variants, then order by
order), so results do not depend on batching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthshare.glm.cells import drop_features
from synthshare.glm.design import Design
from synthshare.glm.irls import BatchFit, PoissonBatchSolver
from synthshare.analysis.rubin import POOLED_FIELDS, Pooled, pool_rubin
from synthshare.analysis.scoring import EvaluationSet, draw_coefficients
from synthshare.variables import FEATURES

_FITS_PER_CALL = 3000
"""Orders are walked in groups of about this many fits per step (one solver call per
step; memory ~ 200 MB at K = 100)."""

VARIANTS = ("full", "no_ethnicity")
"""Model variants: all five features; without ethnicity (Fig 4, local only)."""


def _without_model(ll: np.ndarray, pooled: Pooled) -> np.ndarray:
    """NaN log-likelihoods where no fit was possible (no intercept: no usable fit pooled)."""
    return np.where(pooled.present[..., :1], ll, np.nan)


def warm_starts(batch: BatchFit, rows: np.ndarray) -> np.ndarray:
    """(K, P) warm starts from the given fits of a batch (K rows; a single fit may be
    repeated for every k).

    A zero-positive coefficient (≈ −20, far from any MLE) gives NaN (the solver starts
    that coefficient from statsmodels' first step); a fit that failed, was rank
    deficient or did not converge gives an all-NaN row (no warm start)."""
    usable = ~batch.failed[rows] & ~batch.rank_deficient[rows] & batch.converged[rows]
    keep = usable[:, None] & ~batch.zero_positive[rows]
    return np.where(keep, batch.coef[rows], np.nan)


def pooled_row(pooled: Pooled, index) -> Pooled:
    """One entry of a batch of pooled models (every field indexed alike)."""
    return Pooled(**{name: getattr(pooled, name)[index] for name in POOLED_FIELDS})


def by_order(pooled_by_set: dict[frozenset, Pooled], orders: np.ndarray, size: int) -> Pooled:
    """The pooled model of every step of every order, looked up by the set of first-j parties.

    Args:
        pooled_by_set: frozenset of party indices -> :class:`Pooled` of arrays (P,).
        orders: (R, O) permutations.
        size: P, for the empty case.

    Returns:
        :class:`Pooled` of arrays (R, O, P); step j of order r at ``[r, j − 1]``.
    """
    R, O = orders.shape
    if R == 0 or O == 0:
        empty = {name: np.zeros((R, O, size), bool if name in ("present", "fallback") else
                                np.int64 if name == "count" else np.float64) for name in POOLED_FIELDS}
        return Pooled(**empty)
    rows = [[pooled_by_set[frozenset(order[: j + 1].tolist())] for j in range(O)] for order in orders]
    return Pooled(**{name: np.array([[getattr(p, name) for p in row] for row in rows]) for name in POOLED_FIELDS})


def random_orders(others: int, orders: int, rng: np.random.Generator) -> np.ndarray:
    """(R, O) int: R independent random permutations of the O other parties (indices 0..O−1)."""
    return np.stack([rng.permutation(others) for _ in range(orders)]) if orders else np.zeros((0, others), np.int64)


@dataclass
class FitSummary:
    """How many fits hit statsmodels' edge cases (all of them are replayed, not dropped)."""

    fits: int = 0
    not_converged: int = 0
    rank_deficient: int = 0
    failed: int = 0
    with_zero_positive_level: int = 0
    warm: int = 0
    rubin_fallback_terms: int = 0
    pooled_terms: int = 0

    def add(self, batch: BatchFit) -> None:
        self.fits += batch.coef.shape[0]
        self.not_converged += int((~batch.converged & ~batch.failed).sum())
        self.rank_deficient += int(batch.rank_deficient.sum())
        self.failed += int(batch.failed.sum())
        self.with_zero_positive_level += int(batch.zero_positive.any(axis=1).sum())
        self.warm += int(batch.warm.sum())

    def add_pooled(self, pooled: Pooled) -> None:
        self.rubin_fallback_terms += int(pooled.fallback.sum())
        self.pooled_terms += int(pooled.present.sum())


@dataclass
class PartyResult:
    """One party's log-likelihoods and pooled coefficients.

    Attributes:
        local: variant -> (S,) step-0 log-likelihoods.
        combined: (R, O, S) log-likelihoods of steps 1…O in each order.
        coef_local: variant -> (P,) step-0 coefficients; var_local likewise (HC1); present_local.
        coef_last, var_last, present_last: (P,) pooled model of the last step of order 0.
        last_mean: (R, P) pooled coefficients of the last step in every order (the
            same data in every order, so equal up to rounding: a check).
        design: the full model's design (reference levels of the party).
        steps: Rubin's pieces of every step of every order, a :class:`Pooled` of
            arrays (R, O, P): step j of order r at ``[r, j − 1]`` (w̄, T after the
            fallback, b, v̄, K_t, fallback; the models ``combined`` scores).
        real, real_steps: the real-data-sharing yardstick (``synthshare.analysis.sharing``),
            (R, O, S) log-likelihoods and a :class:`Pooled` (R, O, P) of single fits
            (K_t = 1, b = 0: T = v̄ = the HC1 variance); None when not run.
        selection: partner selection with local data alone
            (``synthshare.analysis.selection.Selection``); None when not run.
    """

    design: Design
    local: dict[str, np.ndarray]
    combined: np.ndarray
    coef_local: dict[str, np.ndarray]
    var_local: dict[str, np.ndarray]
    present_local: dict[str, np.ndarray]
    coef_last: np.ndarray | None
    var_last: np.ndarray | None
    present_last: np.ndarray | None
    last_mean: np.ndarray
    steps: Pooled | None = None
    summary: FitSummary = field(default_factory=FitSummary)
    real: np.ndarray | None = None
    real_steps: Pooled | None = None
    selection: Any = None


class PartyExperiment:
    """Runs the experiment for parties sharing one evaluation set and design family."""

    def __init__(self, evaluation_counts: np.ndarray, draws: int, variants: tuple[str, ...] = VARIANTS,
                 kernel: str = "numba") -> None:
        """
        Args:
            evaluation_counts: (7, 2, 8, 4, 5, 2) count table of the evaluation set.
            draws: S, Monte Carlo draws per pooled model.
            kernel: the GLM solver's implementation (``PoissonBatchSolver``'s ``kernel``).
        """
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; expected some of {list(VARIANTS)}")
        self.evaluation_counts = np.asarray(evaluation_counts)
        self.draws = int(draws)
        self.variants = tuple(variants)
        self.kernel = kernel
        self._solvers: dict[Design, PoissonBatchSolver] = {}
        self._evaluations: dict[Design, EvaluationSet] = {}

    def run(self, local_counts: np.ndarray, synthetic_counts: np.ndarray, orders: np.ndarray,
            reference: dict[str, str], draw_rng: np.random.Generator) -> PartyResult:
        """One party's experiment: the paper's algorithm.

        Step 0 fits the local data (each variant); step j of order r adds party
        ``order[j]``'s synthetic sets, fits local ∪ set k of each of the first j parties
        for every k, pools the K fits (Rubin's rules) and scores S draws of the pooled
        model. The fitting is :meth:`_pool_prefixes`' job; here only the pooled models
        are looked up and scored, order by order.

        Args:
            local_counts: (*CELL_SHAPE, 2) the party's local data.
            synthetic_counts: (O, K, *CELL_SHAPE, 2) the other parties' synthetic sets.
            orders: (R, O) permutations of 0..O−1 (:func:`random_orders`).
            reference: the party's reference levels (the local data's most frequent).
            draw_rng: generator for the Monte Carlo draws (consumed as described above).
        """
        design = Design.build(reference)
        summary = FitSummary()
        others = synthetic_counts.shape[0]
        orders = np.asarray(orders)
        if orders.ndim != 2 or orders.shape[1] != others or any(sorted(o) != list(range(others)) for o in orders.tolist()):
            raise ValueError(f"orders of shape {orders.shape}; expected permutations of 0..{others - 1}")
        local, coef_local, var_local, present_local, local_fits = self._fit_local(local_counts, design, summary, draw_rng)
        pooled_by_set = self._pool_prefixes(local_counts, synthetic_counts, orders, design, local_fits, summary)
        evaluation = self.evaluation(design)
        steps = by_order(pooled_by_set, orders, design.size)
        combined = np.empty((orders.shape[0], others, self.draws))
        for r in range(orders.shape[0]):
            coef = draw_coefficients(steps.mean[r], steps.var[r], steps.present[r], self.draws, draw_rng)
            combined[r] = np.where(steps.present[r, :, :1], evaluation.loglik(coef), np.nan)
        last_mean = steps.mean[:, -1] if others else np.empty((orders.shape[0], design.size))
        if orders.shape[0]:
            last = pooled_by_set[frozenset(range(others))]
            coef_last, var_last, present_last = last.mean, last.var, last.present
        else:
            coef_last = var_last = present_last = None
        return PartyResult(design, local, combined, coef_local, var_local, present_local,
                           coef_last, var_last, present_last, last_mean, steps, summary)

    def _fit_local(self, local_counts: np.ndarray, design: Design, summary: FitSummary, draw_rng: np.random.Generator):
        """Step 0 ("local only") of every variant: fit, draw S coefficients, score.

        Returns (variant -> (S,) log-likelihoods, coefficients (P,), variances (P,),
        present (P,)) and the full model's local fit (the warm start of step 1).
        """
        local, coef_local, var_local, present_local = {}, {}, {}, {}
        full_fit = None
        for variant in self.variants:
            variant_design = design if variant == "full" else design.without("ethnicity")
            table = local_counts if variant == "full" else drop_features(local_counts, FEATURES, variant_design.features)
            batch = self.solver(variant_design).fit(table[None])
            if variant == "full":
                full_fit = batch
            summary.add(batch)
            # a single fit: Rubin's rules with K = 1 reduce to its own coefficients and variances
            pooled = pool_rubin(batch.coef[:, None], batch.var[:, None], batch.present[:, None])
            coef = draw_coefficients(pooled.mean, pooled.var, pooled.present, self.draws, draw_rng)
            local[variant] = _without_model(self.evaluation(variant_design).loglik(coef), pooled)[0]
            coef_local[variant], var_local[variant], present_local[variant] = batch.coef[0], batch.var[0], batch.present[0]
        if full_fit is None:
            full_fit = self.solver(design).fit(local_counts.astype(np.int32)[None])
        return local, coef_local, var_local, present_local, full_fit

    def _pool_prefixes(self, local_counts: np.ndarray, synthetic_counts: np.ndarray, orders: np.ndarray,
                       design: Design, local_fit: BatchFit, summary: FitSummary) -> dict[frozenset, Pooled]:
        """The pooled model of every distinct set of first-j parties of the orders (j ≥ 1).

        Returns frozenset of party indices -> :class:`Pooled` of arrays (P,). The
        speed-ups live here, none changes a number:

        - step j's data depend on the *set* of the first j parties, not on their order,
          so each distinct set is fitted once (at R = 100, M = 16 about a quarter of the
          fits repeat an earlier set);
        - orders are walked step by step, so step j's k-th fit starts Newton from step
          j − 1's k-th fit (the local fit at step 1): one more party's data moves the
          MLE little, and the solver replays statsmodels wherever the MLE does not exist;
        - the new sets of a group of orders at one step go through one solver call, the
          combined tables kept as running sums.
        """
        others, sets = synthetic_counts.shape[:2]
        solver = self.solver(design)
        local_table = local_counts.astype(np.int32)
        P = design.size
        pooled_by_set: dict[frozenset, Pooled] = {}
        starts_by_set: dict[frozenset, np.ndarray] = {frozenset(): warm_starts(local_fit, np.zeros(sets, np.intp))}
        group = max(1, _FITS_PER_CALL // max(1, sets))
        for first in range(0, orders.shape[0], group):
            block = orders[first : first + group]
            running = np.broadcast_to(local_table, (block.shape[0], sets) + local_table.shape).copy()
            for j in range(others):
                for b, party in enumerate(block[:, j]):  # in place: no (orders, K, cells) temporary
                    running[b] += synthetic_counts[party]
                keys, rows, starts = [], [], []
                for b, order in enumerate(block):
                    key = frozenset(order[: j + 1].tolist())
                    if key not in pooled_by_set and key not in keys:
                        keys.append(key)
                        rows.append(b)
                        starts.append(starts_by_set[frozenset(order[:j].tolist())])
                if not keys:
                    continue
                tables = running if len(rows) == block.shape[0] else running[rows]  # every order new: no copy
                batch = solver.fit(tables.reshape((-1,) + local_table.shape), start=np.concatenate(starts))
                summary.add(batch)
                pooled = pool_rubin(batch.coef.reshape(len(keys), sets, P), batch.var.reshape(len(keys), sets, P),
                                    batch.present.reshape(len(keys), sets, P))
                summary.add_pooled(pooled)
                for i, key in enumerate(keys):
                    pooled_by_set[key] = pooled_row(pooled, i)
                    starts_by_set[key] = warm_starts(batch, np.arange(i * sets, (i + 1) * sets))
        return pooled_by_set

    def solver(self, design: Design) -> PoissonBatchSolver:
        """The batched GLM solver of a design (one per design, reused)."""
        if design not in self._solvers:
            self._solvers[design] = PoissonBatchSolver(design, kernel=self.kernel)
        return self._solvers[design]

    def evaluation(self, design: Design) -> EvaluationSet:
        """The evaluation set's count table in a design (one per design, reused)."""
        if design not in self._evaluations:
            counts = drop_features(self.evaluation_counts, FEATURES, design.features)
            self._evaluations[design] = EvaluationSet(counts, design)
        return self._evaluations[design]
