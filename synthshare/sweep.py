"""The heterogeneity sweep: one whole pipeline per between-centre SD of the log relative risks.

With ``heterogeneity.sds`` empty (the default) a config is one run, ``results/<run>/``.
With values, the run is a sweep of *sub-runs* ``results/<run>/sd<v>/`` (issue 16): each
is the whole pipeline — cohort, split, parties, generators, analysis, figures, claims —
on a cohort simulated with ``heterogeneity.sd = v`` (``synthshare.cohort.simulated``),
everything else the config's; the sweep's own products (gain vs heterogeneity, the
"good party peaks early" claim per level) go to ``results/<run>/heterogeneity/``. The
workflow's rules carry the sub-run as the ``run`` wildcard, so every stage is reused as
it is: nothing here knows Snakemake.

Why ``positive_share`` can be replaced for the sweep: the simulator's outcome is
Bernoulli(λ) with a log-linear λ, and centre deviations multiply the rates of a
centre's rare high-risk cells; at the default 20 % positives an SD of 0.15 already gives
λ > 1 somewhere, and the simulator refuses (it never caps a probability). A sweep runs
every level, SD 0 included, at the one replaced share, so the levels differ only in
heterogeneity.
"""

from __future__ import annotations

import copy
from typing import Any

from synthshare.naming import format_number


def sweep_sds(config: dict) -> list[float]:
    """The SDs of the sweep, as configured (empty: no sweep)."""
    return [float(v) for v in config["heterogeneity"]["sds"]]


def sub_run(run: str, sd: float) -> str:
    """``<run>/sd<v>``: the run name (and results folder below ``results/``) of one level."""
    return f"{run}/sd{format_number(sd)}"


def run_names(config: dict) -> list[str]:
    """Every run this config writes: ``[run]``, or one sub-run per SD of the sweep."""
    sds = sweep_sds(config)
    return [sub_run(config["run"], sd) for sd in sds] if sds else [config["run"]]


def sd_of_run(config: dict, run: str) -> float | None:
    """The sweep SD of a sub-run; None for a run that is not one of the sweep's."""
    for sd in sweep_sds(config):
        if sub_run(config["run"], sd) == run:
            return sd
    return None


def cohort_overrides(config: dict, run: str) -> dict[str, Any]:
    """What a run replaces in the simulated cohort's parameters (empty outside a sweep):
    ``{"heterogeneity": {"sd": v}}`` and, when configured, ``{"positive_share": p}``."""
    sd = sd_of_run(config, run)
    if sd is None:
        return {}
    overrides: dict[str, Any] = {"heterogeneity": {"sd": sd}}
    share = config["heterogeneity"]["positive_share"]
    if share is not None:
        overrides["positive_share"] = float(share)
    return overrides


def apply_overrides(parameters: dict, overrides: dict[str, Any]) -> dict:
    """A copy of the cohort parameters with a run's overrides (:func:`cohort_overrides`)."""
    applied = copy.deepcopy(parameters)
    for key, value in overrides.items():
        applied[key] = copy.deepcopy(value)
    return applied
