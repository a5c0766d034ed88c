"""The whole check of a run's configuration, before any job runs (workflow/rules/common.smk).

Snakemake merges the Snakefile's ``configfile: config/config.yaml`` with the user's
``--configfile`` files and ``--config`` values. On top of the schema
(:func:`synthshare.config.check_config`) this checks what a schema cannot:

- every config file as written, with the strict loader (duplicated keys, syntax; see
  :mod:`synthshare.yaml_strict`), since Snakemake's loader keeps the last of two keys;
- the run name: a single safe folder name under ``results/``, and named by the user's
  own config (not inherited from the default config, which would overwrite
  ``results/default``);
- keys that name something elsewhere: ``figures.fraction_party`` must be a party, the
  parties must exist in the chosen cohort source;
- the cohort's input files exist and are named (instead of Snakemake's multi-line
  MissingInputException);
- the cohort parameter file (source simulated), strictly loaded and schema-checked;
- the workflow's profiles (profiles/*/config*.yaml), strictly loaded.

Every problem is one :class:`~synthshare.errors.InputError` line
``<file>: <key> = <value>: <what is allowed>`` naming the file that set the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from synthshare.config import check_config, load_schema
from synthshare.errors import InputError
from synthshare.grid import centre_parties
from synthshare.variables import CENTRES
from synthshare.yaml_strict import load_mapping

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""A run name: one folder name under results/; starting with a letter or digit rules
out '.', '..' and hidden names, and '/' is not allowed anywhere."""
RUN_NAME_MAX = 100


class ConfigSources:
    """The config files of a run, as written, and which of them set a key."""

    def __init__(self, default_files: Sequence[str | os.PathLike], user_files: Sequence[str | os.PathLike],
                 overrides: Mapping[str, Any] | None = None) -> None:
        """
        Args:
            default_files: the Snakefile's ``configfile:`` files (config/config.yaml).
            user_files: the ``--configfile`` files, in command-line order (later wins).
            overrides: ``--config key=value`` values (they win over every file).
        """
        user = [_shown(f) for f in user_files]
        user_resolved = {p.resolve() for p in user}
        # A default file also given with --configfile counts as the user's.
        self.default_files = [Path(f) for f in default_files if Path(f).resolve() not in user_resolved]
        self.user_files = user
        self.overrides = dict(overrides or {})
        self.raw = {p: load_mapping(p) for p in [*self.default_files, *self.user_files]}

    @property
    def names(self) -> str:
        files = self.user_files or self.default_files
        return ", ".join(str(f) for f in files) or "config"

    def source_of(self, path: Iterable[Any]) -> str:
        """The file that set the key at ``path`` (the last one that has it), or all files."""
        keys = [k for k in path if not isinstance(k, int)]
        if keys and _has(self.overrides, keys):
            return "--config"
        for file in reversed([*self.default_files, *self.user_files]):
            if keys and _has(self.raw[file], keys):
                return str(file)
        return self.names

    def source_of_any(self, *paths: Iterable[Any]) -> str:
        """For a conflict between keys: the file of highest precedence that set one of them
        (the user's file rather than the default config it contradicts)."""
        order = [*(str(f) for f in self.default_files), *(str(f) for f in self.user_files), "--config"]
        found = [self.source_of(path) for path in paths]
        ranked = [s for s in found if s in order]
        return max(ranked, key=order.index) if ranked else self.names

    def run_is_named(self) -> bool:
        """Whether the user's files or --config name the run (always, without user files)."""
        if not self.user_files:
            return True
        return "run" in self.overrides or any("run" in self.raw[f] for f in self.user_files)


def check_workflow_config(config: dict, sources: ConfigSources, schema_path: str | Path,
                          cohort_schema_path: str | Path, profiles: Sequence[str | os.PathLike] = ()) -> dict:
    """Check Snakemake's merged ``config``; return it with the schema's defaults filled.

    ``profiles``: the workflow's profile files, read strictly too (Snakemake reads a
    profile with a loader that keeps the last of two equal keys).
    """
    for profile in profiles:
        load_mapping(profile)
    if not sources.run_is_named():
        raise InputError(
            f"{sources.names}: run: missing; a config given with --configfile must name its run "
            "(results/<run>/ is where everything goes), e.g. run: mydata")
    check_run_name(config.get("run"), sources.source_of(["run"]))
    checked = check_config(config, load_schema(schema_path), sources.source_of)
    parameters = None
    if checked["cohort"]["source"] == "simulated":
        parameters = check_cohort_parameters(checked, cohort_schema_path, sources)
    check_parties(checked, sources, parameters)
    check_cohort_inputs(checked, sources)
    check_heterogeneity_sweep(checked, sources, parameters)
    return checked


def check_heterogeneity_sweep(config: dict, sources: ConfigSources, parameters: dict | None) -> None:
    """A heterogeneity sweep needs the simulated cohort, and sets its SD itself."""
    sds = config["heterogeneity"]["sds"]
    where = sources.source_of(["heterogeneity", "sds"])
    if not sds:
        if config["heterogeneity"]["positive_share"] is not None:
            raise InputError(f"{sources.source_of(['heterogeneity', 'positive_share'])}: heterogeneity.positive_share = "
                             f"{config['heterogeneity']['positive_share']!r} without heterogeneity.sds; expected null, "
                             "or the SDs of a sweep (it replaces the share in the sweep's sub-runs only)")
        return
    if config["cohort"]["source"] != "simulated":
        raise InputError(f"{where}: heterogeneity.sds = {sds!r} with cohort.source = {config['cohort']['source']!r}; "
                         "expected source simulated (only the simulator has centre-specific relative risks) or sds: []")
    own = float(parameters.get("heterogeneity", {}).get("sd", 0.0)) if parameters else 0.0
    if own != 0.0:
        raise InputError(f"{where}: heterogeneity.sds = {sds!r}, but {config['cohort']['simulated']['parameters']} sets "
                         f"heterogeneity.sd = {own!r}; expected 0 there (the sweep sets the SD of every sub-run)")


