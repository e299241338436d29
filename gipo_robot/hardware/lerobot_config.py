"""A LeRobot robot or teleoperator named in a gipo-robot config: :class:`LeRobotArmConfig`, the LeRobot
objects it builds (:func:`make_lerobot`), and its motors' units in rad (:class:`JointUnits`).

Legend: ``J`` number of motors on the device's bus (one per joint, the gripper included).

A robot config file ``{"type": "lerobot", "robot": {"type": "so101_follower", "port": "/dev/ttyACM0",
"id": "my_arm"}}`` (a teleoperator's: ``"teleop"`` instead of ``"robot"``) holds LeRobot's own config
fields under ``robot``/``teleop``: LeRobot's config class of that ``type`` (found in LeRobot's registry,
``RobotConfig.get_choice_class``) decodes them, so every field LeRobot documents (``port``, ``id``,
``calibration_dir``, ``cameras``, ``max_relative_target``, ``use_degrees``, ...) means what it means in
LeRobot, and LeRobot's ``make_robot_from_config`` builds the device. Nothing here imports LeRobot until a
config of this type is loaded; without it the error says ``pip install 'gipo-robot[lerobot]'``.

**Calibration** is LeRobot's file ``<calibration_dir>/<id>.json`` (default
``$HF_LEROBOT_CALIBRATION/robots/<type>/<id>.json``, ``~/.cache/huggingface/lerobot/calibration/...``):
the one ``lerobot-calibrate`` wrote. It is required, since it defines the joints' ranges and units.

**Units.** LeRobot reports each motor in its ``MotorNormMode``: degrees about the middle of the calibrated
range (``DEGREES``), or a percentage of the calibrated range (``RANGE_M100_100``: -100..100; ``RANGE_0_100``:
0..100, the grippers). gipo-robot makes every joint, the gripper included, an angle in rad about the
middle of its calibrated range ``[min, max]`` (ticks), with ``k = 2 pi / (resolution - 1)`` rad per tick
(LeRobot's own degree scale, 360 degrees per 4095 ticks on a 12-bit encoder)::

    rad = deg * pi / 180                                      DEGREES
    rad = s * v / 100 * (max - min) / 2 * k                   RANGE_M100_100 (s = -1 in drive mode 1)
    rad = (v' / 100 - 1 / 2) * (max - min) * k                RANGE_0_100 (v' = 100 - v in drive mode 1)

so the calibrated range is ``[-(max - min) / 2 * k, +(max - min) / 2 * k]`` rad for every joint: the
joint limits of the spec.

With ``units = "lerobot"`` in the config the arm keeps LeRobot's own values instead (what
``lerobot-record`` stores): each joint's limits are its calibrated range in LeRobot's unit (``DEGREES``:
``+-(max - min) / 2 * k`` in degrees; ``RANGE_M100_100``: [-100, 100]; ``RANGE_0_100``: [0, 100], whatever
the drive mode), and its velocity limit is the rad/s limit divided by ``|scale|`` (LeRobot units per second).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import pkgutil
from collections.abc import Mapping
from typing import Any

import numpy as np

from gipo_robot.hardware import servo_protocol as sp
from gipo_robot.hardware.robot import RobotSpec

__all__ = ["NO_LOAD_SPEED", "JointUnits", "LeRobotArmConfig", "import_lerobot", "make_lerobot"]

#: Servo model (LeRobot's name) -> no-load speed, rad/s (the vendors' datasheets at the arms' voltage).
#: Half of it is the default velocity limit.
NO_LOAD_SPEED: dict[str, float] = {
    **{m.name: m.max_velocity for m in sp.MODELS.values()},
    "sts3250": 2.0 * math.pi / 6.0 / 0.133,  # 0.133 s per 60 deg at 12 V
}

_KINDS = {
    "robot": ("lerobot.robots", "RobotConfig"),
    "teleop": ("lerobot.teleoperators", "TeleoperatorConfig"),
}


def import_lerobot(source: str) -> Any:
    """``import lerobot``, or a ValueError naming ``source`` and the extra to install."""
    try:
        return importlib.import_module("lerobot")
    except ImportError as err:
        from gipo_robot.extras import install_hint

        hint = install_hint(err) or f"lerobot failed to import: {err}"
        raise ValueError(f"{source}: robot type 'lerobot' needs LeRobot: {hint}") from err


def _config_class(kind: str, name: Any, source: str) -> type:
    """LeRobot's config class registered as ``name`` (a robot or a teleoperator type)."""
    import_lerobot(source)
    package, base_name = _KINDS[kind]
    base = getattr(importlib.import_module(package), base_name)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: key '{kind}.type' must name a LeRobot {kind} type, got {name!r}")
    # Each LeRobot device package registers its type when imported (as lerobot-record does); a device
    # whose own SDK is missing cannot be built anyway, and must not stop the others from registering.
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        with contextlib.suppress(Exception):
            importlib.import_module(f"{package}.{info.name}")
    with contextlib.suppress(Exception):
        from lerobot.utils.import_utils import register_third_party_plugins

        register_third_party_plugins()  # lerobot_robot_* / lerobot_teleoperator_* packages
    try:
        return base.get_choice_class(name)
    except KeyError:
        known = ", ".join(sorted(base.get_known_choices()))
        raise ValueError(
            f"{source}: key '{kind}.type' is {name!r}, not a LeRobot {kind} type; known: {known}"
        ) from None


