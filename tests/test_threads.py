"""A fit pinned with synthshare.threads keeps its busy threads within the job's threads.

d3p's ChaCha RNG links OpenMP, which starts one spinning thread per ``OMP_NUM_THREADS``
(or per CPU when unset) on every random draw. The fit runs in a subprocess that
inherits ``OMP_NUM_THREADS=16`` (as a cluster job inherits its submitter's
environment, standing in for a 64-core node on this 2-core machine) and calls
:func:`pin_threads` with the job's threads, or not at all. While the fit runs, the
CPU time of every OS thread of the process is read from ``/proc/<pid>/task/*/stat``;
a thread that ran during the fit is "busy". Idle pool threads (XLA keeps some) are
not counted; the Python thread and XLA's executor run in every fit, so the bound is
threads + :data:`FIXED_HELPERS` (measured: 3 busy threads at threads = 1, 4 at 2).
The unpinned arm must exceed the bound, so the test can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INHERITED_OMP = 16
FIXED_HELPERS = 2
"""Threads besides the job's that run during any fit: the Python thread waiting on the
compiled chunk and XLA's CPU executor thread."""

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")

PROBE = textwrap.dedent("""
    import sys
    threads = int(sys.argv[1])
    if threads > 0:
        from synthshare.threads import pin_threads
        pin_threads(threads)
    import numpy as np
    from synthshare.generator.fit import PartyData, fit_parties
    from synthshare.generator.settings import GeneratorSettings
    rng = np.random.default_rng(0)
    n = 290
    codes = np.stack([rng.integers(0, c, n) for c in (7, 2, 8, 4, 5)], axis=1).astype(np.int32)
    party = PartyData("a", codes, (rng.random(n) < 0.2).astype(np.float32))
    settings = GeneratorSettings(epochs=10)
    fit_parties([party], settings, 5.0, 12, 0, "t")  # compiles; the OpenMP pool starts here
    print("ready", flush=True)
    sys.stdin.readline()
    fit_parties([party], settings, 5.0, 12, 0, "t")  # the measured fit: 1,000 DPVI steps
    print("done", flush=True)
    sys.stdin.readline()
""")


def _thread_cpu_ticks(pid: int) -> dict[str, int]:
    """utime + stime (clock ticks) of every thread of process ``pid``."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended between listing and reading
            continue
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks


def busy_threads_during_fit(threads: int) -> tuple[int, int, float]:
    """(threads that ran during the fit, threads alive at its end, wall seconds) of a
    fit in a subprocess that inherits OMP_NUM_THREADS=16 and pins to ``threads`` (0: no pinning)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(INHERITED_OMP), PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    process = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env, cwd=ROOT,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        before = _thread_cpu_ticks(process.pid)
        started = time.perf_counter()
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "done"
        wall = time.perf_counter() - started
        after = _thread_cpu_ticks(process.pid)
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    busy = sum(1 for tid, ticks in after.items() if ticks > before.get(tid, 0))
    return busy, len(after), wall


def test_pinned_fit_keeps_busy_threads_within_job_threads_and_unpinned_exceeds_it():
    unpinned, _, unpinned_wall = busy_threads_during_fit(0)
    pinned, _, pinned_wall = busy_threads_during_fit(1)
    message = (f"busy threads: unpinned {unpinned} ({unpinned_wall:.2f} s), pinned to 1: {pinned} "
               f"({pinned_wall:.2f} s); bound {1 + FIXED_HELPERS}")
    # The measurement sees OpenMP: an inherited OMP_NUM_THREADS=16 puts well over the bound to work.
    assert unpinned > 2 * (2 + FIXED_HELPERS), message
    assert pinned <= 1 + FIXED_HELPERS, message


def test_two_job_threads_give_at_most_two_openmp_threads():
    busy, _, wall = busy_threads_during_fit(2)
    assert busy <= 2 + FIXED_HELPERS, f"busy threads pinned to 2: {busy} ({wall:.2f} s); bound {2 + FIXED_HELPERS}"


def _run(code: str, **env_values: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_values)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)


def test_pin_threads_overrides_inherited_values_and_keeps_other_xla_flags():
    result = _run(
        "import os; from synthshare.threads import pin_threads; pin_threads(3); "
        "print(*(os.environ[k] for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', "
        "'NUMBA_NUM_THREADS')), sep=','); print(os.environ['XLA_FLAGS'])",
        OMP_NUM_THREADS="64", OPENBLAS_NUM_THREADS="64",
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=true --xla_dump_to=/tmp/nowhere",
    )
    assert result.returncode == 0, result.stderr
    counts, flags = result.stdout.splitlines()
    assert counts == "3,3,3,3"
    assert flags.split() == ["--xla_dump_to=/tmp/nowhere", "--xla_cpu_multi_thread_eigen=false"]


def test_pin_threads_refuses_after_numpy_was_loaded_with_other_settings():
    result = _run("import numpy; from synthshare.threads import pin_threads; pin_threads(1)", OPENBLAS_NUM_THREADS="8")
    assert result.returncode != 0
    assert "ThreadPinningError" in result.stderr and "OPENBLAS_NUM_THREADS is '8'" in result.stderr
    # Already pinned to the same values: a second call (after imports) is a no-op.
    again = _run("from synthshare.threads import pin_threads; pin_threads(1); import jax, numpy, d3p.random; "
                 "pin_threads(1); print('ok')")
    assert again.returncode == 0 and again.stdout.strip() == "ok", again.stderr


def test_pin_threads_rejects_a_bad_count():
    from synthshare.threads import pinned_environment
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            pinned_environment(bad, {})
