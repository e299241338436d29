"""A ROS arm's config (:class:`RosArmConfig`) and the JSON spellings that differ between ROS 1 and ROS 2.

Legend: ``J`` number of joints; positions in rad, velocities in rad/s, times in s.

Shared by :class:`~gipo_robot.hardware.ros_bridge.RosArm` and the virtual rosbridge
(:mod:`gipo_robot.hardware.emulators.virtual_rosbridge`). ROS 1 names a message type ``pkg/Type`` and
spells a ``time``/``duration`` ``{"secs", "nsecs"}``; ROS 2 names it ``pkg/msg/Type`` and spells it
``{"sec", "nanosec"}``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

#: Command message type (ROS 1 spelling) -> what the controller reads from it.
COMMAND_TYPES: dict[str, str] = {
    "trajectory_msgs/JointTrajectory": "one trajectory point with joint_names and time_from_start",
    "std_msgs/Float64MultiArray": "positions in joint_names order (the controller's joint order)",
}

#: ROS version -> the field names of a ``time``/``duration`` in JSON (ROS 1: secs/nsecs, ROS 2: sec/nanosec).
TIME_FIELDS: dict[int, tuple[str, str]] = {1: ("secs", "nsecs"), 2: ("sec", "nanosec")}


def ros1_type(name: str) -> str:
    """``pkg/msg/Type`` (ROS 2 spelling) -> ``pkg/Type``; ROS 1 names pass through."""
    parts = name.split("/")
    return f"{parts[0]}/{parts[2]}" if len(parts) == 3 and parts[1] == "msg" else name


def ros_time(seconds: float, ros_version: int) -> dict[str, int]:
    """Seconds -> a JSON ``time``/``duration`` for the given ROS version, e.g. ``{"secs": 1, "nsecs": 5}``."""
    sec_key, nsec_key = TIME_FIELDS[ros_version]
    whole = math.floor(seconds)
    return {sec_key: int(whole), nsec_key: round((seconds - whole) * 1e9) % 1_000_000_000}


def from_ros_time(value: dict[str, Any]) -> float:
    """A JSON ``time``/``duration`` of either ROS version -> seconds."""
    return float(value.get("secs", value.get("sec", 0))) + 1e-9 * float(
        value.get("nsecs", value.get("nanosec", 0))
    )


@dataclasses.dataclass
class RosArmConfig:
    """A ROS arm reached through rosbridge. Lists become tuples; every check names its field."""

    joint_names: tuple[str, ...]
    """The J joints, in observation/action order (for Float64MultiArray also the controller's order)."""
    joint_low: tuple[float, ...]
    """(J,) lower position limit, rad; normalised action -1."""
    joint_high: tuple[float, ...]
    """(J,) upper position limit, rad; normalised action +1."""
    max_joint_velocity: float | tuple[float, ...] = 1.0
    """Velocity limit, rad/s: one number for every joint or (J,). Times trajectories and homing."""
    host: str = "127.0.0.1"
    """rosbridge host."""
    port: int = 9090
    """rosbridge websocket port (``rosbridge_websocket.launch`` uses 9090)."""
    joint_state_topic: str = "/joint_states"
    """Topic of ``sensor_msgs/JointState``."""
    command_topic: str = "/arm_controller/command"
    """Topic the position command is published on."""
    command_type: str = "trajectory_msgs/JointTrajectory"
    """A key of :data:`COMMAND_TYPES`; the ROS 2 spelling ``pkg/msg/Type`` is accepted too."""
    ros_version: int = 1
    """1 or 2: picks the JSON spelling of times (secs/nsecs or sec/nanosec)."""
    control_hz: float = 20.0
    """Control steps per second (the caller paces; the arm does not sleep in ``act``)."""
    stale_after_s: float = 0.5
    """A JointState older than this is stale: ``observe`` raises, ``act`` refuses."""
    connect_timeout_s: float = 5.0
    """Longest wait for the websocket, and then for the first JointState, on ``connect``."""
    confirm_timeout_s: float = 2.0
    """Longest wait on ``disconnect`` for rosbridge to answer the round trip that proves it processed the
    hold (and every command before it) before the websocket closes; see ``RosArm._confirm_processed``."""
    reconnect_initial_s: float = 0.5
    """First delay before reconnecting after the websocket drops; doubles each failed try."""
    reconnect_max_s: float = 5.0
    """Longest delay between reconnection tries."""
    reconnect_budget_s: float = 30.0
    """How long the link may stay down before ``observe``/``act`` give up with a RobotError."""
    home: tuple[float, ...] | None = None
    """(J,) position ``reset`` moves to, rad, or None to start where the arm is."""
    home_tolerance: float = 0.05
    """Largest joint error, rad, at which ``reset`` counts home as reached."""
    name: str = "ros-arm"
    """Human-readable robot name (the spec's ``name``)."""

    def __post_init__(self) -> None:
        names = self.joint_names
        if isinstance(names, str) or not all(isinstance(j, str) and j for j in names):
            raise ValueError(f"RosArmConfig.joint_names must be a list of joint names, got {names!r}")
        self.joint_names = tuple(names)
        n = len(self.joint_names)
        if n == 0:
            raise ValueError("RosArmConfig.joint_names is empty")
        if len(set(self.joint_names)) != n:
            raise ValueError(f"RosArmConfig.joint_names has duplicates: {list(self.joint_names)}")
        self.joint_low = self._vector("joint_low", self.joint_low)
        self.joint_high = self._vector("joint_high", self.joint_high)
        bad = [
            j
            for j, lo, hi in zip(self.joint_names, self.joint_low, self.joint_high, strict=False)
            if hi <= lo
        ]
        if bad:
            raise ValueError(f"RosArmConfig.joint_high must exceed joint_low; not so for joints {bad}")
        vmax = self.max_joint_velocity
        if isinstance(vmax, int | float):
            vmax = [float(vmax)] * n
        self.max_joint_velocity = self._vector("max_joint_velocity", vmax)
        if min(self.max_joint_velocity) <= 0:
            raise ValueError(f"RosArmConfig.max_joint_velocity must be > 0, got {self.max_joint_velocity}")
        if not self.host:
            raise ValueError("RosArmConfig.host is empty")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"RosArmConfig.port must be an integer in 1..65535, got {self.port!r}")
        for field in ("joint_state_topic", "command_topic"):
            topic = getattr(self, field)
            if not isinstance(topic, str) or not topic.startswith("/"):
                raise ValueError(
                    f"RosArmConfig.{field} must be a topic name starting with '/', got {topic!r}"
                )
        if ros1_type(self.command_type) not in COMMAND_TYPES:
            raise ValueError(
                f"RosArmConfig.command_type {self.command_type!r} unknown; known: {', '.join(COMMAND_TYPES)}"
            )
        if self.ros_version not in TIME_FIELDS:
            raise ValueError(f"RosArmConfig.ros_version must be 1 or 2, got {self.ros_version!r}")
        for field in (
            "control_hz",
            "stale_after_s",
            "connect_timeout_s",
            "confirm_timeout_s",
            "reconnect_initial_s",
            "reconnect_max_s",
            "reconnect_budget_s",
            "home_tolerance",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"RosArmConfig.{field} must be a finite number > 0, got {value!r}")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError(
                f"RosArmConfig.reconnect_max_s ({self.reconnect_max_s}) must be >= reconnect_initial_s "
                f"({self.reconnect_initial_s})"
            )
        if self.home is not None:
            self.home = self._vector("home", self.home)
            outside = [
                j
                for j, h, lo, hi in zip(
                    self.joint_names, self.home, self.joint_low, self.joint_high, strict=False
                )
                if not lo <= h <= hi
            ]
            if outside:
                raise ValueError(f"RosArmConfig.home is outside joint_low..joint_high for joints {outside}")

    def _vector(self, field: str, value: Any) -> tuple[float, ...]:
        try:
            if isinstance(value, str) or any(isinstance(v, str | bool) for v in value):
                raise TypeError(value)
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"RosArmConfig.{field} must be a list of numbers, got {value!r}") from err
        if len(out) != len(self.joint_names):
            raise ValueError(
                f"RosArmConfig.{field} has {len(out)} values for {len(self.joint_names)} joint_names"
            )
        if not all(math.isfinite(v) for v in out):
            raise ValueError(f"RosArmConfig.{field} must be finite, got {list(out)}")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> RosArmConfig:
        """Build from a parsed JSON/TOML robot config; a ``type`` key is ignored (it picked this backend).

        Raises:
            ValueError: unknown or missing keys, or a bad value; the message names ``source`` and the key.
        """
        data = {k: v for k, v in data.items() if k != "type"}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown} for a ros robot; known: {sorted(names)}")
        required = sorted(f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING)
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"{source}: missing keys {missing} for a ros robot")
        try:
            return cls(**data)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from err
