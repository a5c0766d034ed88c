"""The privacy ledger: one record per fitted generator, collected into ``privacy/ledger.csv``.

A record states what was promised (ε target, δ), what each accountant certifies for
the mechanism that actually ran (ε by the Fourier accountant and by dp-accounting's
PLD, each with its stated numerical error), the δ charged for truncation (batch overflow and
stream exhaustion, ``subsampling.overflow_delta``), and
every setting needed to redo the accounting (q, T, C, σ, N, capacity), plus the seed,
the variant and the package versions.

``delta`` = ``delta_accountant`` + ``delta_overflow``: the guarantee is
(ε, delta)-DP for that party's released parameters and synthetic data.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from synthshare.errors import InputError

PACKAGES = ("synthshare", "d3p", "jax", "jaxlib", "numpyro", "jax-chacha-prng", "fourier-accountant", "dp-accounting")

COLUMNS = (
    "scenario", "party", "epsilon_target", "fraction", "seed", "variant",
    "epsilon_fourier", "epsilon_fourier_error", "epsilon_pld", "epsilon_pld_error",
    "delta", "delta_accountant", "delta_overflow",
    "q", "q_effective", "steps", "epochs", "steps_per_epoch", "batch_capacity", "expected_batch",
    "clip", "sigma", "N", "components", "learning_rate", "versions",
)
"""Ledger columns, in order. ``versions`` is a JSON object of package versions."""


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def ledger_record(**fields: Any) -> dict[str, Any]:
    """A ledger record with exactly :data:`COLUMNS` (``versions`` filled in if absent).

    Raises ValueError naming a missing or unexpected field.
    """
    fields.setdefault("versions", package_versions())
    missing = [c for c in COLUMNS if c not in fields]
    extra = [k for k in fields if k not in COLUMNS]
    if missing or extra:
        raise ValueError(f"ledger record: missing fields {missing}, unexpected fields {extra}")
    return {c: fields[c] for c in COLUMNS}


def within_stated_error(record: Mapping[str, Any]) -> dict[str, bool]:
    """Whether each accountant's ε is at most the target plus its stated error."""
    target = float(record["epsilon_target"])
    return {
        "fourier": float(record["epsilon_fourier"]) <= target + float(record["epsilon_fourier_error"]),
        "pld": float(record["epsilon_pld"]) <= target + float(record["epsilon_pld_error"]),
    }


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read one ``privacy.json``; InputError naming the file on a bad record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: cannot read privacy record: {error}") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(record).__name__}")
    missing = [c for c in COLUMNS if c not in record]
    if missing:
        raise InputError(f"{path}: privacy record lacks field {missing[0]!r}; expected fields {list(COLUMNS)}")
    return record


def collect_ledger(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """All records as one table (columns :data:`COLUMNS`; ``versions`` as JSON text),
    sorted by scenario, ε, f, seed and party for stable output."""
    rows = []
    for path in paths:
        record = read_record(path)
        row = {c: record[c] for c in COLUMNS}
        row["versions"] = json.dumps(record["versions"], sort_keys=True)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if len(frame):
        frame = frame.sort_values(["scenario", "epsilon_target", "fraction", "seed", "party"], kind="stable")
    return frame.reset_index(drop=True)
