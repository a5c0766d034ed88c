"""Reading the analysis stage's files for the figures, a slice at a time.

``analysis/ll.parquet`` holds ~170 million rows at paper scale (docs/architecture.md), so
it is never loaded whole: every read names its columns and pushes equality filters down
to pyarrow. Every reader checks the columns it needs and names the file and what is
missing when they are not there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from synthshare.errors import InputError

LL_COLUMNS = ("scenario", "party", "epsilon", "fraction", "skew", "seed", "variant", "order", "step", "draw", "ll")
REFERENCE_COLUMNS = ("evaluation", "ll")
COEF_COLUMNS = ("scenario", "party", "epsilon", "fraction", "seed", "step", "term", "mean", "var")
COEF_OPTIONAL = ("skew", "variant")
"""Written by the analysis stage besides the contract's columns: the skewed party's skew
fraction (NaN elsewhere) and the model variant (``full`` | ``no_ethnicity``)."""
ELBO_COLUMNS = ("epoch", "elbo")
LEDGER_COLUMNS = ("scenario", "party", "epsilon_target", "fraction", "seed", "N")
"""The privacy ledger's columns the figures use: which fit, and its number of records N."""

_GENERATOR_DIR = re.compile(
    r"generator/(?P<scenario>[^/]+)/eps(?P<epsilon>[^/]+)/f(?P<fraction>[^/]+)/seed(?P<seed>\d+)/(?P<party>[^/]+)/elbo\.csv$"
)


def _require_columns(path: str | Path, present: Iterable[str], needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in set(present)]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected columns {list(needed)}")


def read_ll(
    path: str | Path,
    columns: Sequence[str] = ("party", "step", "ll"),
    **equal: Any,
) -> pd.DataFrame:
    """Rows of ``ll.parquet`` whose columns equal the given values; only ``columns``.

    A keyword's value may be a scalar (``==``) or a list/tuple (``in``), e.g.
    ``read_ll(p, scenario="centres", epsilon=1.0, fraction=0.1, variant="full", step=[0, 15])``.

    Returns:
        DataFrame with ``columns`` (ll float64), in file order; possibly empty.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected the analysis stage's ll.parquet")
    schema = pq.read_schema(path)
    _require_columns(path, schema.names, LL_COLUMNS)
    expression = None
    for key, value in equal.items():
        if key not in LL_COLUMNS:
            raise ValueError(f"read_ll: unknown column {key!r}")
        term = ds.field(key).isin(list(value)) if isinstance(value, (list, tuple)) else ds.field(key) == value
        expression = term if expression is None else expression & term
    table = ds.dataset(path, format="parquet").to_table(columns=list(columns), filter=expression)
    frame = table.to_pandas()
    if "ll" in frame:
        frame["ll"] = frame["ll"].astype(np.float64)
    return frame


def samples_by(frame: pd.DataFrame, keys: str | Sequence[str], value: str = "ll") -> dict[Any, np.ndarray]:
    """Group ``frame[value]`` by ``keys``: key (scalar or tuple) -> 1-D float64 array."""
    return {key: group[value].to_numpy(np.float64) for key, group in frame.groupby(keys, sort=True)[[value]]}


def read_reference(path: str | Path, evaluation: str = "global_test") -> float:
    """The full-population fit's per-record test log-likelihood on ``evaluation``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected the analysis stage's reference.parquet")
    frame = pd.read_parquet(path)
    _require_columns(path, frame.columns, REFERENCE_COLUMNS)
    rows = frame.loc[frame["evaluation"] == evaluation, "ll"]
    if len(rows) != 1:
        raise InputError(f"{path}: evaluation = {evaluation!r} has {len(rows)} rows; expected exactly one")
    return float(rows.iloc[0])


def read_coef(path: str | Path) -> pd.DataFrame:
    """``coef.parquet``, full-model rows: ``scenario, party, epsilon, fraction, skew, seed, step, term, mean, var``.

    ``skew`` is NaN where the file has none; rows of another model variant
    (``no_ethnicity``) are left out (their reference coding differs).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected the analysis stage's coef.parquet")
    frame = pd.read_parquet(path)
    _require_columns(path, frame.columns, COEF_COLUMNS)
    if "variant" in frame:
        frame = frame[frame["variant"] == "full"]
    if "skew" not in frame:
        frame = frame.assign(skew=np.nan)
    columns = ["scenario", "party", "epsilon", "fraction", "skew", "seed", "step", "term", "mean", "var"]
    return frame[columns].reset_index(drop=True)


def read_truth(path: str | Path) -> dict[str, float]:
    """Ground-truth coefficients of ``truth.json`` (``Intercept``, ``feature[level]``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected the data stage's truth.json")
    coefficients = json.loads(path.read_text()).get("coefficients")
    if not isinstance(coefficients, dict) or "Intercept" not in coefficients:
        raise InputError(f"{path}: 'coefficients' = {coefficients!r}; expected a mapping with 'Intercept' "
                         "(a simulated cohort's ground truth)")
    return {str(k): float(v) for k, v in coefficients.items()}


def parse_elbo_path(path: str | Path) -> dict[str, Any]:
    """Scenario, ε, f, seed and party of a generator fit from its ``elbo.csv`` path."""
    match = _GENERATOR_DIR.search(Path(path).as_posix())
    if match is None:
        raise InputError(f"{path}: not a generator fit's elbo.csv; expected "
                         "generator/<scenario>/eps<ε>/f<f>/seed<seed>/<party>/elbo.csv")
    fields = match.groupdict()
    return {"scenario": fields["scenario"], "epsilon": float(fields["epsilon"]), "fraction": float(fields["fraction"]),
            "seed": int(fields["seed"]), "party": fields["party"]}


def read_elbo_traces(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Every fit's ELBO trace, stacked: ``scenario, epsilon, fraction, seed, party, epoch, elbo``."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        _require_columns(path, frame.columns, ELBO_COLUMNS)
        if frame.empty:
            raise InputError(f"{path}: no rows; expected one ELBO value per epoch")
        for key, value in parse_elbo_path(path).items():
            frame[key] = value
        frames.append(frame)
    if not frames:
        raise InputError("elbo traces: no elbo.csv given; expected one per generator fit")
    columns = ["scenario", "epsilon", "fraction", "seed", "party", "epoch", "elbo"]
    return pd.concat(frames, ignore_index=True)[columns]


def read_fit_sizes(path: str | Path) -> pd.DataFrame:
    """Each generator fit's number of records from the privacy ledger:
    ``scenario, party, epsilon, fraction, seed, N``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected the generator stage's privacy ledger")
    frame = pd.read_csv(path)
    _require_columns(path, frame.columns, LEDGER_COLUMNS)
    frame = frame.rename(columns={"epsilon_target": "epsilon"})[["scenario", "party", "epsilon", "fraction", "seed", "N"]]
    if (frame["N"] <= 0).any():
        raise InputError(f"{path}: column N has a value <= 0; expected each fit's number of records")
    return frame
