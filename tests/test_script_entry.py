"""scripts/_entry.py: every rule script pins its job's threads before the numeric libraries load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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


def test_a_standalone_script_pins_the_threads_option():
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "scripts")!r})
        import _entry, os
        print(os.environ["OMP_NUM_THREADS"])
    """)
    assert _run(code).stdout.strip() == "1"
    assert _run(code, "--threads", "2", "claims").stdout.strip() == "2"


def test_every_rule_script_imports_the_entry_front_first():
    for script in sorted((ROOT / "scripts").glob("*.py")):
        if script.name == "_entry.py":
            continue
        imports = [line for line in script.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert imports[0] == "from _entry import job_from_command_line  # isort: skip", script.name
