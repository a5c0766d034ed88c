"""The one entry convention of the rule scripts: ``main(snakemake)``, under Snakemake or standalone.

Every script in ``scripts/`` defines ``main(snakemake)``, which reads the job's
``input``, ``params``, ``output``, ``threads`` and ``log``, calls the library and writes
the outputs, and ends with::

    if __name__ == "__main__":
        main(snakemake if "snakemake" in globals() else job_from_command_line(__doc__))

Under Snakemake the ``snakemake`` object is injected. For debugging, any script runs
standalone as exactly the job the workflow would run (pypsa-eur's habit)::

    python scripts/<script>.py [--configfile FILE ...] RULE [WILDCARD=VALUE ...]

for example ``python scripts/fit_generators.py --configfile config/smoke.yaml
fit_generators_centres epsilon=1 fraction=0.5 seed=123``. The workflow is parsed as
for a run (the config is checked the same way), the rule's job is built for the given
wildcards, and ``main`` receives the object Snakemake would inject: its input and
output paths are the run's usual ones under ``results/<run>/`` (the ``run`` wildcard is
the config's run; a sweep's sub-run is given as ``run=<run>/sd<v>``), and nothing checks
whether the inputs exist beyond what the script itself reads. No script repeats the
workflow's defaults or checks: they all come from the rule.

Threads: importing this module pins every native thread pool (OpenMP of d3p's RNG,
BLAS, numba, XLA; :func:`synthshare.threads.pin_threads`) to the job's ``threads``,
read from the injected object, so each script imports it before numpy, jax or pandas.
Standalone, the count is ``--threads N`` (default 1, what every rule asks for), and
the job object is given the same count.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A rule's conda environment (workflow/envs/synthshare.yaml) holds the third-party stack
# only; the library then comes from this checkout. Appended, so an installed copy or one
# on PYTHONPATH (the tests' frozen library) is found first.
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

from synthshare.threads import pin_threads  # noqa: E402  (imports nothing that sizes a thread pool)


def job_threads(main, argv: list[str]) -> int | None:
    """How many threads this process's pools get: the injected job's ``snakemake.threads``;
    a script run standalone (``__main__`` is a file in scripts/) its ``--threads N``
    (default 1); None when something else imported a script (a test calling its
    ``main`` in-process owns its own threads)."""
    injected = getattr(main, "snakemake", None)
    if injected is not None:
        return int(injected.threads)
    main_file = getattr(main, "__file__", None)
    if main_file is None or Path(main_file).resolve().parent != Path(__file__).resolve().parent:
        return None
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


_THREADS = job_threads(sys.modules.get("__main__"), sys.argv[1:])
if _THREADS is not None:
    pin_threads(_THREADS)


def job_from_command_line(description: str | None, argv: list[str] | None = None):
    """The ``snakemake`` object of the job named on the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None,
        epilog="Runs the script as the workflow's job RULE with the given wildcards (scripts/_entry.py).",
    )
    parser.add_argument("--configfile", action="append", default=[], metavar="FILE",
                        help="config file(s), as for snakemake (default: the Snakefile's config/config.yaml)")
    parser.add_argument("--threads", type=int, default=1,
                        help="the job's threads (default 1, as every rule); native thread pools are pinned to it")
    parser.add_argument("rule", help="the rule whose job to run, e.g. split or fit_generators_centres")
    parser.add_argument("wildcards", nargs="*", metavar="WILDCARD=VALUE", help="the job's wildcards")
    args = parser.parse_args(argv)
    wildcards = {}
    for item in args.wildcards:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"wildcard {item!r}: expected NAME=VALUE")
        if name in wildcards:
            parser.error(f"wildcard {name!r} given twice")
        wildcards[name] = value
    return build_job(args.rule, wildcards, [Path(f) for f in args.configfile], args.threads)


def build_job(rule_name: str, wildcards: dict[str, str], configfiles: list[Path], threads: int = 1):
    """Parse the workflow and return the ``snakemake`` object of ``rule_name``'s job for
    ``wildcards``, with ``threads`` threads (the count this process's pools are pinned to)."""
    # Snakemake is imported here, not at the top: under Snakemake the injected object is used.
    from snakemake.api import SnakemakeApi
    from snakemake.dag import DAG
    from snakemake.exceptions import UnknownRuleException
    from snakemake.jobs import Job
    from snakemake.script import Snakemake
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[f.resolve() for f in configfiles]),
            snakefile=REPO / "Snakefile",
            workdir=REPO,
        )
        workflow = workflow_api._workflow  # the parsed workflow: Snakemake's API has no public accessor
        workflow.dag_settings = DAGSettings()  # a DAG of the one job, nothing forced or targeted
        try:
            rule = workflow.get_rule(rule_name)
        except UnknownRuleException:
            known = sorted(r.name for r in workflow.rules)
            raise SystemExit(f"{rule_name!r} is not a rule of this workflow; rules: {', '.join(known)}") from None
        if "run" in rule.wildcard_names and "run" not in wildcards:
            # every rule's paths carry the run (a heterogeneity sweep has several: synthshare.sweep)
            from synthshare.sweep import run_names

            runs = run_names(workflow.config)
            if len(runs) > 1:
                raise SystemExit(f"rule {rule_name}: this config is a sweep of the runs {runs}; give run=<one of them>")
            wildcards = {**wildcards, "run": runs[0]}
        missing = sorted(set(rule.wildcard_names) - set(wildcards))
        extra = sorted(set(wildcards) - set(rule.wildcard_names))
        if missing or extra:
            raise SystemExit(f"rule {rule_name}: wildcards {sorted(rule.wildcard_names)} expected; "
                             f"missing {missing}, unknown {extra}")
        job = Job(rule, DAG(workflow, rules=[rule]), wildcards_dict=wildcards)
        for path in [*job.output, *job.log]:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        snakemake = Snakemake(job.input, job.output, job.params, job.wildcards, threads, job.resources,
                              job.log, workflow.config, rule.name, None, scriptdir=os.fspath(REPO / "scripts"))
        if workflow.sourcecache.runtime_cache is not None:
            workflow.sourcecache.runtime_cache.cleanup()  # Snakemake's temporary source cache, as a run does
        return snakemake
