"""The ``audit:`` section of the config, checked and typed (the stage runs only when it is set).

The schema (workflow/schemas/config.schema.yaml) checks each key's type and range; this
adds the checks across keys: each audited party is one of the run's centres and its
fraction one at which the centres' local data exists (:func:`synthshare.grid.centre_fractions`),
and it has enough records for its targets and the k = 5 neighbours of the target rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from synthshare.errors import InputError
from synthshare.generator.privacy_level import NO_PRIVACY
from synthshare.naming import format_number

CONTROL = "control"
"""Name of the non-DP arm."""


def arm_name(epsilon: float) -> str:
    """``eps<ε>`` for a DP arm, ``control`` for ε = ∞."""
    return CONTROL if epsilon == NO_PRIVACY else f"eps{format_number(float(epsilon))}"


def arm_epsilon(name: str) -> float:
    """Inverse of :func:`arm_name`."""
    if name == CONTROL:
        return NO_PRIVACY
    if not name.startswith("eps"):
        raise InputError(f"audit arm {name!r}: expected 'control' or 'eps<epsilon>'")
    return float(name[3:])


AUDIT_KEYS = ("parties", "epsilons", "seed", "control_epochs", "draws", "anonymeter_attacks", "level")
PARTY_KEYS = ("party", "fraction", "vulnerable", "typical", "fits_per_target")


@dataclass(frozen=True)
class AuditedParty:
    party: str
    fraction: float
    vulnerable: int
    """Most vulnerable records audited ("Achilles' heels")."""
    typical: int
    """Typical records audited for contrast."""
    fits_per_target: int
    """Shadow fits per target and side (in, out)."""

    @property
    def key(self) -> str:
        """``<party>_f<f>``: names the party's audit files."""
        return f"{self.party}_f{format_number(self.fraction)}"


@dataclass(frozen=True)
class AuditSettings:
    parties: tuple[AuditedParty, ...]
    epsilons: tuple[float, ...]
    """The DP arms' ε; the non-DP control always runs besides them."""
    seed: int
    control_epochs: int | None
    """Epochs of the control arm (None: the release's ``generator.epochs``)."""
    draws: int
    """Guide draws of the white-box log-probability."""
    anonymeter_attacks: int
    """anonymeter's n_attacks (capped by the party's and the control set's sizes)."""
    level: float
    """Confidence level of the intervals (DeLong, Clopper–Pearson)."""

    @property
    def arm_epsilons(self) -> tuple[float, ...]:
        """Every arm's ε: the DP arms, then NO_PRIVACY (the control)."""
        return tuple(self.epsilons) + (NO_PRIVACY,)

    def party(self, key: str) -> AuditedParty:
        for party in self.parties:
            if party.key == key:
                return party
        raise InputError(f"audit: no audited party {key!r}; expected one of {[p.key for p in self.parties]}")


def _fail(where: str, key: str, value: Any, expected: str) -> None:
    raise InputError(f"{where}: audit.{key} = {value!r}: {expected}")


def audit_settings(section: Mapping[str, Any], centres: Sequence[str], fractions: Sequence[float],
                   where: str = "config") -> AuditSettings:
    """From the config's ``audit`` mapping (after the schema), checked against the run's
    centres and centre fractions; ``where`` names the config file(s) in messages."""
    for key in section:
        if key not in AUDIT_KEYS:
            _fail(where, key, section[key], f"unknown key; expected keys {list(AUDIT_KEYS)}")
    parties = []
    entries = section.get("parties") or []
    if not entries:
        _fail(where, "parties", entries, "expected at least one audited party")
    for i, entry in enumerate(entries):
        for key in entry:
            if key not in PARTY_KEYS:
                _fail(where, f"parties[{i}].{key}", entry[key], f"unknown key; expected keys {list(PARTY_KEYS)}")
        party = AuditedParty(
            party=str(entry["party"]), fraction=float(entry["fraction"]), vulnerable=int(entry["vulnerable"]),
            typical=int(entry["typical"]), fits_per_target=int(entry["fits_per_target"]),
        )
        if party.party not in centres:
            _fail(where, f"parties[{i}].party", party.party, f"not a centre of this run; expected one of {list(centres)}")
        if not any(math.isclose(party.fraction, f) for f in fractions):
            _fail(where, f"parties[{i}].fraction", party.fraction,
                  f"the centres' local data exists only at the run's fractions {sorted(fractions)}")
        if party.vulnerable < 1 or party.typical < 1 or party.fits_per_target < 2:
            _fail(where, f"parties[{i}]", dict(entry), "expected vulnerable >= 1, typical >= 1, fits_per_target >= 2")
        if party.key in [p.key for p in parties]:
            _fail(where, f"parties[{i}]", dict(entry), "the same party and fraction twice")
        parties.append(party)
    epsilons = tuple(float(e) for e in section.get("epsilons", []))
    if not epsilons or any(not (math.isfinite(e) and e > 0) for e in epsilons) or len(set(epsilons)) != len(epsilons):
        _fail(where, "epsilons", list(epsilons), "expected distinct finite values > 0 (the control arm is always added)")
    control_epochs = section.get("control_epochs")
    if control_epochs is not None and (isinstance(control_epochs, bool) or int(control_epochs) != control_epochs
                                       or control_epochs < 1):
        _fail(where, "control_epochs", control_epochs, "expected a positive integer or null (the release's epochs)")
    level = float(section.get("level", 0.95))
    if not 0.5 < level < 1:
        _fail(where, "level", level, "expected 0.5 < level < 1")
    draws = int(section.get("draws", 256))
    attacks = int(section.get("anonymeter_attacks", 200))
    if draws < 1 or attacks < 1:
        _fail(where, "draws" if draws < 1 else "anonymeter_attacks", draws if draws < 1 else attacks, "expected >= 1")
    return AuditSettings(
        parties=tuple(parties), epsilons=epsilons, seed=int(section["seed"]),
        control_epochs=None if control_epochs is None else int(control_epochs), draws=draws,
        anonymeter_attacks=attacks, level=level,
    )
