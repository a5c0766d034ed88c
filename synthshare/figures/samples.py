"""The log-likelihood samples each figure compares, cut from ``ll.parquet``.

A party of a scenario with M parties is scored at step 0 (local only, ``order = -1``)
and at steps 1 ... M-1 (synthetic data of that many other parties added); "combined"
is the last step, all other parties' data added (Fig 1). The skewed party of Fig 5
receives every centre's data, so its last step is the number of centres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from synthshare.errors import InputError
from synthshare.figures.readers import read_ll, samples_by
from synthshare.naming import format_number as fmt


def _where(**equal) -> str:
    return ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in equal.items())


def need(samples: dict, key, path: str | Path, **where) -> np.ndarray:
    """``samples[key]``, or an InputError naming the file and the rows that are missing."""
    values = samples.get(key)
    if values is None or len(values) == 0:
        raise InputError(f"{path}: no ll rows for {_where(**where)}; expected them for this run's grid "
                         "(is ll.parquet from this config?)")
    return values


def local_and_combined(path: str | Path, parties: Sequence[str], last_step: int, variant: str = "full",
                       **equal) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """party -> (local-only sample, combined sample at ``last_step``) for the rows ``equal``.

    Reads only steps 0 and ``last_step`` of the given parties.
    """
    frame = read_ll(path, columns=("party", "step", "ll"), party=list(parties), variant=variant,
                    step=[0, int(last_step)], **equal)
    groups = samples_by(frame, ["party", "step"])
    return {
        party: (need(groups, (party, 0), path, party=party, step=0, variant=variant, **equal),
                need(groups, (party, int(last_step)), path, party=party, step=int(last_step), variant=variant, **equal))
        for party in parties
    }


def local_only(path: str | Path, parties: Sequence[str], variant: str = "full", **equal) -> dict[str, np.ndarray]:
    """party -> local-only sample (step 0) for the rows ``equal``."""
    frame = read_ll(path, columns=("party", "ll"), party=list(parties), variant=variant, step=0, **equal)
    groups = samples_by(frame, "party")
    return {p: need(groups, p, path, party=p, step=0, variant=variant, **equal) for p in parties}


def steps_of(path: str | Path, party: str, last_step: int, **equal) -> dict[int, np.ndarray]:
    """step -> sample for one party, every step 0 ... ``last_step`` (variant ``full``)."""
    frame = read_ll(path, columns=("step", "ll"), party=party, variant="full", **equal)
    groups = samples_by(frame, "step")
    return {s: need(groups, s, path, party=party, step=s, **equal) for s in range(int(last_step) + 1)}


def rank_by_local_median(local: dict[str, np.ndarray]) -> list[str]:
    """Parties sorted by their local-only median log-likelihood, worst first (Fig 1's order)."""
    return sorted(local, key=lambda p: (float(np.median(local[p])), p))


def representative_parties(local: dict[str, np.ndarray]) -> dict[str, str]:
    """The paper's bad, intermediate and good party by local-only median (Barts, Sheffield, Leeds).

    Worst, middle (the upper median of the ranking) and best; fewer when there are fewer
    than three parties. Returns party -> role, worst first.
    """
    ranked = rank_by_local_median(local)
    picks = {ranked[0]: "bad local fit", ranked[len(ranked) // 2]: "intermediate local fit", ranked[-1]: "good local fit"}
    return {p: picks[p] for p in ranked if p in picks}


def percent(fraction: float) -> str:
    """0.1 -> '10 %', 0.25 -> '25 %'."""
    return f"{100 * float(fraction):g} %"


def summary_row(values: np.ndarray) -> dict[str, float | int]:
    """n, mean and quartiles of a sample (table columns)."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"n": int(len(values)), "mean": float(np.mean(values)), "q1": float(q1), "median": float(median), "q3": float(q3)}