def check_run_name(run: Any, source: str) -> None:
    if isinstance(run, (int, float)) and not isinstance(run, bool):
        raise InputError(f"{source}: run = {run!r}: must be text; quote it (run: \"{run}\")")
    if not isinstance(run, str) or not RUN_NAME.match(run) or len(run) > RUN_NAME_MAX:
        raise InputError(
            f"{source}: run = {run!r}: must be one folder name under results/: letters, digits, "
            f"'.', '_' or '-', starting with a letter or digit, at most {RUN_NAME_MAX} characters")


def check_cohort_parameters(config: dict, schema_path: str | Path, sources: ConfigSources) -> dict:
    """The simulated cohort's parameter file: exists, strict YAML, valid; returned checked."""
    key = ["cohort", "simulated", "parameters"]
    name = config["cohort"]["simulated"]["parameters"]
    where = sources.source_of(key)
    if not name:
        raise InputError(f"{where}: cohort.simulated.parameters = '': empty; expected the cohort's parameter file (config/cohort_simulated.yaml)")
    if not Path(name).is_file():
        raise InputError(f"{where}: cohort.simulated.parameters = {name!r}: file not found")
    return check_config(load_mapping(name), load_schema(schema_path), name)


def check_parties(config: dict, sources: ConfigSources, parameters: dict | None) -> None:
    """Parties exist in the cohort source; ``figures.fraction_party`` is one of them."""
    parties = centre_parties(config)
    source = config["cohort"]["source"]
    if source == "simulated" and parameters is not None:
        available = list(parameters["centres"])
        why = f"centres of {config['cohort']['simulated']['parameters']}"
    elif source == "ukb_raw":
        available = list(CENTRES) + list(config["cohort"]["ukb_raw"]["extra_centres"])
        why = "16 study centres and cohort.ukb_raw.extra_centres"
    else:
        available = None  # a user's file: its centre column is checked when it is read
    if available is not None:
        for party in parties:
            if party not in available:
                position = "" if config["parties"] == "all" else f"[{config['parties'].index(party)}]"
                raise InputError(
                    f"{sources.source_of_any(['parties'], ['cohort'])}: parties{position} = {party!r}: not in the cohort; "
                    f"expected one of the {why}: {available}")
    focus = config["figures"]["fraction_party"]
    if focus not in parties:
        raise InputError(
            f"{sources.source_of_any(['figures', 'fraction_party'], ['parties'])}: figures.fraction_party = {focus!r}: "
            f"not a party of this run (Figs 3 and 4 show it); expected one of {parties}")


def check_cohort_inputs(config: dict, sources: ConfigSources) -> None:
    """The cohort source's input files are named and exist (relative to the working directory)."""
    source = config["cohort"]["source"]
    if source == "file":
        _check_file(config["cohort"]["file"]["path"], ["cohort", "file", "path"], sources,
                    "a processed cohort file (.csv or .parquet; docs/input.md)")
    elif source == "ukb_raw":
        raw = config["cohort"]["ukb_raw"]
        _check_file(raw["main"], ["cohort", "ukb_raw", "main"], sources, "the ukbconv csv extract")
        if not raw["covid_tests"]:
            raise InputError(f"{sources.source_of(['cohort', 'ukb_raw', 'covid_tests'])}: cohort.ukb_raw.covid_tests = []: "
                             "empty; expected at least one COVID-19 test result file")
        for index, name in enumerate(raw["covid_tests"]):
            _check_file(name, ["cohort", "ukb_raw", "covid_tests"], sources, "a COVID-19 test result file", f"[{index}]")
        if raw["withdrawals"]:
            _check_file(raw["withdrawals"], ["cohort", "ukb_raw", "withdrawals"], sources, "a withdrawals file or ''")


def _check_file(name: str, key: list[str], sources: ConfigSources, what: str, suffix: str = "") -> None:
    label = ".".join(key) + suffix
    if not name:
        raise InputError(f"{sources.source_of(key)}: {label} = '': empty; expected {what}")
    path = Path(name)
    if not path.exists():
        raise InputError(f"{sources.source_of(key)}: {label} = {name!r}: file not found (relative paths are from {Path.cwd()})")
    if not path.is_file():
        raise InputError(f"{sources.source_of(key)}: {label} = {name!r}: not a file; expected {what}")
    if path.stat().st_size == 0:
        raise InputError(f"{sources.source_of(key)}: {label} = {name!r}: the file is empty; expected {what}")


def _shown(name: str | os.PathLike) -> Path:
    """``name`` relative to the working directory when it lies below it (as the user typed it)."""
    path = Path(name)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except ValueError:
        return path


def _has(mapping: Mapping, keys: Sequence[Any]) -> bool:
    node: Any = mapping
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m synthshare.workflow_config run-name CONFIG``: print the run name a
    config file sets (the Makefile's report path), or the one-line error."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "run-name":
        print("usage: python -m synthshare.workflow_config run-name CONFIG", file=sys.stderr)
        return 2
    try:
        config = load_mapping(args[1])
        if "run" not in config:
            raise InputError(f"{args[1]}: run: missing; a config must name its run, e.g. run: mydata")
        check_run_name(config["run"], args[1])
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    print(config["run"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
