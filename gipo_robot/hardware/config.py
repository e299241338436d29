"""Build a :class:`~gipo_robot.hardware.robot.Robot` from one string: a sim task or a robot config file.

Two forms::

    sim:Lift                                    a robosuite task (SimRobot)
    sim:Lift?cameras=agentview&image_size=128   with make_env options, URL-query style
    robots/so100.toml                           a JSON or TOML robot config file

A config file is a table whose ``type`` key picks the backend from :data:`ROBOT_TYPES`; the other keys
are the backend's (see :class:`~gipo_robot.hardware.serial_bus.SerialArm`,
:class:`~gipo_robot.hardware.ros_bridge.RosArm`, :class:`~gipo_robot.hardware.from_lerobot.LeRobotArm`,
whose ``robot`` table is LeRobot's own robot config; ``type = "sim"`` takes ``task`` and the
:data:`SIM_OPTIONS`), plus an optional ``cameras`` list that puts OpenCV cameras on any robot
(:mod:`gipo_robot.hardware.with_cameras`). For example::

    type = "feetech"
    port = "/dev/ttyACM0"
    ids = [1, 2, 3, 4, 5, 6]

    [[cameras]]
    name = "wrist"
    source = 0
    width = 640
    height = 480

**Adding a robot type** is one line in :data:`ROBOT_TYPES`: the type name and ``"module:Class"``, where
``Class.from_config(cfg, source)`` builds the robot from the config dict (raising ``ValueError`` that
names ``source`` and the key). The module is imported only when a config of that type is loaded, so
reading a ``sim`` config never imports pyserial or roslibpy, and this package imports no backend
outside it. No config executes code: values are plain JSON/TOML data.
"""

from __future__ import annotations

import importlib
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from gipo_robot.hardware.robot import Robot
from gipo_robot.hardware.with_cameras import RobotWithCameras, camera_configs

__all__ = [
    "ROBOT_TYPES",
    "SIM_OPTIONS",
    "RobotConfigError",
    "load_robot",
    "read_robot_config",
    "robot_class",
]

#: Config ``type`` -> ``"module:Class"``; the class has ``from_config(cfg, source) -> Robot``.
ROBOT_TYPES: dict[str, str] = {
    "sim": "gipo_robot.sim.robot:SimRobot",
    "dynamixel": "gipo_robot.hardware.serial_bus:SerialArm",
    "feetech": "gipo_robot.hardware.serial_bus:SerialArm",
    "ros": "gipo_robot.hardware.ros_bridge:RosArm",
    "lerobot": "gipo_robot.hardware.from_lerobot:LeRobotArm",
}


