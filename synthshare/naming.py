"""How numbers and parties appear in file paths and tables."""

from __future__ import annotations


def format_number(value: float) -> str:
    """Shortest stable text of a float for paths: 1.0 -> '1', 0.5 -> '0.5', 1e-6 -> '1e-06'."""
    return f"{float(value):g}"


def uniform_scenario(party_count: int) -> str:
    """Scenario name of the uniform split into ``party_count`` parties."""
    return f"uniform{int(party_count)}"


def uniform_parties(party_count: int) -> list[str]:
    """Party names u1 ... uM of a uniform split."""
    return [f"u{i}" for i in range(1, int(party_count) + 1)]
