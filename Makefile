# The two commands a new user needs: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)
SEGMENTS_HOME ?= $(CURDIR)/data
export SEGMENTS_HOME
DEMO_CUSTOMERS ?= 20000

.PHONY: install demo test ui clean

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

test: install
	$(BIN)/python -m pytest -q

ui: install
	$(BIN)/segments ui

clean:
	rm -rf $(VENV) $(SEGMENTS_HOME) dbt_project/target dbt_project/logs .pytest_cache
