# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
STREAMLIT_FLAGS := --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

CATALOGS := $(patsubst %.po,%.mo,$(wildcard locales/*/LC_MESSAGES/messages.po))

.PHONY: run test lint bench sandbox team clean catalogs

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

# The translation catalogs (gettext .po, edited by translators) compiled to .mo with Babel; the
# app would compile a missing or stale one in memory, this keeps start-up from doing it.
locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(PY) -m cmlib.i18n compile

catalogs: $(CATALOGS)

run: $(VENV)/.installed $(CATALOGS)
	$(PY) -m streamlit run serve.py $(STREAMLIT_FLAGS)

test: $(VENV)/.installed-dev $(CATALOGS)
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(VENV)/.installed-dev $(CATALOGS)
	$(PY) bench/run_all.py

sandbox: $(VENV)/.installed
	$(PY) -m cmlib sandbox --port 8765

# The team deployment on this machine (needs: apt-get install redis-server postgresql): Redis and
# Postgres in a temp folder, a sandbox limited to 50/s, app replicas on 8501 and 8502, one worker.
# Ctrl-C stops them all. deploy/ runs the same roles with Docker.
team: $(VENV)/.installed $(CATALOGS)
	$(PY) -m cmlib team

clean:
	rm -rf $(VENV) .pytest_cache .data/cache $(CATALOGS)
