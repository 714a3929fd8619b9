# The two commands a newcomer needs (README "Try it"):
#   make demo   installs, loads the demo study and starts the site (SQLite, tasks in process) at
#               http://$(HOST):$(PORT)/, e.g. make demo PORT=8765; Ctrl-C stops it
#   make test   installs and runs the tests (against PostgreSQL: TEST_DATABASE_URL below);
#               PYTEST_ARGS goes to pytest, e.g. make test PYTEST_ARGS=tests/test_health.py
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/evalsite

.PHONY: demo test install install-test bench

$(VENV)/.site: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.site
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.site
install-test: $(VENV)/.test

demo: install
	DEBUG=1 SITE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install-test
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/pytest $(PYTEST_ARGS)

bench: install-test
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python bench/ingest.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python bench/annotate.py
	$(BIN)/python bench/leaderboard.py
	$(BIN)/python bench/generate.py
