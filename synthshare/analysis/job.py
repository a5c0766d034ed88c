"""One analysis job from data frames to tables: a scenario's parties, or the skewed party.

The rule scripts read the files and call these; everything here is file-format free
except for the names used in error messages.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from synthshare.glm.cells import count_cells, outcome_values
from synthshare.glm.design import most_frequent_levels
from synthshare.analysis.experiment import FitSummary, PartyExperiment, PartyResult, random_orders
from synthshare.glm.fit import fit_poisson
from synthshare.analysis.scoring import EvaluationSet
from synthshare.analysis.selection import SPLIT_STREAM, heldout_split, select_partners
from synthshare.analysis.settings import AnalysisSettings
from synthshare.analysis.sharing import real_sharing
from synthshare.analysis.tables import coef_table, intervals_table, ll_table, selection_table
from synthshare.errors import InputError
from synthshare.naming import format_number

SKEW_SCENARIO = "skew"
SKEW_PARTY = "skewed"


@dataclass
class JobTables:
    """Everything one analysis job writes (one table per party, or per skew fraction)."""

    ll: list[pa.Table] = field(default_factory=list)
    coef: list[pa.Table] = field(default_factory=list)
    intervals: list[pa.Table] = field(default_factory=list)
    selection: list[pa.Table] = field(default_factory=list)
    summaries: dict[str, FitSummary] = field(default_factory=dict)

    def add(self, result: PartyResult, partners: list[str], **keys) -> None:
        """The tables of one party's result (``keys``: the rows' key columns)."""
        self.ll.append(ll_table(result, **keys))
        self.coef.append(coef_table(result, **keys))
        self.intervals.append(intervals_table(result, **keys))
        self.selection.append(selection_table(result.selection, partners, **keys))


def stream_key(name: str) -> int:
    """A stable 32-bit key of a party name for seeding (CRC-32; Python's hash() is salted)."""
    return zlib.crc32(name.encode("utf-8"))


def order_rng(order_seed: int, party: str) -> np.random.Generator:
    """The party's order generator: independent of the generator seed (orders shared across seeds)."""
    return np.random.default_rng([int(order_seed), stream_key(party)])


def draw_rng(draw_seed: int, seed: int, stream: str) -> np.random.Generator:
    """The Monte Carlo draws of one party (and skew fraction) at one generator seed."""
    return np.random.default_rng([int(draw_seed), int(seed), stream_key(stream)])


def split_rng(selection_seed: int, stream: str) -> np.random.Generator:
    """The fitting/held-out split of one party's local data (shared across generator seeds)."""
    return np.random.default_rng([int(selection_seed), stream_key(stream), SPLIT_STREAM])


def run_selection(experiment: PartyExperiment, frame: pd.DataFrame, local_counts: np.ndarray,
                  synthetic_counts: np.ndarray, reference: dict[str, str], settings: AnalysisSettings, stream: str,
                  rng: np.random.Generator, source: str, result: PartyResult) -> None:
    """Partner selection with local data alone (``selection.select_partners``) into ``result.selection``.

    The split is keyed by the selection seed and ``stream`` (the party), so every
    generator seed splits a party's data alike; ``rng`` draws the selected model.
    """
    held = heldout_split(outcome_values(frame, source), settings.selection.heldout_fraction,
                         split_rng(settings.selection.seed, stream))
    if held.all() or not held.any():
        raise InputError(f"{source}: {len(frame)} local records cannot be split into a fitting and a held-out part "
                         f"at analysis.selection.heldout_fraction = {settings.selection.heldout_fraction}; "
                         "expected at least one record in each")
    fit_counts = count_cells(frame[~held], source=source)
    heldout_counts = count_cells(frame[held], source=source)
    result.selection = select_partners(experiment, local_counts, fit_counts, heldout_counts, synthetic_counts,
                                       reference, rng, result.summary)


def check_set_counts(tables: Mapping[str, np.ndarray], sources: Mapping[str, str]) -> None:
    """Every party's synthetic data holds the same number K of sets."""
    sizes = {party: table.shape[0] for party, table in tables.items()}
    if len(set(sizes.values())) > 1:
        first = next(iter(sizes))
        odd = next(p for p in sizes if sizes[p] != sizes[first])
        raise InputError(f"{sources.get(odd, odd)}: {sizes[odd]} synthetic sets; "
                         f"expected {sizes[first]} like {sources.get(first, first)}")


@dataclass(frozen=True)
class JobKey:
    """The grid point of an analysis job: the key columns of every row it writes."""

    scenario: str
    epsilon: float
    fraction: float
    seed: int


def run_scenario(local: Mapping[str, pd.DataFrame], synthetic: Mapping[str, np.ndarray], test: pd.DataFrame,
                 key: JobKey, settings: AnalysisSettings, sources: Mapping[str, str] | None = None,
                 log: logging.Logger | None = None) -> JobTables:
    """Every party of a scenario: local only (both variants), then R orders of the others.

    With ``settings.real_sharing`` also the real-data yardstick (the partners' local
    frames, ``sharing.real_sharing``; draws from ``draw_rng(..., f"{party}:real")``), with
    ``settings.selection.enabled`` partner selection (``selection.select_partners``; the
    split keyed by the selection seed and the party, draws from ``f"{party}:selected"``).
    Both use their own streams, so the paper's rows do not change with them.

    Args:
        local: party -> its local data, in the scenario's party order.
        synthetic: party -> count tables (K, *CELL_SHAPE, 2) of its synthetic sets
            (``inputs.read_set_counts``); the same parties.
        test: the global test set (evaluation set).
        key: the job's scenario, ε, f and generator seed.
        sources: names for error messages (``local:<party>``, ``synthetic:<party>``, ``test``).
    """
    sources = dict(sources or {})
    parties = list(local)
    if len(parties) < 2:
        raise InputError(f"scenario {key.scenario}: {len(parties)} parties; expected at least 2 to share data")
    if set(synthetic) != set(parties):
        raise InputError(f"scenario {key.scenario}: synthetic data of {sorted(synthetic)} for parties {sorted(parties)}")
    synth = {p: synthetic[p] for p in parties}
    check_set_counts(synth, {p: sources.get(f"synthetic:{p}", f"synthetic data of {p}") for p in parties})
    experiment = PartyExperiment(count_cells(test, source=sources.get("test", "test set")), settings.draws)
    job = JobTables()
    counts = {p: count_cells(local[p], source=sources.get(f"local:{p}", f"local data of {p}")) for p in parties}
    for party in parties:
        frame = local[party]
        source = sources.get(f"local:{party}", f"local data of {party}")
        others = [p for p in parties if p != party]
        orders = random_orders(len(others), settings.orders, order_rng(settings.order_seed, party))
        reference = most_frequent_levels(frame)
        stacked = np.stack([synth[p] for p in others])
        result = experiment.run(counts[party], stacked, orders, reference, draw_rng(settings.draw_seed, key.seed, party))
        if settings.real_sharing:
            result.real, result.real_steps = real_sharing(
                experiment, counts[party], np.stack([counts[p] for p in others]), orders, reference,
                draw_rng(settings.draw_seed, key.seed, f"{party}:real"), result.summary)
        if settings.selection.enabled:
            run_selection(experiment, frame, counts[party], stacked, reference, settings, party,
                          draw_rng(settings.draw_seed, key.seed, f"{party}:selected"), source, result)
        job.add(result, others, scenario=key.scenario, party=party, epsilon=key.epsilon, fraction=key.fraction,
                seed=key.seed)
        job.summaries[party] = result.summary
        if log:
            log.info("%s: %d local records; %s%s", party, len(frame), result.summary, _chosen(result, others))
    return job


def run_skew(local: Mapping[float, pd.DataFrame], synthetic: Mapping[str, np.ndarray], evaluation: pd.DataFrame,
             epsilon: float, seed: int, settings: AnalysisSettings, sources: Mapping[str, str] | None = None,
             log: logging.Logger | None = None) -> JobTables:
    """The skewed party (Fig 5) at every skew fraction: local only, then R orders of all centres.

    Args:
        local: skew fraction s -> the skewed party's data.
        synthetic: centre -> count tables (K, *CELL_SHAPE, 2) of its f = 1 synthetic sets,
            in the centres' order (the order indices refer to it).
        evaluation: the skewed party's evaluation set.

    Rows carry ``scenario='skew'``, ``party='skewed'``, ``fraction=1``, ``skew=s``; the
    orders are the same for every s (one order stream for the skewed party). Partner
    selection runs here too (with ``settings.selection.enabled``; split and draws keyed by
    ``skewed:<s>``); the real-data yardstick does not: the job holds only the centres'
    synthetic data, not their real records (``settings.real_sharing`` is ignored here).
    """
    sources = dict(sources or {})
    centres = list(synthetic)
    check_set_counts(synthetic, {c: sources.get(f"synthetic:{c}", f"synthetic data of {c}") for c in centres})
    stacked = np.stack([synthetic[c] for c in centres])
    experiment = PartyExperiment(count_cells(evaluation, source=sources.get("eval", "skew evaluation set")), settings.draws)
    job = JobTables()
    for skew, frame in local.items():
        name = f"{SKEW_PARTY}:{format_number(skew)}"
        source = sources.get(f"local:{skew}", f"skewed party s={skew}")
        local_counts = count_cells(frame, source=source)
        reference = most_frequent_levels(frame)
        result = experiment.run(
            local_counts,
            stacked,
            random_orders(len(centres), settings.orders, order_rng(settings.order_seed, SKEW_PARTY)),
            reference,
            draw_rng(settings.draw_seed, seed, name),
        )
        if settings.selection.enabled:
            run_selection(experiment, frame, local_counts, stacked, reference, settings, name,
                          draw_rng(settings.draw_seed, seed, f"{name}:selected"), source, result)
        job.add(result, centres, scenario=SKEW_SCENARIO, party=SKEW_PARTY, epsilon=epsilon, fraction=1.0, seed=seed,
                skew=float(skew))
        job.summaries[f"s={format_number(skew)}"] = result.summary
        if log:
            log.info("skew %g: %d local records; %s%s", skew, len(frame), result.summary, _chosen(result, centres))
    return job


def _chosen(result: PartyResult, partners: list[str]) -> str:
    """The log's note of the partners selection chose."""
    if result.selection is None:
        return ""
    return f"; selected partners {[partners[i] for i in result.selection.chosen]}"


def fit_reference(train: pd.DataFrame, evaluations: Mapping[str, pd.DataFrame], *, source: str = "training data",
                  sources: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The full-population reference (the figures' dashed line): the model on all training data.

    Reference levels are the training data's most frequent levels (the study's rule;
    the log-likelihood at the MLE does not depend on them).

    Returns:
        (reference, coef): ``evaluation, ll, records, train_records`` (ll at the MLE, per
        record) and ``term, coef, se``.
    """
    sources = dict(sources or {})
    fit = fit_poisson(train, most_frequent_levels(train), source=source)
    if fit.rank_deficient or not fit.converged:
        raise InputError(f"{source}: the full-population fit did not converge to a full-rank solution "
                         f"(rank deficient: {fit.rank_deficient}, converged: {fit.converged})")
    design = fit.design
    full = np.array([fit.coef.get(name, 0.0) for name in design.names])
    rows = []
    for name, frame in evaluations.items():
        evaluation = EvaluationSet(count_cells(frame, source=sources.get(name, name)), design)
        rows.append({"evaluation": name, "ll": float(evaluation.loglik(full)), "records": len(frame),
                     "train_records": fit.nobs})
    reference = pd.DataFrame(rows, columns=["evaluation", "ll", "records", "train_records"])
    coef = pd.DataFrame({"term": fit.coef.index, "coef": fit.coef.to_numpy(), "se": fit.se.to_numpy()})
    return reference, coef
