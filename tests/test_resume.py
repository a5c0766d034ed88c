"""Resume: a run killed mid-way reruns only its unfinished jobs on restart.

The data stage of config/smoke.yaml runs on one core (one job at a time); when the
`local_centres` job has started (its log file exists) the whole process group,
Snakemake and the job's script, is killed with SIGKILL, as a node failure or
``scancel --signal=KILL`` would. Then:

- the killed job left no output that Snakemake takes as finished: one of its outputs
  is planted (emulating a job killed after writing 1 of its 12 files; our writers are
  atomic, so a file under its final name is always complete in itself) and Snakemake
  without ``--rerun-incomplete`` refuses to go on, naming that file as incomplete;
- ``make run`` on the locked directory fails and prints the two commands to resume;
  the first (``snakemake --unlock``; a killed Snakemake leaves its directory lock
  behind) is run exactly as printed; then a dry run
  with the workflow profile (``rerun-incomplete: true``) plans exactly the
  jobs that had not finished, and the restart runs exactly those;
- the finished jobs' outputs are untouched, and every output equals an uninterrupted
  run's byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO, SNAKEMAKE, copy_workflow, frozen_library, run_snakemake

pytestmark = pytest.mark.slow

SMOKE = ("--configfile", "config/smoke.yaml")
KILLED_RULE = "local_centres"
RESULTS = Path("results/smoke")
START_TIMEOUT_S = 180


def finished_rules(output: str) -> list[str]:
    """Rules Snakemake reported as finished ("Finished jobid: N (Rule: X)"), in order."""
    return re.findall(r"Finished jobid: \d+ \(Rule: ([\w.-]+)\)", output)


def planned_jobs(output: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake run or dry run: rule -> job count (no total)."""
    match = re.search(r"Job stats:\n\s*job\s+count\n\s*-+\s+-+\n(.*?)\n\s*total\s+\d+", output, re.S)
    if match is None:
        raise AssertionError(f"no 'Job stats' table in Snakemake output:\n{output[-3000:]}")
    return {rule: int(count) for rule, count in (line.split() for line in match.group(1).splitlines())}


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def kill_when_started(workdir: Path, rule: str, env: dict[str, str] | None = None) -> str:
    """Run the data stage; SIGKILL its process group once ``rule`` has started; return its output."""
    log = workdir / "killed_run.out"
    with open(log, "w") as out:
        # Its own session, so that one killpg reaches Snakemake and the job it runs.
        process = subprocess.Popen(
            [str(SNAKEMAKE), "data", "--workflow-profile", "profiles/default", "--cores", "1", *SMOKE],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        started = workdir / RESULTS / "logs" / f"{rule}.log"
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while not started.exists():
                if process.poll() is not None:
                    raise AssertionError(f"the run ended ({process.returncode}) before {rule} started:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{rule} did not start within {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")
                time.sleep(0.01)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    return log.read_text()


def make_run(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``make run`` on config/smoke.yaml with the test's Python (no install step)."""
    shutil.copy2(REPO / "Makefile", workdir / "Makefile")
    return subprocess.run(
        ["make", "run", f"BIN={SNAKEMAKE.parent}", "STAMP=", "CONFIG=config/smoke.yaml", "CORES=1"],
        cwd=workdir, capture_output=True, text=True, timeout=300, env=env,
    )


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Kill a run mid-way, inspect it, restart it; return everything the tests check."""
    # Every run below uses one snapshot of the workflow and of the library, taken now.
    library = frozen_library(tmp_path_factory.mktemp("library"))
    workdir = copy_workflow(tmp_path_factory.mktemp("resume"))
    reference = copy_workflow(tmp_path_factory.mktemp("uninterrupted"))
    killed_output = kill_when_started(workdir, KILLED_RULE, env=library)
    done_before = finished_rules(killed_output)
    data = workdir / RESULTS / "data"
    killed_job_outputs = sorted((data / "local" / "centres").rglob("*.parquet"))
    planted = data / "local" / "centres" / "f0.5" / "Barts.parquet"
    if not planted.exists():
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes((data / "train.parquet").read_bytes())
    # Outputs of the jobs that finished before the kill (the others are to be rerun).
    finished_files = {p: p.stat().st_mtime_ns for p in [data / "cohort.parquet", data / "train.parquet", data / "test.parquet"]}

    strict = subprocess.run(
        [str(SNAKEMAKE), "data", "-n", "--workflow-profile", "none", "--cores", "1", *SMOKE],
        cwd=workdir, capture_output=True, text=True, timeout=300, env=library,
    )
    dry = run_snakemake(workdir, "data", "-n", *SMOKE, env=library)
    # A killed Snakemake cannot release its lock on the working directory: `make run`
    # says so and prints the restart (--unlock, then the same command again).
    # (only on a locked directory: otherwise `make run` would run the whole workflow)
    locked = make_run(workdir, library) if any((workdir / ".snakemake" / "locks").glob("*")) else None
    printed = (locked.stdout + locked.stderr).splitlines() if locked is not None else []
    unlock = [line.strip() for line in printed if line.strip().startswith(f"{SNAKEMAKE.parent}/snakemake --unlock")]
    if unlock:
        subprocess.run(unlock[0], shell=True, cwd=workdir, env=library, check=True, capture_output=True, timeout=300)
    resumed = run_snakemake(workdir, "data", *SMOKE, env=library)
    run_snakemake(reference, "data", *SMOKE, env=library)
    return {
        "locked": locked,
        "unlock": unlock,
        "done_before": done_before,
        "killed_job_outputs": killed_job_outputs,
        "planted": planted.relative_to(workdir),
        "strict": strict,
        "planned": planned_jobs(dry.stdout + dry.stderr),
        "rerun": finished_rules(resumed.stdout + resumed.stderr),
        "finished_files": {p: (m, p.stat().st_mtime_ns) for p, m in finished_files.items()},
        "resumed_digests": digests(data),
        "reference_digests": digests(reference / RESULTS / "data"),
        "all_jobs": planned_jobs(run_snakemake(reference, "data", "-n", "--forceall", *SMOKE, env=library).stdout),
    }


def test_killed_mid_way(killed_and_resumed):
    done = killed_and_resumed["done_before"]
    assert "cohort" in done and "split" in done, done
    assert KILLED_RULE not in done


def test_no_output_of_the_killed_job_taken_as_finished(killed_and_resumed):
    strict = killed_and_resumed["strict"]
    message = strict.stdout + strict.stderr
    assert strict.returncode != 0, message
    assert "IncompleteFilesException" in message or "seem to be incomplete" in message, message
    assert str(killed_and_resumed["planted"]) in message


def test_make_run_says_how_to_resume(killed_and_resumed):
    locked = killed_and_resumed["locked"]
    assert locked is not None, "the killed run left no lock behind"
    message = locked.stdout + locked.stderr
    assert locked.returncode != 0
    assert "LockException" in message or "cannot be locked" in message, message[-3000:]
    assert "make: the working directory is locked by Snakemake" in message
    assert killed_and_resumed["unlock"] == [f"{SNAKEMAKE.parent}/snakemake --unlock --configfile config/smoke.yaml"]
    assert "make run CONFIG=config/smoke.yaml" in message


def test_restart_plans_only_unfinished_jobs(killed_and_resumed):
    all_jobs = killed_and_resumed["all_jobs"]
    done = killed_and_resumed["done_before"]
    expected = {rule: count for rule, count in all_jobs.items() if rule not in done}
    assert killed_and_resumed["planned"] == expected
    assert KILLED_RULE in expected


def test_restart_reruns_only_unfinished_jobs(killed_and_resumed):
    rerun = killed_and_resumed["rerun"]
    assert Counter(rerun) == killed_and_resumed["planned"]
    assert not set(rerun) & set(killed_and_resumed["done_before"])
    for path, (before, after) in killed_and_resumed["finished_files"].items():
        assert before == after, f"{path} was rewritten although its job had finished"


def test_resumed_outputs_equal_an_uninterrupted_run(killed_and_resumed):
    resumed = {k: v for k, v in killed_and_resumed["resumed_digests"].items() if "/.tmp-" not in f"/{k}"}
    assert resumed == killed_and_resumed["reference_digests"]
