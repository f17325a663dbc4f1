# The two commands a new user needs: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)
SEGMENTS_HOME ?= $(CURDIR)/data
export SEGMENTS_HOME
DEMO_CUSTOMERS ?= 20000

.PHONY: install demo lint test test-faults bench ui clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8

# Re-sync only when the lock or the project definition changed.
$(VENV)/.synced: $(BIN)/uv uv.lock pyproject.toml
	$(BIN)/uv sync --frozen --quiet
	touch $@

install: $(VENV)/.synced

demo: install
	$(BIN)/segments generate --customers $(DEMO_CUSTOMERS) --seed 42 --out $(SEGMENTS_HOME)/demo
	$(BIN)/segments run --landing $(SEGMENTS_HOME)/demo/landing

# Python: ruff (lint, format, import order); package dependencies: import-linter; SQL: sqlfluff (dbt templater).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	@# sqlfluff's dbt templater parses the project: into a temp target (the pipeline's partial-parse state stays) and
	@# against a temp warehouse path (no lock clash with a running pipeline)
	@tmp=$$(mktemp -d); \
	SEGMENTS_WAREHOUSE_PATH=$$tmp/lint.duckdb DBT_TARGET_PATH=$$tmp/target DBT_SEND_ANONYMOUS_USAGE_STATS=false \
	  $(BIN)/sqlfluff lint dbt_project/models dbt_project/tests dbt_project/macros; \
	rc=$$?; rm -rf $$tmp; exit $$rc

# Two workers (pytest-xdist), one OpenMP thread each (two workers of two threads on two cores spin-wait on each
# other in scikit-learn's OpenMP loops: make test took 855 s, 754 s with one), a test file per worker at a time: a
# file's module fixtures (a pipeline run) are built once. Every test has its own SEGMENTS_HOME, so the workers share
# nothing but the checkout. Files go out in the order tests/conftest.py sets (those running whole pipelines first,
# longest first), not xdist's. The 25 slowest tests (fixtures included) are listed at the end.
test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# The slow fault-injection scenarios (tests/faults, marker `faults`; `make test` runs only their fast part): kill -9
# at each stage, disk full, read-only home, concurrent runs, a growing landing file, mixed time zones, each
# followed by a plain `segments run` compared with a clean run. FAULTS_CUSTOMERS persons (2000 while developing);
# the table of recovery times is printed at the end. Needs root for the tmpfs scenarios (skipped otherwise).
FAULTS_CUSTOMERS ?= 20000
test-faults: install
	FAULTS_CUSTOMERS=$(FAULTS_CUSTOMERS) $(BIN)/python -m pytest -m faults tests/faults -v

# Whole pipeline at 10k, 100k and 1M persons vs the DuckDB floor and a pandas script; rewrites the
# generated section of BENCHMARKS.md. About 1 h and ~20 GB of disk under data/bench (1M dominates).
BENCH_SCALES ?= 10000,100000,1000000
bench: install
	$(BIN)/segments bench pipeline --scales $(BENCH_SCALES) --update-benchmarks BENCHMARKS.md

ui: install
	$(BIN)/segments ui

clean:
	rm -rf $(VENV) $(SEGMENTS_HOME) dbt_project/target dbt_project/logs .pytest_cache