def make_lerobot(kind: str, table: Any, source: str) -> Any:
    """Build LeRobot's robot (``kind="robot"``) or teleoperator (``"teleop"``) from its config table.

    Args:
        kind: ``"robot"`` or ``"teleop"``.
        table: LeRobot's config fields, with its ``type``.
        source: The config file, for error messages.

    Returns:
        The LeRobot device, not connected (its calibration file, if any, loaded).

    Raises:
        ValueError: LeRobot is missing, an unknown type, or a field LeRobot's config refuses; the message
            names ``source`` and the key.
    """
    if not isinstance(table, Mapping):
        raise ValueError(
            f"{source}: key '{kind}' must be a table of LeRobot {kind} config fields with a 'type'"
        )
    fields = dict(table)
    config_class = _config_class(kind, fields.pop("type", None), source)
    import draccus

    with contextlib.suppress(ImportError):
        importlib.import_module("lerobot.cameras.opencv")  # registers the camera types `cameras` may name
    try:
        config = draccus.decode(config_class, fields)
    except Exception as err:  # draccus reports bad fields with several error types
        text = " ".join(str(err).split())
        raise ValueError(
            f"{source}: key '{kind}': LeRobot's {config_class.__name__} refuses it: {text}"
        ) from err
    module = importlib.import_module(_KINDS[kind][0])
    make = module.make_robot_from_config if kind == "robot" else module.make_teleoperator_from_config
    try:
        return make(config)
    except (ValueError, TypeError, OSError, ImportError) as err:
        raise ValueError(f"{source}: LeRobot cannot build {kind} {table['type']!r}: {err}") from err


