"""Compile jitted training loops for one CPU thread.

XLA's CPU compiler splits large-enough operations into parallel tasks, sized by the
CPUs the process may use *at compile time*. For DPVI's many small operations per step
the thread hand-offs cost more than they save, and on a shared machine (2 cores, other
jobs running) a step waits for a descheduled worker: measured during development, a DPVI
step took 150–600 µs compiled for two threads and 90–140 µs compiled for one. XLA offers no
flag for this in jaxlib 0.4.30, so :func:`compile_for_one_thread` restricts the process
to one CPU while compiling only and restores the affinity before the code runs: the
compiled program is sequential, and the operating system may run it on any CPU.
Snakemake jobs then use one core each (``threads: 1``) and run side by side.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """Restrict the process to a single CPU inside the block (no-op where unsupported)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def compile_for_one_thread(function: Callable, *args: Any) -> Callable:
    """``jax.jit(function)`` lowered and compiled for ``args`` with one compile-time CPU.

    Returns the compiled executable; call it with arguments of the same shapes and types.
    """
    import jax

    lowered = jax.jit(function).lower(*args)
    with one_cpu():
        return lowered.compile()


def largest_divisor(total: int, limit: int) -> int:
    """Largest divisor of ``total`` not above ``limit``: the length of equal pieces, so that
    one compiled program shape runs all of them."""
    return max(d for d in range(1, min(total, limit) + 1) if total % d == 0)
