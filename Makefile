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

# Debian bookworm's ROS 1 (in the system Python, /usr/bin/python3) for RosArm's tests against the real rosbridge
# (third_party/rosbridge_suite, run by scripts/ros1/). apt-get runs only when a package is missing.
ROS_DEBS := python3-rospy python3-rosmaster python3-rosservice python3-rostopic python3-rosnode python3-genpy \
	python3-catkin-pkg python3-std-msgs python3-sensor-msgs python3-trajectory-msgs python3-autobahn \
	python3-twisted python3-tornado python3-bson python3-pil iproute2

.PHONY: setup setup-lerobot setup-ros quickstart test test-lerobot test-ros lint bench clean

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
