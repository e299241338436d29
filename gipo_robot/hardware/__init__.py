"""Hardware: one :class:`Robot` interface over robosuite, serial servo arms and ROS, behind a safety guard.

Imports are lazy (robosuite, pyserial and roslibpy load on first use), so ``import gipo_robot.hardware``
is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Robot": "robot",
    "RobotSpec": "robot",
    "RobotError": "robot",
    "TaskStatus": "robot",
    "ACTION_MODES": "robot",
    "SerialArm": "serial_bus",
    "SerialArmConfig": "serial_bus",
    "BusError": "serial_bus",
    "VirtualServoBus": "emulators.virtual_bus",
    "FaultConfig": "emulators.virtual_bus",
    "SafetyGuard": "safety",
    "SafetyConfig": "safety",
    "EStopError": "safety",
    "OpenCVCamera": "cameras",
    "CameraError": "cameras",
    "load_robot": "config",
    "RobotConfigError": "config",
    "DeployConfig": "deploy",
    "Pacer": "pacing",
    "RosArm": "ros_bridge",
    "RosArmConfig": "ros_bridge",
    "StaleStateError": "ros_bridge",
    "VirtualRosbridge": "emulators.virtual_rosbridge",
    "VirtualRosbridgeConfig": "emulators.virtual_rosbridge",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gipo_robot.hardware' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gipo_robot.hardware.{_EXPORTS[name]}"), name)
