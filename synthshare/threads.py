"""Pin every native thread pool of a job to the job's thread count.

A job's native libraries each size a thread pool when they are loaded, from the
environment, or from the number of CPUs when the variable is unset:

- ``OMP_NUM_THREADS``: OpenMP (libgomp), linked by d3p's ChaCha RNG
  (``jax-chacha-prng``). Unset, every step's noise and subsampling bits spin one
  OpenMP thread per CPU: measured here, the aligned DPVI step took 7,042 µs wall /
  2,574 µs CPU on a loaded machine against 191 / 165 µs with ``OMP_NUM_THREADS=1``;
  on a 64-core cluster node running many jobs that oversubscribes the node.
- ``OPENBLAS_NUM_THREADS`` (numpy's bundled OpenBLAS), ``MKL_NUM_THREADS`` (an MKL
  numpy from conda), ``NUMBA_NUM_THREADS`` (numba's parallel pool).
- ``XLA_FLAGS``: ``--xla_cpu_multi_thread_eigen=false`` makes XLA's CPU matrix
  products single-threaded. XLA also compiles its programs for the CPUs the process may
  use at compile time; :mod:`synthshare.generator.compilation` compiles them for one
  CPU. XLA keeps a pool of idle helper threads sized by the CPU count that this flag
  does not remove; they sleep and cost no CPU.

:func:`pin_threads` is the one place that sets them. **Call it before numpy, jax,
pandas or d3p are imported** — first thing in a script, as the values are read when
the libraries load. It overrides inherited values (a cluster job inherits its
submitter's environment: ``OMP_NUM_THREADS=64`` from a login shell would otherwise
stand). If a library that reads one of these variables is already loaded and the
variable holds another value, it raises :class:`ThreadPinningError` rather than
silently leaving that pool at its old size; called again with the same count it
is a no-op.

A job with ``threads: n`` gets ``n`` for the OpenMP/BLAS/numba pools; the DPVI
program itself is sequential (one compiled step after another), so n > 1 helps only
the libraries that parallelise.
"""

from __future__ import annotations

import os
import sys
from typing import MutableMapping

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
"""Variables set to the job's thread count."""

XLA_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false",)
"""Flags added to ``XLA_FLAGS`` (other flags already there are kept)."""

_READERS = {
    # variable -> modules whose native pool has read it once any of them is imported
    "OMP_NUM_THREADS": ("chacha.native", "d3p.random"),
    "OPENBLAS_NUM_THREADS": ("numpy",),
    "MKL_NUM_THREADS": ("numpy",),
    "NUMBA_NUM_THREADS": ("numba",),
    "XLA_FLAGS": ("jaxlib.xla_extension",),
}


class ThreadPinningError(RuntimeError):
    """A library was loaded before :func:`pin_threads` with a different thread setting."""


def _flag_name(flag: str) -> str:
    return flag.split("=", 1)[0]


def xla_flags(current: str | None) -> str:
    """``current`` XLA flags with :data:`XLA_THREAD_FLAGS` set (same-named flags replaced)."""
    ours = {_flag_name(flag) for flag in XLA_THREAD_FLAGS}
    kept = [flag for flag in (current or "").split() if _flag_name(flag) not in ours]
    return " ".join(kept + list(XLA_THREAD_FLAGS))


def pinned_environment(threads: int, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The values :func:`pin_threads` sets, as a mapping (for a subprocess's ``env``)."""
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise ValueError(f"threads: {threads!r}; expected a positive integer")
    environ = os.environ if environ is None else environ
    values = {name: str(int(threads)) for name in THREAD_VARIABLES}
    values["XLA_FLAGS"] = xla_flags(environ.get("XLA_FLAGS"))
    return values


def pin_threads(threads: int, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the OpenMP, BLAS, numba and XLA thread settings of this process to ``threads``.

    Must run before numpy/jax/d3p are imported (see the module docstring). Raises
    :class:`ThreadPinningError` naming the variable, its old and new value and the
    module already loaded when a pool was sized before this call with another value.
    Returns the values set.
    """
    environ = os.environ if environ is None else environ
    values = pinned_environment(threads, environ)
    for name, value in values.items():
        if environ.get(name) == value:
            continue
        loaded = [module for module in _READERS[name] if module in sys.modules]
        if loaded:
            raise ThreadPinningError(
                f"pin_threads({threads}): {name} is {environ.get(name)!r}, wanted {value!r}, but {loaded[0]} is "
                f"already imported and has sized its thread pool; call pin_threads before importing numpy/jax/d3p"
            )
    environ.update(values)
    return values
