# `make test` builds its own environment from this repo's files only.
# torch is pinned here (a CPU wheel on the dev/CI machines), every other package by constraints.txt
# (the versions the results were measured with); pyproject keeps ranges for users.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install test demo bench clean

$(VENV)/.installed: pyproject.toml Makefile constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt "$(TORCH_PIN)"
	$(PY) -m pip install -q -c constraints.txt -e ".[test,box2d]" "$(TORCH_PIN)"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

demo: $(VENV)/.installed
	$(PY) -m agents.demo

bench: $(VENV)/.installed
	$(PY) scripts/bench_networks.py
	$(PY) scripts/bench_rl.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
