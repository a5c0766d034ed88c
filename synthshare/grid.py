"""The experiment grid a config asks for (method.md: the paper's grid is not a product).

- ``centres`` models at (ε, f_ref) for every ε in ``epsilons`` (Fig 6, S1/S2) and at
  (ε_ref, f) for every f in ``fractions`` (Figs 3-5), plus (ε_ref, f_ref) (Figs 1, 2);
- ``uniform<M>`` models at (ε_ref, uniform.fraction) for every M in ``uniform.party_counts``;
- the skewed party at ε_ref when f = 1 is in the grid and skew fractions are given.
Every model is fitted once per seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthshare.naming import uniform_parties, uniform_scenario
from synthshare.variables import ALL_CENTRES, CENTRES


@dataclass(frozen=True, order=True)
class ModelSetting:
    """One (scenario, ε, f) at which every party of the scenario fits a generator."""

    scenario: str
    epsilon: float
    fraction: float


def centre_parties(config: dict) -> list[str]:
    """The centres that are parties, in ALL_CENTRES order ('all' = the 16 study centres)."""
    chosen = config["parties"]
    return list(CENTRES) if chosen == "all" else [c for c in ALL_CENTRES if c in chosen]


def parties_of(config: dict, scenario: str) -> list[str]:
    """Party names of a scenario: the centres, or u1 ... uM for ``uniform<M>``."""
    if scenario == "centres":
        return centre_parties(config)
    if scenario.startswith("uniform"):
        return uniform_parties(int(scenario.removeprefix("uniform")))
    raise ValueError(f"unknown scenario {scenario!r}")


def model_settings(config: dict) -> list[ModelSetting]:
    """Every (scenario, ε, f) of the run, sorted, without duplicates."""
    ref_eps = float(config["reference"]["epsilon"])
    ref_frac = float(config["reference"]["fraction"])
    settings = {ModelSetting("centres", ref_eps, ref_frac)}
    settings |= {ModelSetting("centres", float(e), ref_frac) for e in config["epsilons"]}
    settings |= {ModelSetting("centres", ref_eps, float(f)) for f in config["fractions"]}
    uniform_fraction = float(config["uniform"]["fraction"])
    settings |= {ModelSetting(uniform_scenario(m), ref_eps, uniform_fraction) for m in config["uniform"]["party_counts"]}
    return sorted(settings)


def centre_fractions(config: dict) -> list[float]:
    """Every fraction at which the centres' local data is needed, sorted."""
    return sorted({s.fraction for s in model_settings(config) if s.scenario == "centres"})


def skew_enabled(config: dict) -> bool:
    """Fig 5 runs when the centres have f = 1 models at ε_ref and skew fractions are set."""
    ref_eps = float(config["reference"]["epsilon"])
    return bool(config["skew"]["fractions"]) and ModelSetting("centres", ref_eps, 1.0) in model_settings(config)
