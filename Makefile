# One virtualenv at .venv; `make setup` is idempotent and skips work when pyproject.toml is unchanged.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# CPU torch wheel that lies on this machine's disk; installed first so nothing pulls a CUDA build.
TORCH  := torch==2.13.0

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

# LeRobot 0.4.x needs torch < 2.11: it lives in a second venv (a CUDA build of torch 2.9.1 that runs on the CPU,
# ~9 GB), so the main venv keeps the CPU wheel. pandas/pyarrow are capped because robosuite pins numpy < 2.
LEROBOT_VENV  := .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed

.PHONY: setup setup-lerobot quickstart test test-lerobot lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup-lerobot: $(LEROBOT_STAMP)

$(LEROBOT_STAMP): pyproject.toml
	test -x $(LEROBOT_VENV)/bin/python || $(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LEROBOT_VENV)/bin/python -m pip install --quiet torch==2.9.1 torchvision==0.24.1
	$(LEROBOT_VENV)/bin/python -m pip install --quiet "lerobot==0.4.4" "pandas<3" "pyarrow<22"
	$(LEROBOT_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	touch $(LEROBOT_STAMP)

quickstart: setup
	$(BIN)/gipo-robot quickstart

test: setup
	$(BIN)/ruff check gipo_robot tests scripts
	$(BIN)/python -m pytest -q -m "not slow"

# The LeRobot integration tests, against the real lerobot package in the second venv.
test-lerobot: setup-lerobot
	HF_HUB_OFFLINE=1 $(LEROBOT_VENV)/bin/python -m pytest -q tests/lerobot

lint: setup
	$(BIN)/ruff check gipo_robot tests scripts
	$(BIN)/ruff format --check gipo_robot tests scripts

bench: setup
	$(BIN)/python scripts/bench_update.py
	$(BIN)/python scripts/reproduce_bias_variance.py

clean:
	rm -rf $(VENV) $(LEROBOT_VENV) .pytest_cache .ruff_cache
