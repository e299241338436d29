"""Hardware: the :class:`Robot` contract, the real-arm backends (serial servo bus, ROS, LeRobot's own
robots), cameras and the safety guard every action passes.

A robot config names its backend by ``type`` (:data:`~gipo_robot.hardware.config.ROBOT_TYPES`, lazily
imported ``"module:Class"`` strings; the simulator's ``SimRobot`` is registered there like any other
backend, and nothing here imports the simulator). The emulators that stand in for absent hardware live in
:mod:`gipo_robot.hardware.emulators`. Imports are lazy (pyserial, roslibpy and OpenCV load on first use),
so ``import gipo_robot.hardware`` is cheap.
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
    "ServoFaultError": "servo_faults",
    "VirtualServoBus": "emulators.virtual_bus",
    "FaultConfig": "emulators.virtual_bus",
    "SafetyGuard": "safety",
    "SafetyConfig": "safety",
    "EStopError": "safety",
    "OpenCVCamera": "cameras",
    "RobotWithCameras": "with_cameras",
    "CameraConfig": "with_cameras",
    "CameraError": "cameras",
    "load_robot": "config",
    "RobotConfigError": "config",
    "Pacer": "pacing",
    "LeRobotArm": "from_lerobot",
    "LeRobotArmConfig": "lerobot_config",
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
