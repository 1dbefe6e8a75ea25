# make demo: the whole system on a local default.  make test: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench typecheck clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kanban-redis needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,local]'
	touch $@

# The suite starts its own throwaway redis-server on a free port unless
# REDIS_URL names a (disposable) server.
test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider

demo: $(VENV)/.installed
	$(PY) -m kanban_redis.demo

bench: $(VENV)/.installed
	$(PY) bench/claims.py

typecheck: $(VENV)/.installed
	$(PY) -m pip install -q mypy
	$(PY) -m mypy kanban_redis workers snapshot

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
