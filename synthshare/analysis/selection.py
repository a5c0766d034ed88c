"""Choosing partners with local data alone (issue 16, item 3): greedy forward selection.

The paper adds partners in random orders. A party deciding whose synthetic data to use
has only its own data to judge by, so:

1. **Split** its local records into a fitting part and a held-out part, stratified by the
   outcome (:func:`heldout_split`: within the positives and within the negatives,
   ⌊e·n⌋ records held out, e the held-out fraction, by a seeded permutation), so both
   parts keep the party's positive rate.
2. **Greedy rounds.** The current model is the fitting part alone (one fit). Each round,
   for every remaining partner c: for k = 1…K fit the fitting part ∪ set k of every
   partner chosen so far ∪ set k of c, pool the K fits with Rubin's rules (the paper's
   rule, unchanged), and score the pooled mean coefficients w̄ on the held-out part
   (per-record Poisson log-likelihood, ``scoring.EvaluationSet`` of the held-out
   records in the party's design). The candidate with the largest held-out
   log-likelihood joins if it beats the current model's strictly (ties: the first in
   the partners' order); otherwise, or when no partner is left, selection stops.
3. **The selected model** is fitted like a step of the experiment on ALL the party's
   local data ∪ the chosen partners' sets (K fits, Rubin's rules; with no partner chosen,
   the single local fit), and scored like every other step: S draws of N(w̄, diag(T)) on
   the evaluation set (the global test set), from the caller's generator.

A model without an intercept (every fit failed, e.g. no positive record) scores −∞ on
the held-out part: any usable candidate beats it, and it never beats anything.

Fits are warm-started from the current model's fits (the fitting part's fit, then the
chosen candidate's K fits), which changes no number beyond the solver's tolerance.
Cost: at most O + (O − 1) + … candidates × K fits, all candidates of a round in one
solver call; selection usually stops after a few rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthshare.analysis.experiment import FitSummary, PartyExperiment, pooled_row, warm_starts
from synthshare.analysis.rubin import Pooled, pool_rubin
from synthshare.analysis.scoring import EvaluationSet, draw_coefficients
from synthshare.glm.design import Design

SPLIT_STREAM = 0x73706C74
"""Third word of the split generator's key ("splt"): keeps it apart from the order
stream ([order seed, party key]) even when the two seeds are equal."""


def heldout_split(outcome: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) bool: which records are held out, stratified by the outcome.

    Within each outcome class of n_y records, ⌊fraction·n_y⌋ are held out (a seeded
    permutation of the class, positives first drawn from ``rng``, then negatives), so the
    fitting part keeps the extra record of an odd class (a single positive stays in the
    fitting part, where it makes the fit possible).
    """
    outcome = np.asarray(outcome, bool)
    held = np.zeros(outcome.size, bool)
    for value in (True, False):
        members = np.flatnonzero(outcome == value)
        chosen = rng.permutation(members)[: int(np.floor(fraction * members.size))]
        held[chosen] = True
    return held


@dataclass
class SelectionRound:
    """One greedy round: the best candidate and whether it joined.

    Attributes:
        partner: index (into the partners) of the candidate that joined; None: stop.
        best: index of the best candidate of the round (None if none was left).
        before: held-out log-likelihood of the current model at the round's start.
        after: the best candidate's held-out log-likelihood (NaN if none was tried).
        tried: candidates scored this round.
    """

    partner: int | None
    best: int | None
    before: float
    after: float
    tried: int


@dataclass
class Selection:
    """The outcome of partner selection for one party.

    Attributes:
        chosen: partner indices in the order they joined.
        rounds: one :class:`SelectionRound` per round (the last is a stop unless every
            partner joined).
        fit_records, heldout_records: sizes of the two parts of the local data.
        pooled: the selected model (:class:`Pooled`, arrays (P,)) on all local data.
        ll: (S,) its log-likelihoods on the evaluation set (NaN: no usable fit).
        candidate_ll: per round, (O,) held-out log-likelihood of each candidate
            (NaN: already chosen), for diagnosis.
    """

    chosen: list[int]
    rounds: list[SelectionRound]
    fit_records: int
    heldout_records: int
    pooled: Pooled
    ll: np.ndarray
    candidate_ll: list[np.ndarray] = field(default_factory=list)


