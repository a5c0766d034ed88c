"""Atomic writes: a killed job leaves either the finished file or nothing.

Every writer goes through :func:`atomic_path`, which hands out a temporary sibling
path and renames it over the target only when the block finishes without error.
The finished file gets the mode a plain ``open(target, "w")`` would give it
(0666 & ~umask), not ``mkstemp``'s private 0600: results on a shared cluster are
readable by whoever the user's umask lets read them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary name keeps the target's suffix, so writers that infer a format
    from it (pandas, numpy, matplotlib) behave as for the target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # Writers may replace the temporary file (a new inode), so set the mode at the end.
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process's umask (read by setting and restoring it: POSIX has no getter).

    Not thread-safe for the instant between the two calls; the pipeline's writers run in
    one thread per process.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_parquet(frame: pd.DataFrame, target: str | os.PathLike) -> None:
    """Write ``frame`` to Parquet atomically, without the index, deterministically."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def write_csv(frame: pd.DataFrame, target: str | os.PathLike, **kwargs: Any) -> None:
    """Write ``frame`` to CSV atomically (no index)."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", **kwargs)


def write_json(obj: Any, target: str | os.PathLike) -> None:
    """Write ``obj`` as sorted, indented JSON atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_npz(target: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an uncompressed NPZ atomically (never pickled)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})


def write_text(text: str, target: str | os.PathLike) -> None:
    """Write a text file atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