class RobotConfigError(ValueError):
    """A robot spec string or config file that cannot be turned into a robot; names the file and key."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def _names(text: str) -> tuple[str, ...]:
    return tuple(name for name in text.split(",") if name)


#: ``sim`` option -> parser of its text value in a ``sim:Task?option=value`` string. The options are the
#: keys a ``type = "sim"`` config takes besides ``task`` (the simulator's ``make_env`` arguments).
SIM_OPTIONS: dict[str, Callable[[str], Any]] = {
    "robot": str,
    "action_mode": str,
    "reward": str,
    "horizon": int,
    "cameras": _names,
    "image_size": int,
    "seed": int,
    "end_on_success": _bool,
    "fast": _bool,
    "render_quality": str,
}


def robot_class(kind: str, source: str = "<config>") -> type[Robot]:
    """The backend class registered for a config ``type`` (imported now).

    Raises:
        RobotConfigError: an unknown type (listing the known ones), or a backend that cannot be imported
            (e.g. a missing optional extra, named in the message).
    """
    target = ROBOT_TYPES.get(kind)
    if target is None:
        raise RobotConfigError(f"{source}: key 'type' is {kind!r}; known types: {', '.join(ROBOT_TYPES)}")
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise RobotConfigError(f"{source}: robot type {kind!r} needs {module}, which failed: {err}") from err


def read_robot_config(path: str | Path) -> dict[str, Any]:
    """Read a ``.json`` or ``.toml`` robot config file into a dict with a known ``type``.

    Raises:
        RobotConfigError: missing file, unknown extension, a parse error (with its line), not a table,
            or a missing/unknown ``type`` (listing the known ones).
    """
    path = Path(path)
    if not path.is_file():
        raise RobotConfigError(f"robot config {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            cfg = json.loads(path.read_text())
        elif suffix == ".toml":
            cfg = tomllib.loads(path.read_text())
        else:
            raise RobotConfigError(f"robot config {path}: expected a .json or .toml file")
    except json.JSONDecodeError as err:
        raise RobotConfigError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from err
    except tomllib.TOMLDecodeError as err:
        raise RobotConfigError(f"{path}: invalid TOML: {err}") from err
    except UnicodeDecodeError as err:
        raise RobotConfigError(f"{path}: not a text file: {err}") from err
    if not isinstance(cfg, dict):
        raise RobotConfigError(f"{path}: a robot config must be a table/object, got {type(cfg).__name__}")
    kind = cfg.get("type")
    if kind is None:
        raise RobotConfigError(f"{path}: missing key 'type'; known types: {', '.join(ROBOT_TYPES)}")
    if kind not in ROBOT_TYPES:
        raise RobotConfigError(f"{path}: key 'type' is {kind!r}; known types: {', '.join(ROBOT_TYPES)}")
    return cfg


def _sim_spec_config(text: str) -> dict[str, Any]:
    """``sim:<Task>?option=value&...`` -> the equivalent ``type = "sim"`` config dict."""
    task, _, query = text[4:].partition("?")
    if not task:
        raise RobotConfigError(f"{text}: no task given (e.g. sim:Lift)")
    cfg: dict[str, Any] = {"type": "sim", "task": task}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as err:
        raise RobotConfigError(f"{text}: options must read key=value&key=value: {err}") from err
    for key, value in pairs:
        parse = SIM_OPTIONS.get(key)
        if parse is None:
            raise RobotConfigError(f"{text}: unknown sim option {key!r}; known: {sorted(SIM_OPTIONS)}")
        try:
            cfg[key] = parse(value)
        except ValueError as err:
            raise RobotConfigError(f"{text}: option {key!r}: {err}") from err
    return cfg


def load_robot(spec: str | Path) -> Robot:
    """The robot a spec string names (not yet connected), with its configured cameras attached.

    Args:
        spec: ``"sim:<Task>[?option=value&...]"`` (options: :data:`SIM_OPTIONS`) or a path to a
            ``.json``/``.toml`` robot config.

    Returns:
        The backend's robot, wrapped in a :class:`~gipo_robot.hardware.with_cameras.RobotWithCameras`
        when the config lists OpenCV cameras under ``cameras``.

    Raises:
        RobotConfigError: an unknown option/type/key, a bad value or a file problem; the message names the
            spec or file and the key.
    """
    text = str(spec)
    cfg = _sim_spec_config(text) if text.startswith("sim:") else read_robot_config(text)
    entries = cfg.get("cameras")
    cameras = ()
    if isinstance(entries, list) and any(isinstance(e, dict) for e in entries):
        del cfg["cameras"]  # OpenCV cameras (tables); a list of names is a simulator's own cameras
    else:
        entries = None
    try:
        if entries is not None:
            cameras = camera_configs(entries, text)
        robot = robot_class(cfg["type"], text).from_config(cfg, text)
        if not cameras:
            return robot
        try:
            return RobotWithCameras(robot, [c.camera() for c in cameras])
        except ValueError:
            robot.close()  # a simulator holds an env: free it
            raise
    except RobotConfigError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        message = str(err)
        raise RobotConfigError(message if text in message else f"{text}: {message}") from err
