# The README's two commands: `make run` (set up, then run the job on seeds/ into ./output) and
# `make test` (set up with the test tools, then run the tests). Both install through scripts/install.sh,
# the same script the Dockerfile uses.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEPS := scripts/install.sh requirements.txt requirements-runtime.txt requirements-model.txt pyproject.toml

.PHONY: setup run test lint clean

setup: $(STAMP)

$(STAMP): $(DEPS)
	sh scripts/install.sh $(VENV) --editable
	touch $@

$(DEV_STAMP): $(DEPS) requirements-dev.txt requirements-ray.txt
	sh scripts/install.sh $(VENV) --editable --dev
	touch $(STAMP) $@

run: $(STAMP)
	$(VENV)/bin/newsdedup run --config configs/default.yaml

test: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) output .pytest_cache .ruff_cache
