# Steward: `make run` brings everything up with the demo company; `make test` runs the whole test suite.
# Both bring up what they need (PostgreSQL + pgvector and Redis, see config/localservices.py) and stop only
# what they started.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVICES := $(PY) -m config.localservices

.PHONY: run test install services-up services-down services-status lint clean

run: $(STAMP)
	@$(SERVICES) exec -- bash scripts/run.sh

test: $(STAMP)
	@$(SERVICES) exec -- bash scripts/test.sh

install: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Steward needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements into $(VENV)…"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

services-up: $(STAMP)
	@$(SERVICES) up

services-down: $(STAMP)
	@$(SERVICES) down

services-status: $(STAMP)
	@$(SERVICES) status

lint: $(STAMP)
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean: services-down
	rm -rf var/static var/log
