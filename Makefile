# textcluster: `make run` opens the app, `make test` runs the whole suite (what CI runs),
# `make test-fast` the tests not marked slow (a developer's loop). All bootstrap .venv from
# nothing on a fresh clone. Timings: docs/ARCHITECTURE.md, section Tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev-ray

.PHONY: run test test-fast lint bench venv clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU wheel, not GBs of CUDA wheels.
# The ray extra is installed too: the suite checks the Ray engine against the local one.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,ray,fast]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/streamlit run app.py --server.headless=true --browser.gatherUsageStats=false

# --durations: the slowest tests are in every CI log, so a test that grows slow is seen.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q --durations=15

# Without the UMAP compile, self-training, model loading, property and browser tests.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check textcluster tests || true

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) bench/embed.py
	HF_HUB_OFFLINE=1 $(PY) bench/cluster_speed.py
	HF_HUB_OFFLINE=1 $(PY) bench/quality.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
