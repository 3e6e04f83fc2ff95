# Lepton: `make run` starts everything on http://127.0.0.1:8000; `make serve` is the production shape
# (gunicorn on LEPTON_BIND with LEPTON_WEB_WORKERS workers, plus the node agent); `make test` runs the suite;
# `make bench-smoke` runs every benchmark in its quick --smoke mode (CI does).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Seconds each bench/ script's --smoke run may take (they take under a minute).
BENCH_SMOKE_TIMEOUT ?= 300
# pip on some machines warns about configured-but-absent local indexes; hide that noise only.
PIP_NOISE := is ignored: it is neither a file nor a directory

.PHONY: run serve test lint install check-deploy bench-smoke

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runlocal 127.0.0.1:8000

# exec: the serve command is then make's child itself, which forwards SIGTERM to it.
serve: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput
	exec $(PY) manage.py serve

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

# Every bench/*.py (a new one joins by itself) with --smoke, each under a timeout; all run, then any failure fails.
bench-smoke: install
	failed=(); \
	for script in bench/*.py; do \
	  printf '\n-- %s --smoke\n' "$$script"; started=$$SECONDS; \
	  DJANGO_SETTINGS_MODULE=lepton_web.settings timeout $(BENCH_SMOKE_TIMEOUT) $(PY) "$$script" --smoke \
	    || failed+=("$$script (exit $$?)"); \
	  printf -- '-- %s: %d s\n' "$$script" $$((SECONDS - started)); \
	done; \
	if (( $${#failed[@]} )); then printf '\nbench --smoke failed: %s\n' "$${failed[*]}"; exit 1; fi
