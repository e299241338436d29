"""The settings of one servo-bus arm (:class:`SerialArmConfig`), checked field by field.

Legend: ``J`` number of joints (one servo each, the gripper included).

A robot config file (JSON or TOML, ``type = "dynamixel"`` or ``"feetech"``) becomes a
:class:`SerialArmConfig` through :meth:`SerialArmConfig.from_dict`, which names the file and the key in
every error: a key that is unknown or missing, a string where a list is expected (``"ids": "123456"``
would otherwise be read digit by digit), a number that is not finite (JSON's ``Infinity``/``NaN``).
:class:`~gipo_robot.hardware.serial_bus.SerialArm` is the arm these settings drive.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gipo_robot.hardware import servo_protocol as sp

__all__ = ["SerialArmConfig"]


@dataclasses.dataclass
class SerialArmConfig:
    """One servo-bus arm. Saved as JSON/TOML with ``type = "dynamixel"`` or ``"feetech"``."""

    protocol: str
    """``"dynamixel"`` (Protocol 2.0) or ``"feetech"`` (STS)."""
    port: str
    """Serial device, e.g. ``/dev/ttyUSB0``, ``/dev/ttyACM0`` or a virtual bus's ``/dev/pts/N``."""
    ids: tuple[int, ...]
    """Servo ID of each joint, in joint order."""
    joint_names: tuple[str, ...]
    """The J joint names (the gripper is a joint)."""
    joint_limits: dict[str, tuple[float, float]]
    """Joint name -> (low, high), rad. Required for every joint: actions map onto this range."""
    max_velocity: float | tuple[float, ...] | None = None
    """Joint velocity limit, rad/s (one for all or one per joint; None: half the model's no-load speed)."""
    model: str | None = None
    """Servo model every ID must report (None: the protocol's default, ``xl330-m288`` / ``sts3215``)."""
    baudrate: int = 1_000_000
    """Bus speed, bit/s."""
    control_hz: float = 30.0
    """Control rate, steps/s."""
    calibration: str | None = None
    """Calibration JSON (LeRobot fields); None uses the homing stored in the servos, 2048 ticks = 0 rad."""
    retries: int = 3
    """Retries per bus transaction after a timeout/bad checksum before
    :class:`~gipo_robot.hardware.serial_bus.BusError`."""
    timeout_s: float = 0.05
    """How long to wait for a reply, s (beyond the bytes' wire time). A reply that arrives later is
    discarded, never taken as the answer to a later request: keep this above the bus's latency."""
    health_check_every: int = 1
    """While torque is on, every this many ``observe`` calls read each servo's torque switch (and, on
    Dynamixel, its Hardware Error Status) to catch a servo that went limp without an error bit, e.g. reset
    by a brown-out; 0 never does."""
    home: tuple[float, ...] | None = None
    """Joint positions ``reset`` moves to, rad (None: ``reset`` holds where the arm is)."""
    name: str | None = None
    """Robot name in logs and errors (default ``"<protocol>:<port>"``)."""

    def __post_init__(self) -> None:
        if self.protocol not in sp.PROTOCOLS:
            raise ValueError(f"SerialArmConfig.protocol {self.protocol!r} unknown; known: {sp.PROTOCOLS}")
        if not isinstance(self.port, str) or not self.port:
            raise ValueError("SerialArmConfig.port must name a serial device, e.g. /dev/ttyUSB0")
        self.ids = tuple(_integers(self.ids, "ids"))
        names = _sequence(self.joint_names, "joint_names")
        if not all(isinstance(j, str) and j for j in names):
            raise ValueError(f"SerialArmConfig.joint_names must be a list of joint names, got {names!r}")
        self.joint_names = tuple(names)
        if not self.ids:
            raise ValueError("SerialArmConfig.ids is empty")
        if len(self.ids) != len(self.joint_names):
            raise ValueError(
                f"SerialArmConfig.ids has {len(self.ids)} entries but joint_names has {len(self.joint_names)}"
            )
        if len(set(self.ids)) != len(self.ids) or any(not 0 <= i <= sp.BROADCAST_ID - 1 for i in self.ids):
            raise ValueError(f"SerialArmConfig.ids must be distinct ids in 0..253, got {list(self.ids)}")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"SerialArmConfig.joint_names has duplicates: {list(self.joint_names)}")
        for name in ("model", "calibration", "name"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"SerialArmConfig.{name} must be a string, got {value!r}")
        model = sp.model_named(self.model or sp.DEFAULT_MODELS[self.protocol])
        if model.protocol != self.protocol:
            raise ValueError(
                f"SerialArmConfig.model {model.name!r} is a {model.protocol} servo, not {self.protocol}"
            )
        self.model = model.name
        self.joint_limits = self._limits()
        self._check_numbers(model)
        if self.home is not None:
            self.home = tuple(_numbers(self.home, "home"))
            if len(self.home) != len(self.ids):
                raise ValueError(
                    f"SerialArmConfig.home must have {len(self.ids)} entries, got {len(self.home)}"
                )
            outside = [
                j
                for j, h in zip(self.joint_names, self.home, strict=True)
                if not self.joint_limits[j][0] <= h <= self.joint_limits[j][1]
            ]
            if outside:
                raise ValueError(f"SerialArmConfig.home is outside joint_limits for {outside}")
        if self.name is None:
            self.name = f"{self.protocol}:{self.port}"

    def _limits(self) -> dict[str, tuple[float, float]]:
        if not isinstance(self.joint_limits, Mapping):
            raise ValueError("SerialArmConfig.joint_limits must map each joint name to [low, high] in rad")
        limits = {}
        for joint in self.joint_names:
            if joint not in self.joint_limits:
                raise ValueError(f"SerialArmConfig.joint_limits.{joint} is missing: give [low, high] in rad")
            try:
                pair = _numbers(self.joint_limits[joint], f"joint_limits.{joint}")
            except ValueError:
                pair = []
            if len(pair) != 2 or not all(math.isfinite(v) for v in pair) or pair[1] <= pair[0]:
                raise ValueError(f"SerialArmConfig.joint_limits.{joint} must be [low, high] rad, high > low")
            if max(abs(v) for v in pair) > math.pi:
                raise ValueError(f"SerialArmConfig.joint_limits.{joint} must lie within one turn, [-pi, pi]")
            limits[joint] = (pair[0], pair[1])
        extra = sorted(set(self.joint_limits) - set(self.joint_names))
        if extra:
            raise ValueError(f"SerialArmConfig.joint_limits names unknown joints {extra}")
        return limits

    def _check_numbers(self, model: sp.ServoModel) -> None:
        if self.max_velocity is None:
            self.max_velocity = 0.5 * model.max_velocity
        vmax = list(self.max_velocity) if isinstance(self.max_velocity, list | tuple) else [self.max_velocity]
        if len(vmax) == 1:
            vmax = vmax * len(self.ids)
        if len(vmax) != len(self.ids) or not all(_is_number(v) and 0 < v < math.inf for v in vmax):
            raise ValueError(
                f"SerialArmConfig.max_velocity must be > 0 rad/s (one number or {len(self.ids)}), "
                f"got {self.max_velocity!r}"
            )
        self.max_velocity = tuple(float(v) for v in vmax)
        for name in ("baudrate", "control_hz", "timeout_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < math.inf:
                raise ValueError(f"SerialArmConfig.{name} must be a finite number > 0, got {value!r}")
        for name in ("retries", "health_check_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SerialArmConfig.{name} must be an integer >= 0, got {value!r}")
        if not float(self.baudrate).is_integer():
            raise ValueError(f"SerialArmConfig.baudrate must be an integer, got {self.baudrate!r}")
        self.baudrate = int(self.baudrate)

    @property
    def servo_model(self) -> sp.ServoModel:
        """The servo model (:class:`~gipo_robot.hardware.servo_protocol.ServoModel`)."""
        return sp.model_named(self.model)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> SerialArmConfig:
        """Build from a plain dict (a robot config file's contents).

        ``type`` (``"dynamixel"``/``"feetech"``) stands for ``protocol``.

        Raises:
            ValueError: unknown or missing keys, or a bad value; the message names ``source`` and the key.
        """
        data = dict(cfg)
        kind = data.pop("type", None)
        if kind is not None:
            if "protocol" in data and data["protocol"] != kind:
                raise ValueError(f"{source}: type {kind!r} and protocol {data['protocol']!r} disagree")
            data["protocol"] = kind
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown} for a serial arm; known: {sorted(fields)}")
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ValueError(f"{source}: missing key(s) {missing} for a serial arm")
        try:
            return cls(**data)
        except (TypeError, ValueError, KeyError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise ValueError(f"{source}: {message}") from exc


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _sequence(value: Any, field: str) -> list[Any]:
    """``value`` as a list; a string or a non-sequence is an error naming ``field``."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple | np.ndarray):
        raise ValueError(f"SerialArmConfig.{field} must be a list, got {value!r}")
    return list(value)


def _numbers(value: Any, field: str) -> list[float]:
    items = _sequence(value, field)
    if not all(_is_number(v) for v in items):
        raise ValueError(f"SerialArmConfig.{field} must be a list of numbers, got {value!r}")
    return [float(v) for v in items]


def _integers(value: Any, field: str) -> list[int]:
    items = _sequence(value, field)
    if not all(_is_number(v) and float(v).is_integer() for v in items):
        raise ValueError(f"SerialArmConfig.{field} must be a list of integers, got {value!r}")
    return [int(v) for v in items]
