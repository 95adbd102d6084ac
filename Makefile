# Two entry points (see README): `make demo` and `make test`. Both create .venv when missing
# and (re)install only when pyproject.toml files changed, so a second run starts at once.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGIN_PROJECTS))

.PHONY: install demo test completions bench

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS) | $(PY)
	$(PY) -m pip install -q -e '.[dev]' $(addprefix -e ,$(PLUGIN_DIRS))
	touch $(STAMP)

install: $(STAMP)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/quickstart.sh

test: install
	$(PY) -m pytest -q

completions: install
	$(PY) -m synthmed.cli.completion completions

bench: install
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done
