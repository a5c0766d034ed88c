"""Atomic writers: all-or-nothing, and the file mode a plain write would give."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pandas as pd
import pytest

from synthshare.atomic import atomic_path, write_csv, write_json, write_npz, write_parquet, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


WRITERS = {
    "csv": lambda p: write_csv(pd.DataFrame({"a": [1]}), p),
    "parquet": lambda p: write_parquet(pd.DataFrame({"a": [1]}), p),
    "json": lambda p: write_json({"a": 1}, p),
    "npz": lambda p: write_npz(p, a=[1, 2]),
    "txt": lambda p: write_text("a\n", p),
}


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_mode_is_what_a_plain_write_gives(tmp_path, kind, umask):
    previous = os.umask(umask)
    try:
        plain = tmp_path / f"plain.{kind}"
        plain.write_text("")  # open(..., "w"): 0666 & ~umask
        target = tmp_path / f"out.{kind}"
        WRITERS[kind](target)
    finally:
        os.umask(previous)
    assert _mode(target) == _mode(plain) == 0o666 & ~umask
    assert os.umask(previous) == previous  # the writer left the umask as it was
    os.umask(previous)


def test_mode_in_a_fresh_process_with_group_umask(tmp_path):
    """As a Snakemake job would run it: a process whose umask is the user's (here 002)."""
    target = tmp_path / "x.json"
    code = "import os, sys; os.umask(0o002); from synthshare.atomic import write_json; write_json({'a': 1}, sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(target)], check=True)
    assert _mode(target) == 0o664


def test_failed_block_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
