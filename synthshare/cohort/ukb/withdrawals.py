"""Read UK Biobank's withdrawals file: the participants who withdrew consent.

Format (as UK Biobank sends it to each application): one eid per line, no header.
Blank lines are skipped; surrounding whitespace is ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthshare.errors import InputError


def read_withdrawals(path: str | Path) -> np.ndarray:
    """The withdrawn eids, sorted and unique.

    Returns:
        (n_withdrawn,) int64 array. Eids absent from the main extract are kept here and
        simply match nobody (UK Biobank's list covers every withdrawal to date).

    Raises:
        InputError: a missing file or a line that is not an integer eid.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: withdrawals file not found (config cohort.ukb_raw.withdrawals)")
    eids: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.strip().strip('"')
            if not text:
                continue
            if not text.lstrip("-").isdigit():
                raise InputError(
                    f"{path}: line {line_number}: value {line.strip()!r} is not an integer eid; "
                    "expected one eid per line, no header"
                )
            eids.append(int(text))
    return np.unique(np.asarray(eids, dtype=np.int64))
