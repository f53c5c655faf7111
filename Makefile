# Two commands for a fresh machine:  make book  and  make test  (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BOOK_FLAGS := -W -n --keep-going
NB_TIMEOUT ?= 600
PYTEST_WORKERS ?= 1

.PHONY: setup book test lint unit notebooks book-check bench clean

setup:  ## create/update .venv with the pinned stack and the data packages (quick when nothing changed)
	$(PYTHON) tools/setup_env.py --venv $(VENV)

book: setup  ## execute the notebooks (profile: METALIB_PROFILE, default full on CPU) and build the HTML book
	@# the execution cache is keyed on code only: results of another profile must not be reused
	@profile=$$($(PY) -c "from metalib.runtime import get_profile; print(get_profile())"); \
	if [ -f _build/.profile ] && [ "$$(cat _build/.profile)" != "$$profile" ]; then \
		echo "profile is now $$profile: clearing the notebook execution cache"; rm -rf _build/.jupyter_cache; fi; \
	mkdir -p _build && echo "$$profile" > _build/.profile
	$(VENV)/bin/jupyter-book build . $(BOOK_FLAGS)
	@echo "Open file://$(CURDIR)/_build/html/index.html"

test: setup lint unit notebooks book-check  ## everything CI runs

lint unit notebooks book-check bench: setup

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check metalib tests tools benchmarks

unit:  ## unit tests of metalib and the examples in its docstrings, with coverage
	$(PY) -m pytest tests metalib --doctest-modules --cov=metalib --cov-report=term --cov-fail-under=85 -p no:cacheprovider

notebooks:  ## every notebook, quick profile, one at a time so each chapter's run-time check sees an unshared machine (pytest's exit 5, "no tests", cannot happen: checked first)
	@ls notebooks/*.ipynb >/dev/null 2>&1 || { echo "no notebooks found under notebooks/"; exit 1; }
	METALIB_PROFILE=quick $(PY) -m pytest --nbmake notebooks --nbmake-timeout=$(NB_TIMEOUT) \
		-n $(PYTEST_WORKERS) -p no:cacheprovider

book-check:  ## strict book build in the quick profile, into its own folder (never mixed with `make book`)
	METALIB_PROFILE=quick $(VENV)/bin/jupyter-book build . --path-output _build/quick $(BOOK_FLAGS)

bench:
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f; done

clean:
	rm -rf _build .pytest_cache .ruff_cache .coverage
