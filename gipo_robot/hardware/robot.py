"""The one interface every arm implements (robosuite, serial servo bus, ROS), and its :class:`RobotSpec`.

Legend: ``A`` action size, ``J`` number of joints.

Actions. A :class:`Robot` takes the policy's *normalised* action, a (A,) float vector in [-1, 1] (the
same space the policy is trained in and the store records). The spec says what it means physically:
``spec.to_physical(a)`` maps -1 to ``action_low`` and +1 to ``action_high``. The action modes:

- ``joint_position``: absolute joint targets in rad (servo arms; the gripper is a joint too);
- ``joint_delta``: joint target changes per control step, rad/step (robosuite's JOINT_POSITION controller);
- ``ee_delta``: end-effector pose deltas per control step (dx, dy, dz in m, drx, dry, drz in rad), then
  the gripper (-1 open, +1 close) — robosuite's OSC default.

Observations are a dict of named features with the same names the Zarr store records as ``obs.<name>``
and the sim env returns (``robot0_joint_pos``, ``robot0_eef_pos``, ... for simulated Pandas; ``joint_pos``
and ``joint_vel`` for servo arms; ``<camera>_image`` for cameras).

Lifecycle: ``connect`` -> ``reset`` -> (``observe``, ``act``)* -> ``disconnect``. ``act`` returns the
normalised command actually sent (after any clamping the backend did), so what is recorded is what moved
the arm. Use a robot as a context manager: leaving the block — normally, by exception, by Ctrl-C —
calls :meth:`Robot.hold` and then disconnects, so the arm is always left safe. Every robot a user drives
sits behind :class:`gipo_robot.hardware.safety.SafetyGuard` (sim included, so sim and real behave alike).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np

#: Action mode -> what the physical command means.
ACTION_MODES: dict[str, str] = {
    "joint_position": "absolute joint targets (rad; gripper joint in its own unit)",
    "joint_delta": "joint target change per control step (rad/step)",
    "ee_delta": "end-effector pose delta per control step (m, rad) then gripper (-1 open, +1 close)",
}

#: Joint units -> what they are. A store, a policy and a robot compose only in the same units.
JOINT_UNITS: dict[str, str] = {
    "rad": "joint positions in rad (every backend's default)",
    "lerobot": "LeRobot's own value of each motor (degrees, -100..100 % or 0..100 %), as lerobot-record "
    "stores it: the observation 'state' and the physical joint_position command",
}


@dataclasses.dataclass(frozen=True)
class TaskStatus:
    """What a robot knows about the task after its last action (simulators know; real arms usually do not)."""

    reward: float = 0.0
    success: bool = False
    terminated: bool = False
    """The episode ended by the task's rules (e.g. success with ``end_on_success``)."""
    truncated: bool = False
    """The episode hit its time limit."""

    @property
    def done(self) -> bool:
        """terminated or truncated."""
        return self.terminated or self.truncated


class RobotError(RuntimeError):
    """A robot could not do what was asked (not connected, no reply, wrong model, bad config)."""


