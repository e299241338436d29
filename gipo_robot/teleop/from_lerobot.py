"""LeRobot's own teleoperators as gipo-robot teleop devices: leader arms (:class:`LeRobotLeader`) and
end-effector devices (:class:`LeRobotDeltaDevice`: ``keyboard_ee``, ``gamepad``).

Legend: ``J`` leader motors (one per joint, the gripper included), ``A`` the follower's action size.

A teleoperator config ``{"type": "lerobot", "teleop": {"type": "so101_leader", "port": "/dev/ttyACM1",
"id": "my_leader"}}`` holds LeRobot's own fields under ``teleop`` (decoded by LeRobot's config class of that
type, as :mod:`gipo_robot.hardware.lerobot_config` describes; its calibration is the file
``lerobot-calibrate --teleop.*`` wrote). By what LeRobot's teleoperator reports:

- ``<motor>.pos`` on one motor bus (``so100_leader``, ``so101_leader``, ``koch_leader``, ``omx_leader``): a
  leader arm. :class:`LeRobotLeader` reads it in its follower's units: rad (the units of
  :class:`~gipo_robot.hardware.lerobot_config.JointUnits`, the same as a LeRobot follower's), or LeRobot's
  own values for a follower whose spec has ``units == "lerobot"`` (leader -100..100 % onto follower
  -100..100 %, as ``lerobot-record`` maps them). It is the leader of
  :class:`~gipo_robot.teleop.leader.LeaderArmDevice`, which maps it onto any ``joint_position`` follower
  (``gipo-robot record --device leader --leader leader.json``, or ``--device lerobot --teleop``).
- ``delta_x``, ``delta_y``, ``delta_z`` and optionally ``gripper`` (``keyboard_ee``, ``gamepad``):
  :class:`LeRobotDeltaDevice` drives an ``ee_delta`` follower: each delta in [-1, 1] is the normalised
  ``dx``/``dy``/``dz`` action, rotations stay 0, LeRobot's gripper command 0/1/2 (close/stay/open) becomes
  +1/previous/-1. LeRobot's teleop events become the recorder's: success -> ``save_success``, re-record ->
  ``discard``, terminate -> ``save_failure``. Episodes start by themselves.
- LeRobot's plain ``keyboard`` reports the keys held, which mean no action: refused, naming the two above
  and gipo-robot's own ``--device keyboard`` (a terminal, no display needed).

Faults of LeRobot's bus or device become :class:`~gipo_robot.teleop.devices.TeleopError` (the recorder then
holds the follower and commits the episode).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.hardware.from_lerobot import (
    connect_calibrated,
    lerobot_faults,
    motor_bus,
    release,
    require_calibration,
)
from gipo_robot.hardware.lerobot_config import NO_LOAD_SPEED, JointUnits, make_lerobot
from gipo_robot.hardware.robot import RobotError, RobotSpec
from gipo_robot.teleop.devices import DeviceCommand, TeleopDevice, TeleopError

__all__ = ["LeRobotDeltaDevice", "LeRobotLeader", "lerobot_device", "read_teleop_config"]

#: LeRobot's end-effector delta keys -> the ``ee_delta`` action dimension they drive.
DELTA_KEYS = {"delta_x": "dx", "delta_y": "dy", "delta_z": "dz"}
#: LeRobot's gripper command (0 close, 1 stay, 2 open) -> gipo-robot's (+1 close, -1 open; None: stay).
GRIPPER_COMMANDS = {0: 1.0, 1: None, 2: -1.0}


def read_teleop_config(path: str | Path) -> dict[str, Any] | None:
    """The ``teleop`` table of a LeRobot teleoperator config file, or None for any other robot config.

    Raises:
        ValueError: the file cannot be read (from :func:`~gipo_robot.hardware.config.read_robot_config`),
            or a LeRobot teleoperator config with other keys.
    """
    from gipo_robot.hardware.config import read_robot_config

    cfg = read_robot_config(path)
    if cfg.get("type") != "lerobot" or "teleop" not in cfg:
        return None
    extra = sorted(set(cfg) - {"type", "teleop"})
    if extra:
        raise ValueError(f"{path}: unknown key(s) {extra} for a LeRobot teleoperator; known: teleop, type")
    return cfg["teleop"]


class LeRobotLeader:
    """A LeRobot leader arm, read in rad: the leader of :class:`~gipo_robot.teleop.leader.LeaderArmDevice`.

    Args:
        device: LeRobot's teleoperator (not connected, its calibration loaded).
        kind_type: Its LeRobot type, e.g. ``so101_leader``.
        source: The config file, named in errors.
        units: What :meth:`read_positions` returns: ``"rad"``, or ``"lerobot"`` (LeRobot's own values); the
            follower's ``spec.units``.

    Raises:
        ValueError: no single motor bus, features other than ``<motor>.pos``, or no calibration file.
    """

    def __init__(self, device: Any, kind_type: str, source: str, units: str = "rad") -> None:
        self.device = device
        self.bus = motor_bus(device, source)
        require_calibration(device, "teleop", kind_type, source)
        self.units = JointUnits.of_bus(self.bus, device.calibration, source)
        self.joint_units = units
        speed = np.array([0.5 * NO_LOAD_SPEED.get(m.model, 2.0) for m in self.bus.motors.values()])
        self.spec = self.units.spec(f"lerobot:{kind_type}:{device.id}", units, speed, 30.0)
        """What the leader reads (its joints in ``units``); it takes no actions."""
        self._where = f"{self.spec.name} on {self.bus.port}"

    @classmethod
    def from_config(cls, table: Any, source: str, units: str = "rad") -> LeRobotLeader:
        """Build from the ``teleop`` table of a config file (see :func:`read_teleop_config`), reading in
        ``units`` (the follower's).

        Raises:
            ValueError: LeRobot missing, an unknown type, a bad field, not a calibrated leader arm.
        """
        return cls(make_lerobot("teleop", table, source), table["type"], source, units)

    def connect(self) -> None:
        """Open the port (calibration written where the servos differ, no prompt) and run LeRobot's
        ``configure`` for the leader (torque off, so a hand moves it).

        Raises:
            RobotError: the port, a servo or a transaction fails.
        """
        try:
            connect_calibrated(self.device, self.bus, self._where, hold=False)
        except BaseException:
            release(self.device, self.bus, self._where)
            raise

    def disconnect(self) -> None:
        """Close the port (leaving the torque as LeRobot's ``configure`` set it); never raises."""
        release(self.device, self.bus, self._where)

    def read_positions(self) -> np.ndarray:
        """(J,) joint positions in the leader's units (rad, or LeRobot's values), from LeRobot's
        ``get_action``.

        Raises:
            RobotError: the read failed.
        """
        with lerobot_faults(self._where, "reading the leader"):
            return self.units.read(self.device.get_action(), self.joint_units)

    def torque(self, enabled: bool) -> None:
        """On: every servo holds. Off: LeRobot's own leader setup (``configure``: torque off, except what
        LeRobot keeps on, e.g. a Koch leader's gripper trigger)."""
        with lerobot_faults(self._where, f"switching torque {'on' if enabled else 'off'}"):
            if enabled:
                self.bus.enable_torque()
            else:
                self.device.configure()


class LeRobotDeltaDevice(TeleopDevice):
    """A LeRobot end-effector teleoperator (``keyboard_ee``, ``gamepad``) driving an ``ee_delta`` follower.

    Args:
        device: LeRobot's teleoperator (not connected).
        follower_spec: The follower's spec; its action mode must be ``ee_delta`` with ``dx``/``dy``/``dz``.
        source: The config file, named in errors.

    Raises:
        TeleopError: the follower does not take end-effector deltas.
    """

    labels_episodes = True

    def __init__(self, device: Any, follower_spec: RobotSpec, source: str) -> None:
        names = follower_spec.action_names
        if follower_spec.action_mode != "ee_delta" or not set(DELTA_KEYS.values()) <= set(names):
            raise TeleopError(
                f"{source}: LeRobot's {device.name} gives end-effector deltas; {follower_spec.name} takes "
                f"{follower_spec.action_mode} actions ({', '.join(names)}); a leader arm gives joint targets"
            )
        self.device = device
        self.spec = follower_spec
        self.name = f"lerobot:{device.name}"
        self._source = source
        self._index = {key: names.index(dim) for key, dim in DELTA_KEYS.items()}
        self._gripper = names.index("gripper") if "gripper" in names else None
        self._grip = -1.0  # open
        self._recording = False

    def start(self) -> None:
        try:
            self.device.connect()
        except Exception as err:  # a missing pygame/hidapi, no gamepad, no display for pynput
            raise TeleopError(f"{self._source}: LeRobot's {self.device.name} cannot start: {err}") from err
        if not self.device.is_connected:
            raise TeleopError(
                f"{self._source}: LeRobot's {self.device.name} cannot read input here (pynput needs an X11 "
                "session, Windows or macOS, not a headless machine); use --device keyboard, which reads "
                "the terminal"
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.device.is_connected:
                self.device.disconnect()

    def begin_episode(self, observation: Mapping[str, np.ndarray]) -> None:
        self._recording = True

    def end_episode(self) -> None:
        self._recording = False

    def poll(self) -> DeviceCommand:
        try:
            raw = self.device.get_action()
            events = self.device.get_teleop_events() if self._recording else {}
        except Exception as err:
            raise TeleopError(f"{self._source}: LeRobot's {self.device.name} failed: {err}") from err
        action = np.zeros(self.spec.action_dim)
        for key, index in self._index.items():
            action[index] = float(raw.get(key, 0.0))
        grip = GRIPPER_COMMANDS.get(int(raw.get("gripper", 1)))
        self._grip = self._grip if grip is None else grip
        if self._gripper is not None:
            action[self._gripper] = self._grip
        return DeviceCommand(np.clip(action, -1.0, 1.0), self._events(events))

    def _events(self, events: Mapping[Any, Any]) -> tuple[str, ...]:
        if not self._recording:
            return ("start",)
        flags = {getattr(k, "value", k): bool(v) for k, v in events.items()}
        if flags.get("success"):
            return ("save_success",)
        if flags.get("rerecord_episode"):
            return ("discard",)
        if flags.get("terminate_episode"):
            return ("save_failure",)
        return ()

    def help(self) -> str:
        return f"{self.name}: LeRobot's controls move the end effector; its success/re-record/stop keys label"


def lerobot_device(
    follower_spec: RobotSpec,
    *,
    teleop: str | Path,
    mapping: Any = None,
    events: TeleopDevice | None = None,
) -> TeleopDevice:
    """The teleop device for a LeRobot teleoperator config file (see the module doc).

    Args:
        follower_spec: The follower robot's spec.
        teleop: The teleoperator config file (``{"type": "lerobot", "teleop": {...}}``).
        mapping: A leader arm's joint mapping (a :class:`~gipo_robot.teleop.leader.JointMapping` or a file).
        events: A device whose events are merged into a leader arm's (a keyboard).

    Raises:
        TeleopError: not a LeRobot teleoperator config, or one that does not fit the follower.
        ValueError: a bad config (LeRobot missing, an unknown type, a bad field; naming the file and key).
    """
    from gipo_robot.teleop.leader import LeaderArmDevice

    source = str(teleop)
    table = read_teleop_config(teleop)
    if table is None:
        raise TeleopError(f"{source}: not a LeRobot teleoperator config (type 'lerobot', a 'teleop' table)")
    device = make_lerobot("teleop", table, source)
    features = device.action_features
    names = features.get("names", {}) if "names" in features else features
    if set(DELTA_KEYS) <= set(names):
        return LeRobotDeltaDevice(device, follower_spec, source)
    if getattr(device, "bus", None) is None:
        raise TeleopError(
            f"{source}: LeRobot's {device.name} reports {sorted(names)}, which map to no action; use a "
            "leader arm (so101_leader, koch_leader, ...), keyboard_ee or gamepad, or gipo-robot's own "
            "--device keyboard"
        )
    try:
        leader = LeRobotLeader(device, table["type"], source, follower_spec.units)
    except (ValueError, RobotError) as err:
        raise TeleopError(str(err)) from err
    return LeaderArmDevice.from_options(follower_spec, leader=leader, mapping=mapping, events=events)