@dataclasses.dataclass(frozen=True)
class JointUnits:
    """LeRobot's value of each motor <-> rad: ``rad = scale * value + shift`` (see the module doc).

    Attributes:
        names: The J motor names, in bus order (LeRobot's keys are ``<name>.pos``).
        units: LeRobot's unit of each: ``"deg"``, ``"-100..100 %"`` or ``"0..100 %"``.
        scale: (J,) rad per LeRobot unit.
        shift: (J,) rad at LeRobot value 0.
        half_range: (J,) rad; the calibrated range is ``[-half_range, +half_range]``.
    """

    names: tuple[str, ...]
    units: tuple[str, ...]
    scale: np.ndarray
    shift: np.ndarray
    half_range: np.ndarray

    @classmethod
    def of_bus(cls, bus: Any, calibration: Mapping[str, Any], where: str) -> JointUnits:
        """The units of a LeRobot motor bus (``SerialMotorsBus``) under ``calibration``.

        Raises:
            ValueError: a motor without calibration, or with an empty range (names ``where`` and the motor).
        """
        names, units, scale, shift, half = [], [], [], [], []
        for name, motor in bus.motors.items():
            cal = calibration.get(name)
            if cal is None:
                raise ValueError(f"{where}: the calibration has no entry for motor {name!r}")
            if cal.range_max <= cal.range_min:
                raise ValueError(f"{where}: motor {name!r} has an empty calibrated range {cal}")
            k = 2.0 * math.pi / (bus.model_resolution_table[motor.model] - 1)
            span = (cal.range_max - cal.range_min) * k  # rad
            flip = -1.0 if bus.apply_drive_mode and cal.drive_mode else 1.0
            mode = getattr(motor.norm_mode, "value", motor.norm_mode)
            if mode == "degrees":
                unit, a, b = "deg", math.pi / 180.0, 0.0
            elif mode == "range_m100_100":
                unit, a, b = "-100..100 %", flip * span / 200.0, 0.0
            elif mode == "range_0_100":
                unit, a, b = "0..100 %", flip * span / 100.0, -flip * span / 2.0
            else:
                raise ValueError(f"{where}: motor {name!r} uses LeRobot norm mode {mode!r}, not mapped here")
            names.append(name)
            units.append(unit)
            scale.append(a)
            shift.append(b)
            half.append(span / 2.0)
        return cls(tuple(names), tuple(units), np.array(scale), np.array(shift), np.array(half))

    def to_rad(self, values: Mapping[str, Any]) -> np.ndarray:
        """LeRobot's ``{"<name>.pos": value}`` -> (J,) float64 rad (a missing key is NaN)."""
        return self.scale * self.values(values) + self.shift

    def from_rad(self, q: np.ndarray) -> dict[str, float]:
        """(J,) rad -> LeRobot's ``{"<name>.pos": value}``."""
        return self.from_values((np.asarray(q, dtype=np.float64) - self.shift) / self.scale)

    def values(self, values: Mapping[str, Any]) -> np.ndarray:
        """LeRobot's ``{"<name>.pos": value}`` -> (J,) float64 in LeRobot's units (a missing key is NaN)."""
        return np.array([float(values.get(f"{n}.pos", np.nan)) for n in self.names])

    def from_values(self, v: np.ndarray) -> dict[str, float]:
        """(J,) LeRobot values -> LeRobot's ``{"<name>.pos": value}``."""
        return {f"{n}.pos": float(x) for n, x in zip(self.names, np.asarray(v, np.float64), strict=True)}

    def read(self, values: Mapping[str, Any], units: str) -> np.ndarray:
        """LeRobot's ``{"<name>.pos": value}`` -> (J,) float64 in ``units`` (``"rad"`` or ``"lerobot"``)."""
        return self.values(values) if units == "lerobot" else self.to_rad(values)

    def write(self, q: np.ndarray, units: str) -> dict[str, float]:
        """(J,) positions in ``units`` -> LeRobot's ``{"<name>.pos": value}``; the inverse of :meth:`read`."""
        return self.from_values(q) if units == "lerobot" else self.from_rad(q)

    def limits(self, units: str) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (J,): the calibrated range in ``units`` (see the module doc)."""
        if units != "lerobot":
            return -self.half_range, self.half_range
        ends = {"-100..100 %": (-100.0, 100.0), "0..100 %": (0.0, 100.0)}
        deg = np.degrees(self.half_range)
        pairs = [ends.get(u, (-d, d)) for u, d in zip(self.units, deg, strict=True)]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    def speed(self, rad_per_s: np.ndarray, units: str) -> np.ndarray:
        """(J,) velocities given in rad/s, in ``units`` per second."""
        return np.asarray(rad_per_s, np.float64) / (np.abs(self.scale) if units == "lerobot" else 1.0)

    def spec(
        self,
        name: str,
        units: str,
        rad_per_s: np.ndarray,
        control_hz: float,
        cameras: Mapping[str, tuple[int, ...]] | None = None,
    ) -> RobotSpec:
        """The ``joint_position`` spec of these motors in ``units``, limited to their calibrated ranges:
        joints observed as :func:`feature_names` says, each camera's (H, W, 3) uint8 frames likewise."""
        cameras = dict(cameras or {})
        joints, image = feature_names(units)
        shapes = {joints: (len(self.names),), **{image.format(c): s for c, s in cameras.items()}}
        dtypes = {**dict.fromkeys(shapes, "uint8"), joints: "float32" if units == "lerobot" else "float64"}
        low, high = self.limits(units)
        return RobotSpec(
            name=name,
            action_mode="joint_position",
            action_names=self.names,
            action_low=low,
            action_high=high,
            joint_names=self.names,
            joint_low=low,
            joint_high=high,
            max_joint_velocity=self.speed(rad_per_s, units),
            control_hz=float(control_hz),
            obs_shapes=shapes,
            obs_dtypes=dtypes,
            cameras=tuple(cameras),
            units=units,
        )


def feature_names(units: str) -> tuple[str, str]:
    """(the joints' observation feature, the format of a camera's) in ``units``: ``joint_pos`` (rad) and
    ``<cam>_image``, or LeRobot's own names, ``state`` and ``<cam>``, as ``lerobot-record`` stores them."""
    return ("state", "{}") if units == "lerobot" else ("joint_pos", "{}_image")


