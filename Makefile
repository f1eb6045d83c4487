# Outbound Data Sync — make demo | make test | make ui (see README.md)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -name '*.sql' -o -name '*.yml' -o -name '*.md' 2>/dev/null | grep -v -e '/target/' -e '/logs/')

# Demo day range: make demo FROM=2026-11-20 TO=2026-11-22 (default: yesterday)
DEMO_ARGS := $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

.PHONY: install demo test ui up down status lint bench clean

install: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# --compile-bytecode: this environment sets PYTHONDONTWRITEBYTECODE, so without it every
	# start re-compiles dagster (8-10 s instead of 4 s; stack-notes.md).
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --all-extras --compile-bytecode --python $(BIN)/python
	touch $@

$(MANIFEST): $(VENV)/.synced $(DBT_SOURCES)
	$(BIN)/ods parse

demo: install $(MANIFEST)
	$(BIN)/ods demo $(DEMO_ARGS)

# Three workers on this 2-core machine, each with its own embedded PostgreSQL: the suite waits on
# daemons, servers and subprocesses more than it computes (with one worker per core it kept 1.3
# cores busy). A test module stays on one worker (its module fixtures build a site once), slowest
# modules first (tests/conftest.py); the 30 slowest steps are listed at the end.
# PYTEST_ARGS adds options: make test PYTEST_ARGS="-k f2f"; TEST_WORKERS=2 make test.
TEST_WORKERS ?= 3
test: install $(MANIFEST)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30 $(PYTEST_ARGS)

# The Dagster UI on the local data: make ui [UI_PORT=3001] (or env ODS_UI_PORT; default 3000).
# `ods ui` starts the local services, sets DAGSTER_HOME to $ODS_HOME/dagster (.ods/dagster) unless
# it is set, and runs the venv's dagster dev; nothing needs to be on PATH.
ui: install $(MANIFEST)
	$(BIN)/ods ui $(if $(UI_PORT),--port $(UI_PORT))

up: install
	$(BIN)/ods up

down: install
	$(BIN)/ods down

status: install
	$(BIN)/ods status

lint: install
	$(BIN)/ruff check orchestration ods_local synthetic_moodle tests benchmarks
	$(BIN)/ruff format --check orchestration ods_local synthetic_moodle tests benchmarks
	$(BIN)/mypy orchestration ods_local synthetic_moodle benchmarks
	# The dbt models' SQL (dbt_project/.sqlfluff: jinja templater, no database needed).
	cd dbt_project && ../$(BIN)/sqlfluff lint models

bench: install $(MANIFEST)
	$(BIN)/python benchmarks/completion_export.py

clean: down
	rm -rf .ods dbt_project/target dbt_project/logs
