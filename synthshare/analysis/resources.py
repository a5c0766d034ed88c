"""Run-time requests for an analysis job, from the number of fits the config asks for.

A scenario job fits, for each of its P parties, R orders × (P − 1) steps × K synthetic
sets (plus two local-only fits); the skew job does the same for each skew fraction with
all centres' synthetic data. Issue 16's additions count at their worst case: the
real-data yardstick one fit per step and order (plus the local fit), partner selection
every candidate in every round (O + (O − 1) + … + 1 candidates × K fits, plus the
fitting part's fit, the local fit and the selected model's K fits); selection usually
stops after a few rounds, so this overestimates it. The throughput assumed, ``FITS_PER_SECOND``, is the slow
end measured by ``benchmarks/bench_analysis.py`` (synthetic sets resampled from the
local data, many zero-positive levels replayed at ~20 iterations; benchmarks/README.md);
the default run's real DPVI sets went about 5× faster (4,800–5,700 fits/s). The request doubles the estimate
and doubles again per retry.
"""

from __future__ import annotations

import math

FITS_PER_SECOND = 1000.0
OVERHEAD_S = 60.0
"""Reading the synthetic sets, count tables, scoring and writing."""
MINIMUM_MINUTES = 10


def analysis_fits(receivers: int, steps: int, orders: int, sets: int, real: bool = False,
                  selection: bool = False) -> int:
    """Fits of one job: ``receivers`` parties each walking ``orders`` orders of ``steps``
    steps with ``sets`` fits per step, plus two local-only fits each; with ``real`` the
    yardstick's fits, with ``selection`` the greedy search's at its worst case."""
    per_party = orders * steps * sets + 2
    if real:
        per_party += orders * steps + 1
    if selection:
        per_party += sets * steps * (steps + 1) // 2 + 2 + sets
    return receivers * per_party


def runtime_minutes(receivers: int, steps: int, orders: int, sets: int, attempt: int = 1, real: bool = False,
                    selection: bool = False) -> int:
    """Wall-clock request in minutes (2× margin, at least ``MINIMUM_MINUTES``), doubled per retry."""
    seconds = OVERHEAD_S + analysis_fits(receivers, steps, orders, sets, real, selection) / FITS_PER_SECOND
    return max(MINIMUM_MINUTES, int(math.ceil(2.0 * seconds / 60.0))) * 2 ** (attempt - 1)
