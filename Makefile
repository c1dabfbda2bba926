# The README's two commands: `make book` and `make test`. Both set up .venv first if needed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vaebook-installed
BUILD  := _build
# Execution caches do not notice library changes: drop the cache when vaebook/ is newer than the stamp.
LIBSTAMP := $(BUILD)/.vaebook-library-stamp

.PHONY: all setup book test unit notebooks browser student student-check clean distclean bench

all: book

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

setup: $(STAMP)

## make book: build the HTML book into _build/html (chapters are executed; outputs are cached)
book: $(STAMP)
	@mkdir -p $(BUILD)
	@if [ ! -e $(LIBSTAMP) ] || [ -n "$$(find vaebook -name '*.py' -newer $(LIBSTAMP) -print -quit)" ]; then \
		echo "vaebook changed since the last build: clearing the execution cache"; \
		rm -rf $(BUILD)/.jupyter_cache; touch $(LIBSTAMP); fi
	VAEBOOK_PROGRESS=0 VAEBOOK_STRICT_CHECKS=1 $(VENV)/bin/jupyter-book build . --builder html --warningiserror --keep-going
	@echo "Built $(BUILD)/html/index.html"

## make test: unit tests, nbval over every chapter, the book build, student notebooks, browser tests
test: $(STAMP)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory unit && \
	$(MAKE) --no-print-directory notebooks && \
	$(MAKE) --no-print-directory book && \
	$(MAKE) --no-print-directory student-check && \
	$(MAKE) --no-print-directory browser && \
	echo "make test: everything passed in $$(( $$(date +%s) - start )) s"

unit: $(STAMP)
	$(PY) -m pytest tests -m "not browser" -q

# nbval runs every chapter alone, in a temporary directory, against vaebook installed from a wheel
# (not this checkout): the way Colab meets it. See tests/colab_env.py.
notebooks: $(STAMP)
	$(PY) -m tests.colab_env nbval book --prime-cache $(BUILD)/.jupyter_cache

browser: $(STAMP)
	$(PY) -m pytest tests -m browser -q

## make student: student notebooks and the student HTML book in student/ (see book/instructors.md)
student: $(STAMP)
	$(PY) -m vaebook.assign book --out student --force

# Every student notebook, run as is (each alone, vaebook from a wheel), must reach its end with every
# check reporting "not yet implemented"; those runs then render the student book (no solutions),
# which the browser tests open too.
student-check: $(STAMP)
	$(PY) -m vaebook.assign book --out $(BUILD)/student --force --no-html
	$(PY) -m tests.colab_env nbval $(BUILD)/student/book --student --prime-cache $(BUILD)/student/_build/.jupyter_cache
	VAEBOOK_PROGRESS=0 $(VENV)/bin/jupyter-book build $(BUILD)/student --builder html --warningiserror --keep-going

bench: $(STAMP)
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/chapter_times.py

clean:
	rm -rf $(BUILD) student dist build

distclean: clean
	rm -rf $(VENV)
