# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
STREAMLIT_FLAGS := --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

.PHONY: run test lint bench sandbox clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py $(STREAMLIT_FLAGS)

test: $(VENV)/.installed-dev
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(VENV)/.installed-dev
	$(PY) bench/run_all.py

sandbox: $(VENV)/.installed
	$(PY) -m cmlib sandbox --port 8765

clean:
	rm -rf $(VENV) .pytest_cache .data/cache
