"""The cost of issue 16's additions to one analysis job: the real-data yardstick and partner selection.

One scenario job of the default config's size (16 centres, f = 0.1 by default, K = 50,
R = 20, S = 100) run through ``run_scenario`` side by side in one process: the paper's
experiment alone, with the real-data yardstick, with partner selection, with both.
Synthetic sets as in ``bench_analysis.py`` (``--kind simulated``: fresh records from the
simulated cohort's distribution, closer to a DPVI generator; ``resampled``: drawn with
replacement from each centre's training split, many zero-positive levels). Prints the
CPU seconds of each (the process's, one thread: robust to other load on a shared
machine, unlike the wall clock, printed beside it), the ratio to the paper's alone, the
fits computed (and how many were replayed from statsmodels' start rather than
warm-started) and the partners selection chose.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sharing.py [--fraction 0.1] [--kind simulated]
        [--sets 50] [--orders 20] [--draws 100] [--parties 16]
"""

from __future__ import annotations

from synthshare.threads import pin_threads

pin_threads(1)  # one thread per process, as a job with threads: 1; before numpy/numba load

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analysis import load_data, simulated_sets  # noqa: E402
from synthshare.analysis.job import JobKey, run_scenario  # noqa: E402
from synthshare.analysis.settings import AnalysisSettings, SelectionSettings  # noqa: E402
from synthshare.glm.cells import count_cells  # noqa: E402
from synthshare.variables import CENTRES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--kind", choices=["simulated", "resampled"], default="simulated")
    parser.add_argument("--sets", type=int, default=50)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--parties", type=int, default=16)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()}")
    local, synthetic, test = load_data(args.fraction, args.sets)
    parties = [c for c in CENTRES if c in local][: args.parties]
    if args.kind == "simulated":
        sets = simulated_sets(local, args.sets)
    else:
        sets = {c: np.stack([count_cells(s) for s in synthetic[c]]).astype(np.int32) for c in CENTRES}
    frames = {p: local[p] for p in parties}
    counts = {p: sets[p][: args.sets] for p in parties}
    print(f"{len(parties)} parties, f = {args.fraction} ({sum(len(f) for f in frames.values())} local records), "
          f"K = {args.sets}, R = {args.orders}, S = {args.draws}, synthetic sets: {args.kind}")
    key = JobKey("centres", 1.0, args.fraction, 123)
    variants = {"paper only": (False, False), "+ real": (True, False), "+ selection": (False, True), "+ both": (True, True)}
    seconds, fits = {}, {}
    run_scenario(dict(list(frames.items())[:2]), dict(list(counts.items())[:2]), test, key,
                 AnalysisSettings(1, 15, 2, 16, True, SelectionSettings(True, 0.5, 17)))  # warm-up (compiled kernel)
    for name, (real, selection) in variants.items():
        settings = AnalysisSettings(args.orders, 15, args.draws, 16, real, SelectionSettings(selection, 0.5, 17))
        start, cpu = time.perf_counter(), time.process_time()
        job = run_scenario(frames, counts, test, key, settings)
        wall = time.perf_counter() - start
        seconds[name] = time.process_time() - cpu
        fits[name] = sum(s.fits for s in job.summaries.values())
        replayed = sum(s.fits - s.warm for s in job.summaries.values())
        print(f"{name:12s} CPU {seconds[name]:7.1f} s  {seconds[name] / seconds['paper only']:5.2f}x  (wall {wall:6.1f} s)  "
              f"{fits[name]:,} fits (+{fits[name] - fits['paper only']:,}; {replayed:,} replayed, not warm)  "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        if selection:
            chosen = [sum(1 for partner in t.column("partner").to_pylist() if partner) for t in job.selection]
            print(f"             selection rounds per party: {[len(t) for t in job.selection]}; "
                  f"partners chosen: mean {np.mean(chosen):.1f}, max {max(chosen)}")


if __name__ == "__main__":
    main()
