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

.PHONY: all setup book slides pdf test lint unit floors notebooks executed book-chain student-chain browser student student-check graders full-mnist clean distclean bench

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

## make test: lint, unit tests, every chapter in a Colab-like environment, the book, the graders, the browser
# Each stage prints its time, so that the budget (35 minutes in CI) can be read off the log. The unit
# tests and the floors run side by side, one thread each (each one's output is printed when it ends):
# the first two minutes of the floors are pip installing the lowest versions. With torch's two threads
# each, the pair took 381 s on two cores, longer than the two in turn (364 s).
test: $(STAMP)
	@start=$$(date +%s); last=$$start; \
	for stage in lint "unit floors" executed browser; do \
		if [ "$$stage" = "unit floors" ]; then threads="$(ONE_THREAD)"; else threads=""; fi; \
		env $$threads $(MAKE) --no-print-directory -j2 --output-sync=target $$stage || exit 1; \
		now=$$(date +%s); echo "make test: $$stage took $$(( now - last )) s"; last=$$now; \
	done; \
	echo "make test: everything passed in $$(( $$(date +%s) - start )) s"

# Every chapter is executed twice in make test: by nbval in the Colab environment (whose outputs the
# book build renders) and by nbgrader's autograde of the student notebooks (whose runs the student
# book shows). The two chains share nothing but the cores, so they run side by side, one core each.
# Each gets one thread: two torch processes of two threads each on two cores slow each other down
# many times over, while one thread costs a chapter about 1.5x its two-thread time (chapter 3: 39.4 s
# against 26.1 s alone, 41.4 s beside another chapter), so the pair takes about 0.8x of the two in turn.
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
executed: $(STAMP)
	$(MAKE) --no-print-directory -j2 --output-sync=line book-chain student-chain

book-chain: $(STAMP)
	@date +"%T book chain: start"
	$(ONE_THREAD) $(MAKE) --no-print-directory notebooks
	@date +"%T book chain: notebooks done"
	$(ONE_THREAD) $(MAKE) --no-print-directory book
	@date +"%T book chain: book done"
	$(ONE_THREAD) $(PY) scripts/build_pdf.py --skip-if-missing
	@date +"%T book chain: pdf done"

student-chain: $(STAMP)
	@date +"%T student chain: start"
	$(ONE_THREAD) $(MAKE) --no-print-directory student-check
	@date +"%T student chain: done"

# ruff (the rules chosen in pyproject.toml, and why) and mypy on the library: seconds, and it fails the build.
lint: $(STAMP)
	$(VENV)/bin/ruff check vaebook tests scripts benchmarks
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest tests -m "not browser and not colab" -q

# The lowest versions pyproject.toml admits (each `name>=X` installed as `name==X`, Python 3.11) get one
# run of the same unit tests, less the four that need nbgrader or otter (tests/floors_env.py says why).
floors: $(STAMP)
	$(PY) -m tests.floors_env

# Colab as it is: an environment pinned to Colab's published packages (tests/colab/constraints.txt;
# Python 3.13 where the machine has it; torch 2.11.0), where pip's dry run of the setup cell must
# change nothing, the setup cell's install and failure message and the widgets are tested, the
# training step's, trainer's and checkpoints' unit tests run on Colab's torch, and then every chapter
# runs alone from its own first cell (nbval). Those runs are what the book build renders.
notebooks: $(STAMP)
	$(PY) -m tests.colab_env build
	$(PY) -m pytest tests -m colab -q
	$(PY) -m tests.colab_env unit
	$(PY) -m tests.colab_env nbval book --prime-cache $(BUILD)/.jupyter_cache

# axe-core (npm, pinned by package-lock.json) for the browser tests' accessibility audit, and reveal.js for the slides.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The slides are built from the book just built (seconds: nothing runs again), then tested with the book's pages.
browser: $(STAMP) $(NODE_STAMP)
	$(PY) -m vaebook.authoring.slides
	$(PY) -m pytest tests -m browser -q --durations=15

## make slides: reveal.js slides of every chapter into _build/slides, from the chapters make book executed (see book/instructors.md)
slides: book $(NODE_STAMP)
	$(PY) -m vaebook.authoring.slides
	@echo "Open $(BUILD)/slides/index.html"

## make pdf: the whole book as one PDF, _build/pdf/vaebook.pdf, printed by Chromium from the chapters make book executed (needs poppler-utils; see book/instructors.md)
pdf: book
	$(PY) scripts/build_pdf.py

## make student: student notebooks and the student HTML book in student/ (see book/instructors.md)
student: $(STAMP)
	$(PY) -m vaebook.authoring.assign book --out student --force

# The instructors' page's grading commands, run as written there (tests/graders.py): nbgrader, with
# its default configuration, autogrades every chapter's student notebook as released (score 0, every
# check "not yet implemented", no other cell failing), and the solutions (full marks) and a planted
# mistake (one point less) of the two shortest chapters; its runs of the student notebooks are what
# the student book then shows (no solutions; the browser tests open it). otter-grader grades
# chapter 7's stubs, solutions and planted mistake.
student-check: $(STAMP)
	$(PY) -m tests.graders nbgrader --student-book $(BUILD)/student
	VAEBOOK_PROGRESS=0 $(VENV)/bin/jupyter-book build $(BUILD)/student --builder html --warningiserror --keep-going
	$(PY) -m tests.graders otter

## make graders: every chapter's stubs, solutions and a planted mistake through nbgrader, and otter (see book/instructors.md)
graders: $(STAMP)
	$(PY) -m tests.graders nbgrader --all
	$(PY) -m tests.graders otter

## make full-mnist: every chapter's checks on full MNIST too (MNIST_ROOT, default ../shared/data, holds MNIST/raw/)
MNIST_ROOT ?= ../shared/data
full-mnist: $(STAMP)
	VAEBOOK_DATA=$(abspath $(MNIST_ROOT)) $(PY) -m pytest tests/test_full_mnist.py -q

bench: $(STAMP)
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/chapter_times.py

clean:
	rm -rf $(BUILD) student dist build

distclean: clean
	rm -rf $(VENV)
