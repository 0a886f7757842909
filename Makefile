# graphcollapse: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= demo-output

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(BIN)/graphcollapse demo --out $(OUT)

test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -m "not slow" -x

# The statistical tests (those taking the `seed` fixture) for many seeds: SEEDS=0-19 by
# default, or e.g. `make test-seeds SEEDS=any` (tests/conftest.py, GRAPHCOLLAPSE_SEEDS).
SEEDS ?= 0-19
.PHONY: test-seeds
test-seeds: $(STAMP)
	MPLBACKEND=Agg GRAPHCOLLAPSE_SEEDS=$(SEEDS) $(BIN)/python -m pytest -n 2 -q -m "seeded and not slow"

# docs/api.md, the public API on one screen, is generated from the code (a test checks it).
.PHONY: api
api: $(STAMP)
	PYTHONPATH=src $(BIN)/python -m graphcollapse._apidoc

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info src/*.egg-info .pytest_cache

# The study's experiments at full size into $(REPRO) (resumable; docs/reproduce.md).
# The quick version runs in `make test` (tests/test_reproduce.py).
REPRO ?= reproduction
.PHONY: reproduce
reproduce: $(STAMP)
	MPLBACKEND=Agg $(BIN)/graphcollapse reproduce --out $(REPRO) --workers 2