def _vector(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"RobotSpec.{name} must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"RobotSpec.{name} must be finite, got {arr.tolist()}")
    return arr


@dataclasses.dataclass(frozen=True)
class RobotSpec:
    """What a robot's observations and actions mean; readable without connecting.

    All arrays are float64 numpy arrays; ``to_dict``/``from_dict`` round-trip through JSON.
    """

    name: str
    """Human-readable robot name, e.g. ``"sim:Lift"`` or ``"so100-follower"``."""
    action_mode: str
    """A key of :data:`ACTION_MODES`."""
    action_names: tuple[str, ...]
    """Name of each action dimension, e.g. ``("dx", ..., "gripper")`` or the joint names."""
    action_low: np.ndarray
    """(A,) physical command at normalised action -1."""
    action_high: np.ndarray
    """(A,) physical command at normalised action +1."""
    joint_names: tuple[str, ...]
    """The J joints, in observation order."""
    joint_low: np.ndarray
    """(J,) lower position limit, rad (``units == "lerobot"``: LeRobot's unit of each motor)."""
    joint_high: np.ndarray
    """(J,) upper position limit, in the same units."""
    max_joint_velocity: np.ndarray
    """(J,) velocity limit, rad/s (``units == "lerobot"``: LeRobot's units per second)."""
    control_hz: float
    """Control steps per second."""
    obs_shapes: dict[str, tuple[int, ...]]
    """Observation feature name -> shape."""
    obs_dtypes: dict[str, str]
    """Observation feature name -> numpy dtype name."""
    cameras: tuple[str, ...] = ()
    """Camera names; each adds an ``<name>_image`` observation (``units == "lerobot"``: ``<name>``)."""
    workspace_low: np.ndarray | None = None
    """(3,) lower corner of the allowed end-effector box in m (``ee_delta`` mode), or None for no box."""
    workspace_high: np.ndarray | None = None
    """(3,) upper corner of the allowed end-effector box in m, or None."""
    eef_feature: str | None = None
    """Observation feature holding the end-effector position (3,) m, for the workspace check."""
    units: str = "rad"
    """A key of :data:`JOINT_UNITS`: what the joint positions, joint limits and ``joint_position`` commands
    are measured in."""

    def __post_init__(self) -> None:
        if self.units not in JOINT_UNITS:
            raise ValueError(f"RobotSpec.units {self.units!r} unknown; known: {', '.join(JOINT_UNITS)}")
        if self.action_mode not in ACTION_MODES:
            raise ValueError(
                f"RobotSpec.action_mode {self.action_mode!r} unknown; known: {', '.join(ACTION_MODES)}"
            )
        a, j = len(self.action_names), len(self.joint_names)
        if a == 0:
            raise ValueError("RobotSpec.action_names is empty")
        object.__setattr__(self, "action_names", tuple(self.action_names))
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "action_low", _vector(self.action_low, a, "action_low"))
        object.__setattr__(self, "action_high", _vector(self.action_high, a, "action_high"))
        if np.any(self.action_high <= self.action_low):
            raise ValueError("RobotSpec.action_high must exceed action_low in every dimension")
        object.__setattr__(self, "joint_low", _vector(self.joint_low, j, "joint_low"))
        object.__setattr__(self, "joint_high", _vector(self.joint_high, j, "joint_high"))
        if np.any(self.joint_high <= self.joint_low):
            raise ValueError("RobotSpec.joint_high must exceed joint_low for every joint")
        object.__setattr__(
            self, "max_joint_velocity", _vector(self.max_joint_velocity, j, "max_joint_velocity")
        )
        if np.any(self.max_joint_velocity <= 0):
            raise ValueError("RobotSpec.max_joint_velocity must be > 0 for every joint")
        if not 0 < self.control_hz < np.inf:  # NaN fails too
            raise ValueError(f"RobotSpec.control_hz must be a finite number > 0, got {self.control_hz}")
        object.__setattr__(
            self, "obs_shapes", {k: tuple(int(d) for d in v) for k, v in self.obs_shapes.items()}
        )
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError("RobotSpec.workspace_low and workspace_high must be given together")
        if self.workspace_low is not None:
            object.__setattr__(self, "workspace_low", _vector(self.workspace_low, 3, "workspace_low"))
            object.__setattr__(self, "workspace_high", _vector(self.workspace_high, 3, "workspace_high"))
            if self.eef_feature is None:
                raise ValueError(
                    "RobotSpec.eef_feature must name the end-effector position when a workspace is set"
                )

    @property
    def action_dim(self) -> int:
        """A, the action size."""
        return len(self.action_names)

    @property
    def n_joints(self) -> int:
        """J, the number of joints."""
        return len(self.joint_names)

    @property
    def period(self) -> float:
        """One control period in seconds."""
        return 1.0 / self.control_hz

    def to_physical(self, action: np.ndarray) -> np.ndarray:
        """Normalised (..., A) action in [-1, 1] -> physical command (..., A)."""
        return self.action_low + (np.asarray(action, dtype=np.float64) + 1.0) * 0.5 * (
            self.action_high - self.action_low
        )

    def to_normalized(self, command: np.ndarray) -> np.ndarray:
        """Physical (..., A) command -> normalised action (..., A); the inverse of :meth:`to_physical`."""
        return (
            2.0
            * (np.asarray(command, dtype=np.float64) - self.action_low)
            / (self.action_high - self.action_low)
            - 1.0
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            elif field.name == "obs_shapes":
                value = {k: list(v) for k, v in value.items()}
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobotSpec:
        """Inverse of :meth:`to_dict`; unknown or missing keys are errors that name them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"RobotSpec: unknown keys {unknown}; known: {sorted(names)}")
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"RobotSpec: missing keys {missing}")
        return cls(**data)


class Robot(abc.ABC):
    """One arm (simulated or real). Subclasses implement the five abstract methods; see the module doc."""

    @property
    @abc.abstractmethod
    def spec(self) -> RobotSpec:
        """The robot's :class:`RobotSpec`; available before :meth:`connect`."""

    @property
    def is_connected(self) -> bool:
        """Whether :meth:`connect` succeeded and :meth:`disconnect` has not run."""
        return getattr(self, "_connected", False)

    def connect(self) -> None:
        """Open the connection (port, socket, simulator). Idempotent."""
        if not self.is_connected:
            self._connect()
            self._connected = True

    def disconnect(self) -> None:
        """Leave the arm safe (see :meth:`hold`) and close the connection. Idempotent, never raises for a
        robot that is already gone."""
        if self.is_connected:
            try:
                self.hold()
            finally:
                self._connected = False
                self._disconnect()

    def _require_connected(self) -> None:
        if not self.is_connected:
            raise RobotError(
                f"{self.spec.name}: not connected; call connect() or use the robot as a context manager"
            )

    @abc.abstractmethod
    def _connect(self) -> None:
        """Backend-specific connection."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Backend-specific release; must not raise if the link is already broken."""

    @abc.abstractmethod
    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode: reset the scene (sim) or move home (real). Returns the first observation."""

    @abc.abstractmethod
    def observe(self) -> dict[str, np.ndarray]:
        """The latest observation, features named as in ``spec.obs_shapes``."""

    @abc.abstractmethod
    def act(self, action: np.ndarray) -> np.ndarray:
        """Send one normalised (A,) action; returns the normalised command actually sent."""

    def task_status(self) -> TaskStatus | None:
        """Reward/success/done after the last :meth:`act`, where the backend knows them (sim); else None."""
        return None

    def hold(self) -> None:
        """Keep the arm where it is (hold the current position).

        The default does nothing, which is right for a simulator: it does not move between steps.
        """
        return None

    def close(self) -> None:
        """Disconnect (leaving the arm held) and free what the robot owns, e.g. a simulator's env.

        The default only disconnects; backends that own more override it, and wrappers close what they wrap.
        """
        self.disconnect()

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
