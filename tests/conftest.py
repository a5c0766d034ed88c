"""Shared test helpers: a private copy of the workflow to run Snakemake in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
WORKFLOW_PARTS = ("Snakefile", "workflow", "scripts", "config", "profiles")


def copy_workflow(target: Path) -> Path:
    """Copy what a run needs (not results/) into ``target``; return it."""
    target.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / part)
    return target


def frozen_library(target: Path) -> dict[str, str]:
    """Copy ``synthshare/`` into ``target``; return an environment that imports that copy.

    Runs compared with one another must use the same library, while the editable
    install follows the working tree (which may change between two runs). PYTHONPATH
    comes before the editable finder, and Snakemake's jobs inherit it.
    """
    shutil.copytree(REPO / "synthshare", target / "synthshare", ignore=shutil.ignore_patterns("__pycache__"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 1500, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with the default profile; return the process."""
    command = [str(SNAKEMAKE), "--workflow-profile", "profiles/default", "--cores", "2", *args]
    process = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and process.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({process.returncode}):\n{process.stdout[-4000:]}\n{process.stderr[-8000:]}")
    return process


def run_cut_smoke(workdir: Path, name: str, snakefile: str, cut) -> dict:
    """Run ``snakefile`` in ``workdir`` on config/smoke.yaml as edited in place by ``cut``.

    The stage tests run part of the workflow (a Snakefile that includes some rule files)
    on a smaller grid; ``cut(config)`` shrinks it. Writes ``Snakefile.<name>`` and
    ``config/<name>.yaml``; returns the config that ran.
    """
    (workdir / f"Snakefile.{name}").write_text(snakefile)
    config = yaml.safe_load((workdir / "config/smoke.yaml").read_text())
    cut(config)
    (workdir / f"config/{name}.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--snakefile", f"Snakefile.{name}", "--configfile", f"config/{name}.yaml")
    return config


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="session")
def cohort_parameters() -> dict:
    from synthshare.cohort.simulated import load_parameters

    return load_parameters(REPO / "config" / "cohort_simulated.yaml")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> dict[str, Path | dict]:
    """The whole workflow on config/smoke.yaml, run once per test session, plus its report.

    Shared by every test that needs real end-to-end outputs (the smoke checks and the
    SLURM comparison), so CI runs the expensive part once. Returns the workflow copy,
    its results directory and the environment (frozen library) it ran with.
    """
    env = frozen_library(tmp_path_factory.mktemp("smoke-library"))
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    run_snakemake(workdir, "--configfile", "config/smoke.yaml", env=env)
    run_snakemake(workdir, "--configfile", "config/smoke.yaml", "--report", "results/smoke/report.html", env=env)
    return {"workdir": workdir, "results": workdir / "results", "env": env}
