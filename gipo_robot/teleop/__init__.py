"""Teleoperation: keyboard, SpaceMouse, leader-arm and scripted devices, and the recording loop.

A device (:mod:`~gipo_robot.teleop.devices`) turns an operator into normalised actions and control events;
:func:`~gipo_robot.teleop.recorder.record` drives a robot with it at a fixed rate behind the safety guard
and streams every step into an episode store (``gipo-robot record``). Imports are lazy (termios, hidapi
and robosuite load on first use), so ``import gipo_robot.teleop`` is cheap.
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
    "RecorderConfig": "recorder",
    "SessionResult": "recorder",
    "PolicyDriver": "recorder",
    "record": "recorder",
    "teleop_schema": "recorder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gipo_robot.teleop' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gipo_robot.teleop.{_EXPORTS[name]}"), name)
