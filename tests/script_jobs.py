"""Run a rule script's ``main(snakemake)`` in-process on a job object built like Snakemake's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module (its ``main`` is not run)."""
    scripts = str(REPO / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)  # the scripts import their entry front, scripts/_entry.py
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_job(input: dict, params: dict, output: dict, log: str | Path, threads: int = 1) -> SimpleNamespace:
    """A ``snakemake`` object with Snakemake's own named lists (attribute and list access)."""
    import snakemake.api  # noqa: F401  (imports Snakemake's modules in the order they need)
    from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params

    def strings(mapping: dict) -> dict:
        return {k: [str(x) for x in v] if isinstance(v, (list, tuple)) else str(v) for k, v in mapping.items()}

    return SimpleNamespace(input=InputFiles(fromdict=strings(input)), params=Params(fromdict=params),
                           output=OutputFiles(fromdict=strings(output)), log=Log([str(log)]), threads=threads)
