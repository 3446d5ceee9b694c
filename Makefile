# The two commands a new machine needs: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-postgres mutation-guard cluster cluster-down cluster-status lint \
	format serve install install-dev

## run: install, migrate, create the demo data, serve on http://$(HOST):$(PORT) with
## WEB_PROCESSES daphne processes (auto: one per core but one, at least 2)
WEB_PROCESSES ?= auto
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createdemo
	$(PY) -m reeleditor.serve --bind $(HOST):$(PORT) --processes $(WEB_PROCESSES)

## test: install the test tools, start what the tests need, lint, run every test
## (on the SQLite central database), then the tests of the central database's users
## again on PostgreSQL, as production runs it
test: install-dev
	bash scripts/test-services.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory mutation-guard

# Everything that touches the central database (registry, leases, export jobs,
# sessions, admin), with PostgreSQL as the central database. The fault suite runs on
# both databases by itself; the browser and render tests do not depend on it.
POSTGRES_TEST_URL ?= $(if $(TEST_POSTGRES_URL),$(TEST_POSTGRES_URL),postgres://postgres@127.0.0.1:5432/reeleditor)
test-postgres: install-dev
	DATABASE_URL=$(POSTGRES_TEST_URL) $(VENV)/bin/pytest -q -m "not browser and not fault and not cluster" \
		accounts syncstore projects games sharing reeleditor exports/tests/test_export_api.py \
		exports/tests/test_job_transitions.py exports/tests/test_admin.py \
		exports/tests/test_export_outcomes.py exports/tests/test_worker_start.py

## mutation-guard: apply each hand-written mutation of the core promises to a scratch copy
## and run the tests chosen to catch it; fails if one survives (scripts/mutation_guard.py)
mutation-guard: install-dev
	$(PY) scripts/mutation_guard.py

## cluster: production mode on this machine, in the background: PostgreSQL, Redis,
## S3 (moto), two web instances behind nginx on http://127.0.0.1:8080, a Celery worker
## (reeleditor/localcluster; demo / demo). `make cluster-down` stops it.
cluster: install-dev
	bash scripts/test-services.sh postgres redis nginx
	$(PY) -m reeleditor.localcluster up

cluster-down:
	$(PY) -m reeleditor.localcluster down

cluster-status:
	$(PY) -m reeleditor.localcluster status

lint: install-dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

install: $(VENV)/.installed-runtime
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever a requirements file changes.
$(VENV)/.installed-runtime: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-upscale.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	touch $@ $(VENV)/.installed-runtime
