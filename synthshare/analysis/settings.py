"""The ``analysis:`` section of the config, checked and typed (method.md, "Analysis")."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from synthshare.errors import InputError


def _integer(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{key}: {value!r}; expected an integer >= {minimum}")


def _exact_keys(name: str, section: Any, names: set[str]) -> None:
    if not isinstance(section, Mapping):
        raise InputError(f"{name}: {section!r}; expected a mapping with keys {sorted(names)}")
    unknown = sorted(set(section) - names)
    missing = sorted(names - set(section))
    if unknown or missing:
        raise InputError(f"{name}: unknown keys {unknown}, missing keys {missing}; expected {sorted(names)}")


@dataclass(frozen=True)
class SelectionSettings:
    """Partner selection with local data alone (``synthshare.analysis.selection``; issue 16)."""

    enabled: bool
    """Run the selection variant (ll rows ``variant = 'selected'``, the selection table)."""
    heldout_fraction: float
    """Share of the party's local records held out to score candidates (stratified by outcome)."""
    seed: int
    """Seed of the fit/held-out split (one stream per party, shared across generator seeds)."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise InputError(f"analysis.selection.enabled: {self.enabled!r}; expected true or false")
        value = self.heldout_fraction
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise InputError(f"analysis.selection.heldout_fraction: {value!r}; expected a number > 0 and < 1")
        _integer("analysis.selection.seed", self.seed, 0)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> SelectionSettings:
        names = {f.name for f in fields(cls)}
        _exact_keys("analysis.selection", section, names)
        return cls(**{name: section[name] for name in names})


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
    real_sharing: bool
    """Also fit local ∪ the partners' real local data at every step of every order (the
    yardstick of issue 16; scenario jobs only: ll rows ``variant = 'real'``)."""
    selection: SelectionSettings
    """Partner selection with local data alone (:class:`SelectionSettings`)."""

    def __post_init__(self) -> None:
        for key, minimum in (("orders", 1), ("order_seed", 0), ("draws", 1), ("draw_seed", 0)):
            _integer(f"analysis.{key}", getattr(self, key), minimum)
        if not isinstance(self.real_sharing, bool):
            raise InputError(f"analysis.real_sharing: {self.real_sharing!r}; expected true or false")
        if not isinstance(self.selection, SelectionSettings):
            raise InputError(f"analysis.selection: {self.selection!r}; expected the selection settings")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> AnalysisSettings:
        """From the config's ``analysis`` mapping (every key present, no others)."""
        names = {f.name for f in fields(cls)}
        _exact_keys("analysis", section, names)
        values = {name: section[name] for name in names}
        values["selection"] = SelectionSettings.from_config(section["selection"])
        return cls(**values)
