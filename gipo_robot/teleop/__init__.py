"""Teleoperation devices: keyboard, SpaceMouse, leader arm and scripted.

A device (:mod:`~gipo_robot.teleop.devices`) turns an operator into normalised actions and control events;
the recording loop that drives a robot with one (:func:`gipo_robot.loops.record.record`, ``gipo-robot
record``) lives with the other loops, in :mod:`gipo_robot.loops`. Imports are lazy (termios, hidapi and
robosuite load on first use), so ``import gipo_robot.teleop`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EVENTS": "devices",
    "DEVICES": "devices",
    "DeviceCommand": "devices",
    "TeleopDevice": "devices",
    "TeleopError": "devices",
    "ScriptedDevice": "devices",
    "make_device": "devices",
    "KeyboardDevice": "keyboard",
    "SpaceMouseDevice": "spacemouse",
    "LeaderArmDevice": "leader",
    "JointMapping": "leader",
    "LeRobotLeader": "from_lerobot",
    "LeRobotDeltaDevice": "from_lerobot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gipo_robot.teleop' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gipo_robot.teleop.{_EXPORTS[name]}"), name)
