"""The ``analysis:`` section of the config, checked and typed (method.md, "Analysis")."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from synthshare.errors import InputError


@dataclass(frozen=True)
class AnalysisSettings:
    """What the utility experiment repeats and how it draws (no defaults: the config's
    schema holds them, and a checked config has every key)."""

    orders: int
    """R, random orders in which a party adds the others' synthetic data."""
    order_seed: int
    """Seed of the orders (one stream per party, shared across generator seeds)."""
    draws: int
    """S, Monte Carlo draws of coefficients per pooled model."""
    draw_seed: int
    """Seed of the draws (one stream per party and generator seed)."""

    def __post_init__(self) -> None:
        for key, minimum in (("orders", 1), ("order_seed", 0), ("draws", 1), ("draw_seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(f"analysis.{key}: {value!r}; expected an integer >= {minimum}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> AnalysisSettings:
        """From the config's ``analysis`` mapping (every key present, no others)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - names)
        missing = sorted(names - set(section))
        if unknown or missing:
            raise InputError(f"analysis: unknown keys {unknown}, missing keys {missing}; expected {sorted(names)}")
        return cls(**{name: section[name] for name in names})
