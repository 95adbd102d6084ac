# Two entry points (see README): `make demo` and `make test`. Both create .venv when missing
# and (re)install only when pyproject.toml files changed, so a second run starts at once.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGIN_PROJECTS))

.PHONY: install demo test test-slow completions bench

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS) | $(PY)
	$(PY) -m pip install -q -e '.[dev]' $(addprefix -e ,$(PLUGIN_DIRS))
	touch $(STAMP)

install: $(STAMP)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/quickstart.sh

# `make test`: every test not marked slow (about 10 minutes on 2 cores); `make test-slow`: the
# slow remainder (docs pages run as written, kill-and-resume subprocesses). CI runs both.
test: install
	$(PY) -m pytest -q -m "not slow"

test-slow: install
	$(PY) -m pytest -q -m slow

completions: install
	$(PY) -m synthmed.cli.completion completions

# The CPU benchmarks at their default sizes (an hour or more on 2 idle cores; see docs/benchmarks.md).
# `make bench BENCH_ARGS=--quick` checks that each one runs, in a few minutes each.
BENCH_CPU := startup preprocess train_pipeline augment sampling codec gradcam generators interpolation openai_concurrency study
BENCH_ARGS ?=
bench: install
	for b in $(BENCH_CPU); do echo "== bench_$$b"; $(PY) benchmarks/bench_$$b.py $(BENCH_ARGS) || exit 1; done
