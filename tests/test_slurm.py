"""The workflow on a real SLURM cluster: profiles/slurm against a local run, byte for byte.

A one-node cluster is installed (Debian's slurm-wlm and munge) and started on
localhost by tests/slurm/; the smoke configuration's default target runs once with
the default profile (the session's shared smoke run, conftest.smoke_run) and once with
``--workflow-profile profiles/slurm``, whose jobs go through sbatch and srun. Every
file under results/ must be equal, except logs and benchmark timings, which record
times, and the local run's HTML report. Skipped, with the reason, only where the
machine cannot install or start SLURM (not root, no apt-get, no mirror).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SNAKEMAKE, WORKFLOW_PARTS

SCRIPTS = REPO / "tests" / "slurm"
SKIP_STATUS = 77  # what the tests/slurm scripts return for "this machine cannot"
RUN_TIMEOUT_S = 1500
# Records of time, not of the computation: they differ between any two runs.
TIMED_DIRS = {"logs", "benchmarks"}
# The local run also made the HTML report (not a job of the workflow).
NOT_JOB_OUTPUTS = {"report.html"}
# The local run's cores (conftest.run_snakemake), unless the node has fewer: a group job
# asks for up to this many CPUs, and every rule is single-threaded.
CORES = str(min(2, os.cpu_count() or 1))
# The one-node test cluster has no accounting: documented in docs/cluster.md. Status
# polls every few seconds instead of the profile's 20 s: a test runs many short jobs.
SLURM_ARGS = (
    "--slurm-no-account",
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
)


def _script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=timeout)


def _environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """PATH with this Python's bin (snakemake for the jobs) and /usr/sbin (the daemons)."""
    env = dict(base or os.environ)
    env["PATH"] = os.pathsep.join([str(SNAKEMAKE.parent), "/usr/sbin", "/usr/bin", env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running one-node SLURM cluster; stopped, and its state removed, afterwards."""
    if not shutil.which("bash") or os.name != "posix":
        pytest.skip("the SLURM test needs bash on a POSIX machine")
    installed = _script("install_slurm.sh", timeout=1500)
    if installed.returncode == SKIP_STATUS:
        pytest.skip(installed.stderr.strip().splitlines()[-1])
    assert installed.returncode == 0, f"install_slurm.sh failed:\n{installed.stdout}\n{installed.stderr}"
    state = Path(tempfile.mkdtemp(prefix="synthshare-slurm-"))
    started = _script("start_slurm.sh", str(state), timeout=300)
    try:
        if started.returncode == SKIP_STATUS:
            pytest.skip(started.stderr.strip().splitlines()[-1])
        assert started.returncode == 0, f"start_slurm.sh failed:\n{started.stdout}\n{started.stderr}"
        yield state
    finally:
        stopped = _script("stop_slurm.sh", str(state), timeout=300)
        assert stopped.returncode == 0, f"stop_slurm.sh left daemons running (state kept in {state}):\n{stopped.stdout}\n{stopped.stderr}"
        shutil.rmtree(state, ignore_errors=True)


def _digests(results: Path) -> dict[str, str]:
    return {
        str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(results.rglob("*"))
        if p.is_file() and not TIMED_DIRS & set(p.relative_to(results).parts) and p.name not in NOT_JOB_OUTPUTS
    }


def _queue(state: Path, run_id: str) -> list[tuple[str, str]]:
    """(SLURM job id, state) of every job of one Snakemake run, finished ones included."""
    listing = subprocess.run(
        ["squeue", "-h", "-t", "all", "--name", run_id, "-o", "%i %T"],
        capture_output=True, text=True, timeout=30, env=_environment(), check=True,
    )
    return [tuple(line.split()) for line in listing.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def local_and_slurm_runs(slurm_cluster, smoke_run, tmp_path_factory):
    """The session's local smoke run (conftest.smoke_run) and the same workflow on SLURM.

    The SLURM run copies the local run's workflow and imports its frozen library, so
    both run the same code whatever happens to the working tree meanwhile.
    """
    local, library = smoke_run["workdir"], smoke_run["env"]
    on_slurm = tmp_path_factory.mktemp("slurm")
    for part in WORKFLOW_PARTS:
        source = local / part
        if source.is_dir():
            shutil.copytree(source, on_slurm / part)
        else:
            shutil.copy2(source, on_slurm / part)
    command = [
        str(SNAKEMAKE), "--workflow-profile", "profiles/slurm", "--cores", CORES,
        *SLURM_ARGS, "--configfile", "config/smoke.yaml",
    ]
    process = subprocess.run(command, cwd=on_slurm, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=_environment(library))
    output = process.stdout + process.stderr
    if process.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((on_slurm / ".snakemake" / "slurm_logs").rglob("*.log")))
        raise AssertionError(f"snakemake on SLURM failed ({process.returncode}):\n{output[-6000:]}\n{logs}")
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, f"no SLURM run ID in Snakemake's output (was the slurm executor used?):\n{output[-3000:]}"
    return {
        "local": local / "results",
        "slurm": on_slurm / "results",
        "output": output,
        "queue": _queue(slurm_cluster, run_id.group(1)),
    }


@pytest.mark.slurm
@pytest.mark.slow
def test_jobs_ran_on_slurm(local_and_slurm_runs):
    output, queue = local_and_slurm_runs["output"], local_and_slurm_runs["queue"]
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    assert submitted, output[-3000:]
    # Every submission is known to the cluster under this run's name and completed
    # (retries would show as FAILED entries).
    assert sorted(job for job, _ in queue) == sorted(submitted)
    assert {state for _, state in queue} == {"COMPLETED"}, queue
    # The data stage's jobs went as one group job (profile: groups/group-components).
    assert "group_data" in output


@pytest.mark.slurm
@pytest.mark.slow
def test_every_output_equals_the_local_run(local_and_slurm_runs):
    local, on_slurm = (_digests(local_and_slurm_runs[k]) for k in ("local", "slurm"))
    assert len(local) > 10
    assert sorted(on_slurm) == sorted(local), "the SLURM run wrote other files than the local run"
    differing = sorted(path for path in local if local[path] != on_slurm[path])
    assert not differing, f"files differ between the local and the SLURM run: {differing}"


# Rules that stay one SLURM job each (minutes to hours at the paper's scale), and the
# input-only target rules, which run on the login node.
HEAVY_RULES = re.compile(r"fit_generators_\w+|analyse_scenario|analyse_skew|audit_shadows")
TARGET_RULES = {"all", "data", "generate", "analysis", "audit"}


@pytest.mark.parametrize("configfile", ["config/smoke.yaml", "config/paper.yaml", "config/audit.yaml", "config/heterogeneity.yaml"])
def test_every_light_rule_is_grouped(configfile):
    """The profile batches every rule that is neither heavy nor a target (no SLURM needed)."""
    listing = subprocess.run(
        [str(SNAKEMAKE), "--list-rules", "--workflow-profile", "none", "--configfile", configfile],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True,
    )
    rules = {line.split()[0] for line in listing.stdout.splitlines() if re.fullmatch(r"[A-Za-z_]\w*( \(.*\))?", line)}
    assert {"cohort", "all"} <= rules, listing.stdout
    profile = yaml.safe_load((REPO / "profiles/slurm/config.v8+.yaml").read_text())
    light = {rule for rule in rules - TARGET_RULES if not HEAVY_RULES.fullmatch(rule)}
    assert light - set(profile["groups"]) == set(), "rules to add to the profile's groups"
    assert {rule for rule in rules if HEAVY_RULES.fullmatch(rule)} & set(profile["groups"]) == set()
    assert set(profile["groups"].values()) == set(profile["group-components"])
