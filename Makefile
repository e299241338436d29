# One virtualenv at .venv; `make setup` is idempotent and skips work when pyproject.toml is unchanged.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The simulator and the test tools: everything the quickstart and the tests need.
EXTRAS := sim,dev
# CPU torch wheel that lies on this machine's disk; installed first so nothing pulls a CUDA build.
TORCH  := torch==2.13.0

# pip over a flaky link: resume a cut download up to 20 times, retry a failed connection 10 times, and run a
# whole install up to 3 times (a resolve that backtracks can still fetch a large wheel). `$(call pip,PYTHON,ARGS)`.
export PIP_RETRIES ?= 10
export PIP_RESUME_RETRIES ?= 20
pip = for attempt in 1 2 3; do $(1) -m pip install --quiet $(2) && break; \
	[ $$attempt = 3 ] && exit 1; echo "pip install failed (attempt $$attempt of 3); retrying in 20 s" >&2; sleep 20; done

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

# A LeRobot user's environment: LeRobot 0.6 needs Python >= 3.12, numpy 2 and torch < 2.12 (from PyPI, a CUDA build
# that runs on the CPU; ~10 GB in all), so it lives in a second venv. gipo-robot's core goes in the way a user
# installs it there: without the [sim] extra (robosuite needs numpy < 2).
LEROBOT_PYTHON ?= $(or $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null),\
	$(shell pyenv prefix 3.12 2>/dev/null | head -1)/bin/python3.12)
LEROBOT := lerobot[dataset,feetech,dynamixel]==0.6.1
LEROBOT_VENV  := .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed

# Debian bookworm's ROS 1 (in the system Python, /usr/bin/python3) for RosArm's tests against the real rosbridge
# (third_party/rosbridge_suite, run by scripts/ros1/). apt-get runs only when a package is missing.
ROS_DEBS := python3-rospy python3-rosmaster python3-rosservice python3-rostopic python3-rosnode python3-genpy \
	python3-catkin-pkg python3-std-msgs python3-sensor-msgs python3-trajectory-msgs python3-autobahn \
	python3-twisted python3-tornado python3-bson python3-pil iproute2

.PHONY: setup setup-lerobot setup-ros quickstart test test-lerobot test-ros lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call pip,$(BIN)/python,--upgrade pip)
	$(call pip,$(BIN)/python,"$(TORCH)")
	$(call pip,$(BIN)/python,-e ".[$(EXTRAS)]")
	touch $(STAMP)

setup-lerobot: $(LEROBOT_STAMP)

$(LEROBOT_STAMP): pyproject.toml
	test -x $(LEROBOT_VENV)/bin/python || $(LEROBOT_PYTHON) -m venv $(LEROBOT_VENV)
	$(call pip,$(LEROBOT_VENV)/bin/python,--upgrade pip)
	$(call pip,$(LEROBOT_VENV)/bin/python,"$(LEROBOT)")
	$(call pip,$(LEROBOT_VENV)/bin/python,-e ".[dev]")
	touch $(LEROBOT_STAMP)

quickstart: setup
	$(BIN)/gipo-robot quickstart

test: setup
	$(BIN)/ruff check gipo_robot tests scripts
	$(BIN)/python -m pytest -q -m "not slow and not ros1"

setup-ros:
	@missing=$$(for p in $(ROS_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
		if [ -n "$$sudo" ] && ! command -v sudo >/dev/null; then \
			echo "setup-ros: apt-get install $$missing needs root or sudo" >&2; exit 1; fi; \
		echo "setup-ros: apt-get install" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
		|| { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }; \
	fi

# RosArm against the real rosbridge_suite ROS 1 server (0.11.17): the tests start rosmaster, rosapi, rosbridge
# and a rospy arm on 127.0.0.1 and stop them; GIPO_REQUIRE_ROS=1 turns a missing package into a failure.
test-ros: setup setup-ros
	GIPO_REQUIRE_ROS=1 $(BIN)/python -m pytest -q tests/hardware/ros1

# The LeRobot integration tests, against the real lerobot package in the second venv; then the core's own
# tests there, on Python 3.12, numpy 2 and zarr 3.4 without the simulator (a test that needs it skips, saying so).
test-lerobot: setup-lerobot
	HF_HUB_OFFLINE=1 $(LEROBOT_VENV)/bin/python -m pytest -q tests/lerobot
	$(LEROBOT_VENV)/bin/python -m pytest -q -m "not slow and not ros1" --ignore=tests/lerobot tests

lint: setup
	$(BIN)/ruff check gipo_robot tests scripts
	$(BIN)/ruff format --check gipo_robot tests scripts

bench: setup
	$(BIN)/python scripts/bench_update.py
	$(BIN)/python scripts/reproduce_bias_variance.py

clean:
	rm -rf $(VENV) $(LEROBOT_VENV) .pytest_cache .ruff_cache
