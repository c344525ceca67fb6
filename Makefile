# Two commands for a fresh machine: `make run` (the whole platform with demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# Tests run on the real services: PostgreSQL and Redis on loopback (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
# The test process runs ORM calls on plain threads that never give a pooled connection back (settings.py);
# the platform processes the tests start use the production pool (tests/e2e/conftest.py).
TEST_ENV = DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DATABASE_POOL=false \
	SECRET_KEY=test-only-secret-key-never-used-in-production-0123456789

.PHONY: run test check bench lint lock dev clean

# Every package, transitive ones too, is pinned with its hashes in requirements/*.txt (compiled from *.in by
# `make lock`), and pip refuses anything else. Wheels only: no build step fetches unpinned build tools.
PIP_INSTALL = $(PY) -m pip install --quiet --require-hashes --only-binary :all:

$(VENV)/.base-installed: requirements/pip.txt requirements/base.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements/pip.txt
	$(PIP_INSTALL) -r requirements/base.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.base-installed requirements/test.txt
	$(PIP_INSTALL) -r requirements/test.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.test-installed requirements/dev.txt
	$(PIP_INSTALL) -r requirements/dev.txt
	touch $@

run: $(VENV)/.base-installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	$(PY) manage.py run_platform

test: $(VENV)/.test-installed
	bash scripts/ensure-test-deps
	VENV=$(VENV) bash scripts/check
	$(TEST_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(PY) -m bench

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

# ruff, mypy and `makemigrations --check` (scripts/check), as `make test` runs them first.
check: $(VENV)/.test-installed
	VENV=$(VENV) bash scripts/check

# Re-pin every package (the one-line bump: edit a pin in requirements/*.in, or `make lock UPGRADE=--upgrade`
# for the newest of everything, then `make test`). Each file keeps the versions of the one before it.
PIP_COMPILE = $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(UPGRADE)
lock: $(VENV)/.dev-installed
	$(PIP_COMPILE) -o requirements/pip.txt requirements/pip.in
	$(PIP_COMPILE) -o requirements/base.txt requirements/base.in
	$(PIP_COMPILE) -o requirements/test.txt requirements/test.in
	$(PIP_COMPILE) -o requirements/dev.txt requirements/dev.in

# A developer's machine: the tools above and the git hook that runs scripts/check before each commit.
dev: $(VENV)/.dev-installed
	$(VENV)/bin/pre-commit install

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
