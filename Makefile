# One virtualenv at .venv; `make setup` is idempotent and skips work when pyproject.toml is unchanged.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# CPU torch wheel that lies on this machine's disk; installed first so nothing pulls a CUDA build.
TORCH  := torch==2.13.0

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup quickstart test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

quickstart: setup
	$(BIN)/gipo-robot quickstart

test: setup
	$(BIN)/ruff check gipo_robot tests scripts
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check gipo_robot tests scripts
	$(BIN)/ruff format --check gipo_robot tests scripts

bench: setup
	$(BIN)/python scripts/bench_update.py
	$(BIN)/python scripts/reproduce_bias_variance.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
