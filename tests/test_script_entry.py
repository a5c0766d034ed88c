"""scripts/_entry.py: every rule script pins its job's threads before the numeric libraries load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A stand-in for Snakemake's preamble: the injected object exists before the script body runs.
INJECTED = textwrap.dedent("""
    import sys, types
    sys.path.insert(0, {scripts!r})
    snakemake = types.SimpleNamespace(threads={threads})
    import _entry
    import os
    print(os.environ["OMP_NUM_THREADS"], os.environ["OPENBLAS_NUM_THREADS"], "numpy" in sys.modules,
          os.environ["XLA_FLAGS"])
""")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="16", OPENBLAS_NUM_THREADS="16", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_a_rule_script_pins_the_injected_threads_over_inherited_values():
    for threads in (1, 3):
        done = _run(INJECTED.format(scripts=str(ROOT / "scripts"), threads=threads))
        assert done.returncode == 0, done.stderr
        omp, blas, numpy_loaded, xla = done.stdout.split(maxsplit=3)
        assert (omp, blas, numpy_loaded) == (str(threads), str(threads), "False")
        assert "--xla_cpu_multi_thread_eigen=false" in xla


def test_threads_of_a_standalone_script_and_of_an_in_process_import():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from _entry import job_threads
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    script = types.SimpleNamespace(__file__=str(ROOT / "scripts" / "write_claims.py"))
    assert job_threads(script, ["--configfile", "c.yaml", "claims"]) == 1
    assert job_threads(script, ["--threads", "2", "claims"]) == 2
    assert job_threads(script, ["--threads=3", "claims"]) == 3
    assert job_threads(types.SimpleNamespace(snakemake=types.SimpleNamespace(threads=4)), []) == 4
    # a test (pytest is __main__) importing a script to call its main: not a job, no pinning
    assert job_threads(types.SimpleNamespace(__file__=str(ROOT / "tests" / "conftest.py")), ["--threads", "2"]) is None
    assert job_threads(None, []) is None


def test_every_rule_script_imports_the_entry_front_first():
    for script in sorted((ROOT / "scripts").glob("*.py")):
        if script.name == "_entry.py":
            continue
        imports = [line for line in script.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert imports[0] == "from _entry import job_from_command_line  # isort: skip", script.name