def _heldout_ll(heldout: EvaluationSet, pooled: Pooled) -> np.ndarray:
    """Held-out log-likelihood of pooled mean coefficients (..., P) -> (...); −∞ without intercept."""
    ll = heldout.loglik(pooled.mean)
    return np.where(pooled.present[..., 0] & np.isfinite(ll), ll, -np.inf)


def select_partners(experiment: PartyExperiment, local_counts: np.ndarray, fit_counts: np.ndarray,
                    heldout_counts: np.ndarray, synthetic_counts: np.ndarray, reference: dict[str, str],
                    draw_rng: np.random.Generator, summary: FitSummary | None = None) -> Selection:
    """Greedy forward selection of partners by held-out log-likelihood, then the selected model.

    Args:
        experiment: supplies the solver, the evaluation set and S.
        local_counts: (*CELL_SHAPE, 2) all the party's local data (the selected model's).
        fit_counts, heldout_counts: (*CELL_SHAPE, 2) its two parts (:func:`heldout_split`).
        synthetic_counts: (O, K, *CELL_SHAPE, 2) the partners' synthetic sets.
        reference: the party's reference levels (from all its local data).
        draw_rng: the selected model's draw generator (its own stream).
        summary: fit counts are added here.
    """
    design = Design.build(reference)
    solver = experiment.solver(design)
    synthetic = np.asarray(synthetic_counts)
    others, sets = synthetic.shape[:2]
    P = design.size
    fit_table = np.asarray(fit_counts).astype(np.int32)
    heldout = EvaluationSet(np.asarray(heldout_counts), design)

    def fit(tables: np.ndarray, start: np.ndarray | None):
        batch = solver.fit(tables, start=start)
        if summary is not None:
            summary.add(batch)
        return batch

    base = fit(fit_table[None], None)
    current = float(_heldout_ll(heldout, pool_rubin(base.coef[:, None], base.var[:, None], base.present[:, None]))[0])
    running = np.broadcast_to(fit_table, (sets,) + fit_table.shape).copy()
    starts = warm_starts(base, np.zeros(sets, np.intp))
    remaining = list(range(others))
    chosen: list[int] = []
    rounds: list[SelectionRound] = []
    candidate_ll: list[np.ndarray] = []
    while True:
        if not remaining:
            break
        C = len(remaining)
        tables = running[None] + synthetic[remaining]
        batch = fit(tables.reshape((C * sets,) + fit_table.shape), np.tile(starts, (C, 1)))
        pooled = pool_rubin(batch.coef.reshape(C, sets, P), batch.var.reshape(C, sets, P),
                            batch.present.reshape(C, sets, P))
        scores = _heldout_ll(heldout, pooled)
        every = np.full(others, np.nan)
        every[remaining] = scores
        candidate_ll.append(every)
        best = int(np.argmax(scores))  # the first of equal maxima: the partners' order
        joined = bool(scores[best] > current)
        rounds.append(SelectionRound(remaining[best] if joined else None, remaining[best], current,
                                     float(scores[best]), C))
        if not joined:
            break
        chosen.append(remaining[best])
        running += synthetic[remaining[best]]
        starts = warm_starts(batch, np.arange(best * sets, (best + 1) * sets))
        current = float(scores[best])
        remaining.pop(best)
    final = _selected_model(fit, np.asarray(local_counts).astype(np.int32), synthetic, chosen)
    ll = experiment.evaluation(design).loglik(draw_coefficients(final.mean, final.var, final.present,
                                                                experiment.draws, draw_rng))
    ll = np.where(final.present[:1], ll, np.nan)
    return Selection(chosen, rounds, int(fit_table[..., 0].sum()), heldout.records, final, ll, candidate_ll)


def _selected_model(fit, local_table: np.ndarray, synthetic: np.ndarray, chosen: list[int]) -> Pooled:
    """All local data ∪ the chosen partners' sets: K fits pooled (the local fit alone if none)."""
    local_fit = fit(local_table[None], None)
    if not chosen:
        return pooled_row(pool_rubin(local_fit.coef[:, None], local_fit.var[:, None], local_fit.present[:, None]), 0)
    sets = synthetic.shape[1]
    tables = local_table[None] + synthetic[chosen].sum(axis=0)
    batch = fit(tables, warm_starts(local_fit, np.zeros(sets, np.intp)))
    return pooled_row(pool_rubin(batch.coef[None], batch.var[None], batch.present[None]), 0)
