"""Shared fixtures for the simulation tests: robosuite envs are slow to build, so share them per module."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="module")
def lift_env():
    from gipo_robot.sim.robosuite_env import make_env

    env = make_env("Lift", horizon=50)
    yield env
    env.close()