@dataclasses.dataclass
class LeRobotArmConfig:
    """One LeRobot robot behind gipo-robot's :class:`~gipo_robot.hardware.robot.Robot`. Saved as JSON/TOML
    with ``type = "lerobot"``; ``robot`` holds LeRobot's fields."""

    robot: dict[str, Any]
    """LeRobot's robot config: its ``type`` (e.g. ``so101_follower``) and fields (``port``, ``id``,
    ``calibration_dir``, ``cameras``, ...), as ``lerobot-record --robot.*`` takes them."""
    control_hz: float = 30.0
    """Control rate, steps/s."""
    max_velocity: float | tuple[float, ...] | None = None
    """Joint velocity limit, rad/s (one for all or one per motor; None: half each servo model's no-load
    speed, :data:`NO_LOAD_SPEED`)."""
    health_check_every: int = 1
    """While torque is on, every this many ``observe`` calls read each servo's torque switch and hardware
    error register (LeRobot's reads ignore the error a servo reports); 0 never does."""
    name: str | None = None
    """Robot name in logs and errors (default ``lerobot:<type>:<id>``)."""
    units: str = "rad"
    """``"rad"``: observe ``joint_pos`` in rad and each camera as ``<cam>_image``; ``"lerobot"``: observe
    ``state``, LeRobot's own ``<motor>.pos`` values (float32, what ``lerobot-record`` stores as
    ``observation.state``), and each camera under LeRobot's name ``<cam>``, with joint limits and commands in
    LeRobot's units (the module doc), so LeRobot datasets and policies compose with the arm."""

    def __post_init__(self) -> None:
        if not isinstance(self.robot, Mapping) or not self.robot.get("type"):
            raise ValueError("LeRobotArmConfig.robot must be a table of LeRobot robot fields with a 'type'")
        self.robot = dict(self.robot)
        if not self.robot.get("id"):
            raise ValueError(
                "LeRobotArmConfig.robot.id is missing: the id LeRobot calibrated the arm under "
                "(its calibration file is <calibration_dir>/<id>.json)"
            )
        if not _is_number(self.control_hz) or not 0 < self.control_hz < math.inf:
            raise ValueError(
                f"LeRobotArmConfig.control_hz must be a finite number > 0, got {self.control_hz!r}"
            )
        every = self.health_check_every
        if not isinstance(every, int) or isinstance(every, bool) or every < 0:
            raise ValueError(f"LeRobotArmConfig.health_check_every must be an integer >= 0, got {every!r}")
        if self.units not in ("rad", "lerobot"):
            raise ValueError(f"LeRobotArmConfig.units must be 'rad' or 'lerobot', got {self.units!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"LeRobotArmConfig.name must be a string, got {self.name!r}")
        if self.name is None:
            self.name = f"lerobot:{self.robot['type']}:{self.robot['id']}"

    def velocity_limits(self, models: list[str]) -> np.ndarray:
        """(J,) rad/s for motors of these LeRobot model names.

        Raises:
            ValueError: a bad ``max_velocity``, or a model of unknown speed with none given.
        """
        value = self.max_velocity
        if value is None:
            unknown = sorted({m for m in models if m not in NO_LOAD_SPEED})
            if unknown:
                raise ValueError(
                    f"LeRobotArmConfig.max_velocity is needed: no known speed for servo model(s) {unknown}"
                )
            return np.array([0.5 * NO_LOAD_SPEED[m] for m in models])
        values = list(value) if isinstance(value, list | tuple) else [value]
        values = values * len(models) if len(values) == 1 else values
        if len(values) != len(models) or not all(_is_number(v) and 0 < v < math.inf for v in values):
            raise ValueError(
                f"LeRobotArmConfig.max_velocity must be > 0 rad/s (1 or {len(models)} numbers), got {value!r}"
            )
        return np.array(values, dtype=np.float64)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> LeRobotArmConfig:
        """Build from a robot config file's contents (``type = "lerobot"`` is dropped).

        Raises:
            ValueError: unknown or missing keys, or a bad value; the message names ``source`` and the key.
        """
        data = dict(cfg)
        data.pop("type", None)
        if "teleop" in data and "robot" not in data:
            raise ValueError(
                f"{source}: a LeRobot teleoperator config ('teleop'), not a robot: the operator's device "
                f"(record --device lerobot --teleop {source})"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(
                f"{source}: unknown key(s) {unknown} for a LeRobot robot; known: {sorted(fields)} "
                "(LeRobot's own fields go in the 'robot' table)"
            )
        if "robot" not in data:
            raise ValueError(f"{source}: missing key 'robot' (LeRobot's robot config, with its 'type')")
        try:
            return cls(**data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
