# Two commands do everything on a fresh machine:
#   make run    install, then run the whole workflow on config.yaml's raw_root (bundled example data)
#   make test   install, then run the test suite (unit + real snakemake integration tests + lint)
VENV ?= .venv
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install install-dev run test lint format bench bytecode
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt -e .
	$(MAKE) --no-print-directory bytecode VENV=$(VENV)
	touch $@

# An editable install compiles no bytecode for the package; where PYTHONDONTWRITEBYTECODE is set (CI,
# this bench machine) every job then compiled it from source: ~35 ms CPU a job, ~2 CPU-s a lab-scale run.
bytecode:
	$(VENV)/bin/python -m compileall -q scripts/nanolab

# Test tools and the cluster executor plugins only where tests (or a cluster) need them: snakemake
# imports every installed executor plugin at each start (the SLURM one imports pandas: ~0.5 s a run).
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-cluster.txt
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt -r requirements-cluster.txt
	touch $@

run: install bytecode
	snakemake --cores 8

test: install-dev
	pytest

lint: install-dev
	ruff check .
	ruff format --check .
	snakemake --lint
	snakefmt --check Snakefile workflow/rules

format: install-dev
	ruff format .
	snakefmt Snakefile workflow/rules

# Measured as a lab member's `make run` install has it: runtime only, no test tools or cluster plugins.
BENCH_VENV ?= .venv-bench
bench:
	$(MAKE) install bytecode VENV=$(BENCH_VENV)
	$(BENCH_VENV)/bin/python bench/run.py --cores 2 $(BENCH_ARGS)
