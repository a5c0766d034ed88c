"""A fit pinned with synthshare.threads keeps its busy threads within the job's threads.

d3p's ChaCha RNG links OpenMP, which starts one spinning thread per ``OMP_NUM_THREADS``
(or per CPU when unset) on every random draw. The reference fit path draws through it
every step (the audit's shadow fits and the stock variant run it); the fused default
draws its ChaCha words in numba (``fused_chacha``) and needs no OpenMP, so the arm that
shows the pinning's effect is the reference path, and both paths must keep within the
bound when pinned. The fit runs in a subprocess that
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
    threads, path, epochs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
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
    settings = GeneratorSettings(epochs=epochs)
    fit_parties([party], settings, 5.0, 12, 0, "t", path=path)  # compiles; the OpenMP pool starts here
    print("ready", flush=True)
    sys.stdin.readline()
    fit_parties([party], settings, 5.0, 12, 0, "t", path=path)  # the measured fit: 100 x epochs DPVI steps
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


EPOCHS = {"reference": 10, "fused": 200}
"""Epochs of the measured fit per path: ~0.1-0.3 s of steps each (the fused step is ~8x cheaper)."""


def busy_threads_during_fit(threads: int, path: str) -> tuple[int, int, float]:
    """(threads that ran during the fit, threads alive at its end, wall seconds) of a fit
    on ``path`` in a subprocess that inherits OMP_NUM_THREADS=16 and pins to ``threads`` (0: no pinning)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(INHERITED_OMP), PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    process = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(threads), path, str(EPOCHS[path])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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
    unpinned, _, unpinned_wall = busy_threads_during_fit(0, "reference")
    pinned, _, pinned_wall = busy_threads_during_fit(1, "reference")
    message = (f"reference path, busy threads: unpinned {unpinned} ({unpinned_wall:.2f} s), pinned to 1: {pinned} "
               f"({pinned_wall:.2f} s); bound {1 + FIXED_HELPERS}")
    # The measurement sees OpenMP: an inherited OMP_NUM_THREADS=16 puts well over the bound to work.
    assert unpinned > 2 * (2 + FIXED_HELPERS), message
    assert pinned <= 1 + FIXED_HELPERS, message


@pytest.mark.parametrize("path", ["fused", "reference"])
def test_job_threads_bound_the_busy_threads_of_either_fit_path(path):
    for threads in (1, 2):
        busy, _, wall = busy_threads_during_fit(threads, path)
        assert busy <= threads + FIXED_HELPERS, (f"{path} path, busy threads pinned to {threads}: {busy} ({wall:.2f} s); "
                                                 f"bound {threads + FIXED_HELPERS}")


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
