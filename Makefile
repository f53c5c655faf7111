# Two commands for a fresh machine:  make book  and  make test  (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BOOK_FLAGS := -W -n --keep-going
NB_TIMEOUT ?= 600
PYTEST_WORKERS ?= 1

.PHONY: setup book book-fresh test lint unit notebooks book-check cold-warm bench clean

setup:  ## create/update .venv with the pinned stack and the data packages (quick when nothing changed)
	$(PYTHON) tools/setup_env.py --venv $(VENV)

book: setup  ## execute the notebooks (profile: METALIB_PROFILE, default full on CPU) and build the HTML book
	@# tools/build_book.py re-executes pages that failed last time and never reports success while one fails
	$(PY) tools/build_book.py -- $(BOOK_FLAGS)

book-fresh:  ## release check, not CI (about an hour): clone main into a temporary folder, empty cache, full-profile `make book`
	tools/book_fresh.sh main

test: setup lint unit notebooks book-check cold-warm  ## everything CI runs

lint unit notebooks book-check cold-warm bench: setup

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check metalib tests tools benchmarks notebooks

unit:  ## unit tests of metalib and the examples in its docstrings, with coverage
	$(PY) -m pytest tests metalib --doctest-modules --cov=metalib --cov-report=term --cov-fail-under=95 -p no:cacheprovider

# `make test` runs the notebooks twice in the quick profile, from one metalib cache: empty under
# nbmake (every cached model is built), full in the strict book build (every one is loaded);
# cold-warm then checks that every glued number agrees between the two.
# (not under _build: nbmake skips every path with a _build part)
COLD_WARM := .cold-warm
COLD_WARM_CACHE := $(CURDIR)/$(COLD_WARM)/cache

notebooks:  ## every notebook, quick profile, one at a time, from an empty metalib cache (executed copies: .cold-warm/cold)
	@ls notebooks/*.ipynb >/dev/null 2>&1 || { echo "no notebooks found under notebooks/"; exit 1; }
	rm -rf $(COLD_WARM) && mkdir -p $(COLD_WARM)/cold && cp notebooks/*.ipynb $(COLD_WARM)/cold/
	METALIB_PROFILE=quick METALIB_CACHE=$(COLD_WARM_CACHE) $(PY) -m pytest --nbmake $(COLD_WARM)/cold \
		--overwrite --nbmake-timeout=$(NB_TIMEOUT) -n $(PYTEST_WORKERS) -p no:cacheprovider

book-check:  ## strict book build in the quick profile, executed afresh into its own folder (never mixed with `make book`)
	rm -rf _build/quick
	METALIB_CACHE=$(COLD_WARM_CACHE) $(PY) tools/build_book.py --profile quick --path-output _build/quick -- $(BOOK_FLAGS)

cold-warm:  ## the glued numbers of `notebooks` (empty cache) and `book-check` (full cache) are identical
	$(PY) tools/compare_glue.py $(COLD_WARM)/cold _build/quick/_build/jupyter_execute/notebooks

bench:
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f; done

clean:
	rm -rf _build .cold-warm .pytest_cache .ruff_cache .coverage
