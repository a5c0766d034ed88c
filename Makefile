# Two commands do all the set-up (README): `make run` and `make test`.
# Both create .venv with Python 3.11 if it is missing and install the pinned stack once;
# the stamp file is remade only when requirements.txt or pyproject.toml change.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthshare-installed
CONFIG ?= config/config.yaml
CORES ?= 2

.PHONY: install run test smoke heterogeneity audit report lint envs clean-venv

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "make: $(PYTHON) is not Python 3.11" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The default workflow end to end on the simulated cohort, then the HTML report.
# First the config and the profile are read with the strict YAML loader (Snakemake's
# own keeps the last of two equal keys and reports syntax errors without file or line).
# A run that was killed (SIGKILL, node failure) leaves Snakemake's lock behind; the
# restart is `snakemake --unlock` once, then `make run` again, which reruns only the
# unfinished jobs (tests/test_resume.py): the message below says so.
SNAKEMAKE_RUN = $(BIN)/snakemake --workflow-profile profiles/default --configfile $(CONFIG) --cores $(CORES)
LOCKED_HELP = if [ -n "$$(ls -A .snakemake/locks 2>/dev/null)" ]; then \
	echo "make: the working directory is locked by Snakemake. If no other Snakemake runs here (a killed run leaves its lock behind), unlock it and resume (only unfinished jobs rerun):" >&2; \
	echo "  $(BIN)/snakemake --unlock --configfile $(CONFIG)" >&2; \
	echo "  make run CONFIG=$(CONFIG)" >&2; fi

run: $(STAMP)
	@$(BIN)/python -m synthshare.yaml_strict $(CONFIG) profiles/default/config.v8+.yaml
	@$(SNAKEMAKE_RUN) || { status=$$?; $(LOCKED_HELP); exit $$status; }
	@$(SNAKEMAKE_RUN) --report results/$$($(BIN)/python -m synthshare.workflow_config run-name $(CONFIG))/report.html
	@echo "Report: results/$$($(BIN)/python -m synthshare.workflow_config run-name $(CONFIG))/report.html"

# Snakemake's linter, then the test suite (including a smoke run of the whole workflow,
# config/smoke.yaml).
test: $(STAMP) lint
	$(BIN)/python -m pytest

# The CI-sized workflow alone.
smoke: $(STAMP)
	$(MAKE) run CONFIG=config/smoke.yaml

# The heterogeneity sweep (issue 16): one whole pipeline per between-centre SD of the
# relative risks, sub-runs results/heterogeneity/sd<v>/, the sweep's figures in
# results/heterogeneity/sweep/ and one report (docs/coverage.md).
heterogeneity: $(STAMP)
	$(MAKE) run CONFIG=config/heterogeneity.yaml

# The privacy audit (issue 13, docs/audit.md): the data stage and the audit stage of
# config/audit.yaml (shadow generators, attacks, tables, figures, claims rows), then its
# report. AUDIT_CONFIG must have an `audit` section.
AUDIT_CONFIG ?= config/audit.yaml
SNAKEMAKE_AUDIT = $(BIN)/snakemake --workflow-profile profiles/default --configfile $(AUDIT_CONFIG) --cores $(CORES)

audit: $(STAMP)
	@$(BIN)/python -m synthshare.yaml_strict $(AUDIT_CONFIG) profiles/default/config.v8+.yaml
	@$(SNAKEMAKE_AUDIT) audit || { status=$$?; $(LOCKED_HELP); exit $$status; }
	@# --report takes files, not a rule name: the two figures pull in the whole audit's DAG.
	@run=$$($(BIN)/python -m synthshare.workflow_config run-name $(AUDIT_CONFIG)); \
	$(SNAKEMAKE_AUDIT) --report results/$$run/report.html results/$$run/figures/audit_roc.png \
		results/$$run/figures/audit_per_target.png && echo "Report: results/$$run/report.html"

lint: $(STAMP)
	$(BIN)/snakemake --lint --configfile $(CONFIG)

# The rules' conda environment, generated from requirements.txt (tests/test_envs.py checks it).
envs: $(STAMP)
	$(BIN)/python workflow/envs/write_env.py

clean-venv:
	rm -rf $(VENV)
