"""DAG building at the paper's scale: wall time of ``snakemake -n --configfile config/paper.yaml``.

Runs the dry run a few times in a private copy of the workflow (no results/, nothing
shared with other runs), prints each time, the best and the median, the machine's load
average, and the job count with its per-rule breakdown from Snakemake's "Job stats"
table. Goal (issue 6): under 60 s on the 2-core development machine.

    .venv/bin/python benchmarks/bench_dag.py [--repeats 3] [--configfile config/paper.yaml]
        [--workflow-profile profiles/default]

With ``--workflow-profile profiles/slurm`` the dry run also forms the profile's group
jobs (it submits nothing: a dry run never calls sbatch).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import SNAKEMAKE, copy_workflow  # noqa: E402  (the tests' helpers: one definition)


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table: rule -> job count, plus "total"."""
    match = re.search(r"Job stats:\n\s*job\s+count\n\s*-+\s+-+\n(.*?\n\s*total\s+\d+)", output, re.S)
    if match is None:
        raise SystemExit(f"bench_dag: no 'Job stats' table in Snakemake's output:\n{output[-3000:]}")
    return {rule: int(count) for rule, count in (line.split() for line in match.group(1).splitlines())}


def dry_run(workdir: Path, configfile: str, profile: str) -> tuple[float, str]:
    # --quiet rules: printing thousands of planned jobs would time the terminal, not the DAG.
    command = [str(SNAKEMAKE), "-n", "--workflow-profile", profile, "--quiet", "rules", "--configfile", configfile]
    start = time.perf_counter()
    process = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"bench_dag: {' '.join(command)} failed ({process.returncode}):\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    return elapsed, process.stdout + process.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configfile", default="config/paper.yaml")
    parser.add_argument("--workflow-profile", default="profiles/default")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        workdir = copy_workflow(Path(tmp))
        print(f"snakemake -n --configfile {args.configfile} --workflow-profile {args.workflow_profile}  (repeats: {args.repeats})")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (cores: {os.cpu_count()})")
        times = []
        for repeat in range(args.repeats):
            elapsed, output = dry_run(workdir, args.configfile, args.workflow_profile)
            times.append(elapsed)
            print(f"  run {repeat + 1}: {elapsed:.1f} s")
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    stats = job_stats(output)
    total = stats.pop("total")
    print(f"DAG time: best {min(times):.1f} s, median {statistics.median(times):.1f} s")
    print(f"jobs: {total}")
    for rule, count in sorted(stats.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {rule:<28} {count}")


if __name__ == "__main__":
    main()
