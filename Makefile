# Two commands do everything on a fresh machine:
#   make run    install, then run the whole workflow on config.yaml's raw_root (bundled example data)
#   make test   install, then run the test suite (unit + real snakemake integration tests + lint)
VENV ?= .venv
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install run test lint format bench
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-cluster.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt -r requirements-cluster.txt -e .
	touch $@

run: install
	snakemake --cores 8

test: install
	pytest

lint: install
	ruff check .
	ruff format --check .
	snakemake --lint
	snakefmt --check Snakefile workflow/rules

format: install
	ruff format .
	snakefmt Snakefile workflow/rules

bench: install
	python bench/run.py --cores 2 $(BENCH_ARGS)
