"""Simulation: robosuite tasks as gymnasium envs, scripted experts, parallel rollouts, domain randomization,
and the simulator as a robot backend (:class:`SimRobot`). Every env speaks the robot contract: its
``robot_spec`` is a :class:`~gipo_robot.hardware.robot.RobotSpec`.

Imports are lazy (robosuite and MuJoCo load on first use of an env), so ``import gipo_robot.sim`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "make_env": "robosuite_env",
    "EnvConfig": "config",
    "RobosuiteEnv": "robosuite_env",
    "SimError": "robosuite_env",
    "RendererUnavailableError": "robosuite_env",
    "SimUnavailableError": "robosuite_env",
    "TASKS": "tasks",
    "TaskInfo": "tasks",
    "ROBOTS": "config",
    "ACTION_MODES": "config",
    "SimRobot": "robot",
    "ScriptedExpert": "experts",
    "collect_demos": "experts",
    "PLANS": "experts",
    "VectorEnv": "vector",
    "make_vector_env": "vector",
    "BACKENDS": "vector",
    "WorkerLostError": "vector",
    "Randomization": "randomize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gipo_robot.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gipo_robot.sim.{_EXPORTS[name]}"), name)
