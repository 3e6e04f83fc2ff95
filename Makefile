# Lepton: `make run` starts everything on http://127.0.0.1:8000; `make test` runs the suite.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# pip on some machines warns about configured-but-absent local indexes; hide that noise only.
PIP_NOISE := is ignored: it is neither a file nor a directory

.PHONY: run test lint install check-deploy

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

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
