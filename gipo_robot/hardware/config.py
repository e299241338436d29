"""Build a :class:`~gipo_robot.hardware.robot.Robot` from one string: a sim task or a robot config file.

Two forms::

    sim:Lift                                    a robosuite task (SimRobot)
    sim:Lift?cameras=agentview&image_size=128   with make_env options, URL-query style
    robots/so100.toml                           a JSON or TOML robot config file

A config file is a flat table whose ``type`` key picks the backend from :data:`ROBOT_TYPES`; the other
keys are the backend's (see :class:`~gipo_robot.hardware.serial_bus.SerialArm` and
:class:`~gipo_robot.hardware.ros_bridge.RosArm`; ``type = "sim"`` takes ``task`` and the options below).
For example::

    type = "feetech"
    port = "/dev/ttyACM0"
    ids = [1, 2, 3, 4, 5, 6]

Backends import lazily, so reading a ``sim`` config never imports pyserial or roslibpy. No config
executes code: values are plain JSON/TOML data.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from gipo_robot.hardware.robot import Robot

__all__ = ["ROBOT_TYPES", "SIM_OPTIONS", "RobotConfigError", "load_robot", "read_robot_config"]


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


#: ``sim:`` option -> parser of its text value (options are :func:`gipo_robot.sim.make_env` arguments).
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


def _sim_from_options(task: str, options: dict[str, Any], where: str) -> Robot:
    from gipo_robot.hardware.sim_robot import SimRobot

    unknown = sorted(set(options) - set(SIM_OPTIONS))
    if unknown:
        raise RobotConfigError(f"{where}: unknown sim options {unknown}; known: {sorted(SIM_OPTIONS)}")
    if not task:
        raise RobotConfigError(f"{where}: no task given (e.g. sim:Lift)")
    try:
        return SimRobot(task, **options)
    except ValueError as err:
        raise RobotConfigError(f"{where}: {err}") from err


def _sim(cfg: dict[str, Any], source: str) -> Robot:
    options = {k: v for k, v in cfg.items() if k not in ("type", "task")}
    if isinstance(options.get("cameras"), list):
        options["cameras"] = tuple(options["cameras"])
    task = cfg.get("task")
    if not isinstance(task, str):
        raise RobotConfigError(f"{source}: key 'task' must be a task name such as \"Lift\", got {task!r}")
    return _sim_from_options(task, options, source)


def _serial(cfg: dict[str, Any], source: str) -> Robot:
    from gipo_robot.hardware.serial_bus import SerialArm

    return SerialArm.from_config(cfg, source=source)


def _ros(cfg: dict[str, Any], source: str) -> Robot:
    from gipo_robot.hardware.ros_bridge import RosArm

    return RosArm.from_config(cfg, source=source)


#: Config ``type`` -> constructor ``(config dict, source name) -> Robot``.
ROBOT_TYPES: dict[str, Callable[[dict[str, Any], str], Robot]] = {
    "sim": _sim,
    "dynamixel": _serial,
    "feetech": _serial,
    "ros": _ros,
}


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


def load_robot(spec: str | Path) -> Robot:
    """The robot a spec string names (not yet connected).

    Args:
        spec: ``"sim:<Task>[?option=value&...]"`` (options: :data:`SIM_OPTIONS`) or a path to a
            ``.json``/``.toml`` robot config.

    Raises:
        RobotConfigError: an unknown option/type/key, a bad value or a file problem; the message names the
            spec or file and the key.
    """
    text = str(spec)
    if text.startswith("sim:"):
        task, _, query = text[4:].partition("?")
        options: dict[str, Any] = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError as err:
            raise RobotConfigError(f"{text}: options must read key=value&key=value: {err}") from err
        for key, value in pairs:
            parse = SIM_OPTIONS.get(key)
            if parse is None:
                raise RobotConfigError(f"{text}: unknown sim option {key!r}; known: {sorted(SIM_OPTIONS)}")
            try:
                options[key] = parse(value)
            except ValueError as err:
                raise RobotConfigError(f"{text}: option {key!r}: {err}") from err
        return _sim_from_options(task, options, text)
    cfg = read_robot_config(text)
    build = ROBOT_TYPES[cfg["type"]]
    try:
        return build(cfg, text)
    except RobotConfigError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        message = str(err)
        raise RobotConfigError(message if text in message else f"{text}: {message}") from err
