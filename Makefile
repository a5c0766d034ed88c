# Two commands do all the set-up (README): `make run` and `make test`.
# Both create .venv with Python 3.11 if it is missing and install the pinned stack once;
# the stamp file is remade only when requirements.txt or pyproject.toml change.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthshare-installed
CONFIG ?= config/config.yaml
CORES ?= 2

.PHONY: install run test smoke report lint envs clean-venv

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
run: $(STAMP)
	$(BIN)/snakemake --workflow-profile profiles/default --configfile $(CONFIG) --cores $(CORES)
	$(BIN)/snakemake --workflow-profile profiles/default --configfile $(CONFIG) --cores $(CORES) \
		--report results/$$($(BIN)/python -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['run'])")/report.html
	@echo "Report: results/$$($(BIN)/python -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['run'])")/report.html"

# Snakemake's linter, then the test suite (including a smoke run of the whole workflow,
# config/smoke.yaml).
test: $(STAMP) lint
	$(BIN)/python -m pytest

# The CI-sized workflow alone.
smoke: $(STAMP)
	$(MAKE) run CONFIG=config/smoke.yaml

lint: $(STAMP)
	$(BIN)/snakemake --lint --configfile $(CONFIG)

# The rules' conda environment, generated from requirements.txt (tests/test_envs.py checks it).
envs: $(STAMP)
	$(BIN)/python workflow/envs/write_env.py

clean-venv:
	rm -rf $(VENV)
