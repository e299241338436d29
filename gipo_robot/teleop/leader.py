"""Leader-arm teleoperation: a second (leader) servo arm, moved by hand, mirrored onto the follower.

Legend: ``J`` follower joints (= its action size in ``joint_position`` mode), ``L`` leader joints.

Each poll reads the leader's joint positions (rad, torque off so it moves freely; calibrated by the
hardware layer's servo config, like the follower's) and maps them onto follower joint targets with a
:class:`JointMapping`::

    target[i] = sign[i] * leader_q[index[i]] + offset[i]        (rad)

clipped to the follower's joint limits and normalised with ``follower_spec.to_normalized``. Two arms of
the same model (SO-100 leader/follower pairs) use the identity mapping. The leader gives no events; pass
a keyboard as ``events=`` for them (``gipo-robot record`` does when standard input is a terminal).
Without one, episodes start by themselves and end at the session's time limit (``--max-seconds``).
"""

from __future__ import annotations

import contextlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.hardware.robot import Robot, RobotSpec
from gipo_robot.teleop.devices import DeviceCommand, TeleopDevice, TeleopError, merge_events


@dataclass(frozen=True)
class JointMapping:
    """Leader joints -> follower joint targets: ``target[i] = sign[i] * leader_q[index[i]] + offset[i]``.

    Attributes:
        index: (J,) leader joint feeding each follower joint.
        sign: (J,) +1 or -1 (a joint mounted mirrored on the other arm).
        offset: (J,) rad added after the sign (different zero positions).
    """

    index: tuple[int, ...]
    sign: tuple[float, ...]
    offset: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.index)
        if n == 0:
            raise ValueError("JointMapping.index is empty")
        for name in ("sign", "offset"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"JointMapping.{name} has {len(getattr(self, name))} entries, index has {n}")
        if any(s not in (1.0, -1.0) for s in self.sign):
            raise ValueError(f"JointMapping.sign entries must be +1 or -1, got {list(self.sign)}")
        if not np.all(np.isfinite(self.offset)):
            raise ValueError(f"JointMapping.offset must be finite, got {list(self.offset)}")
        if any(i < 0 for i in self.index):
            raise ValueError(f"JointMapping.index entries must be >= 0, got {list(self.index)}")

    @classmethod
    def identity(cls, n: int) -> JointMapping:
        """Follower joint i follows leader joint i."""
        return cls(tuple(range(n)), (1.0,) * n, (0.0,) * n)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], n: int, source: str = "<dict>") -> JointMapping:
        """From ``{"index": [...], "sign": [...], "offset": [...]}``; missing keys default to the identity.

        Raises:
            ValueError: unknown keys or bad values (naming ``source`` and the key).
        """
        unknown = sorted(set(data) - {"index", "sign", "offset"})
        if unknown:
            raise ValueError(f"{source}: unknown joint-mapping keys {unknown}; known: index, sign, offset")
        try:
            index = tuple(int(i) for i in data.get("index", range(n)))
            size = len(index)
            return cls(
                index,
                tuple(float(s) for s in data.get("sign", [1.0] * size)),
                tuple(float(o) for o in data.get("offset", [0.0] * size)),
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: bad joint mapping: {err}") from None

    @classmethod
    def load(cls, path: str | Path, n: int) -> JointMapping:
        """Read a mapping from a ``.json`` or ``.toml`` file (the keys of :meth:`from_dict`)."""
        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the joint mapping: {err}") from None
        return cls.from_dict(data, n, source=str(path))

    def apply(self, leader_q: np.ndarray) -> np.ndarray:
        """(L,) leader positions, rad -> (J,) follower targets, rad."""
        q = np.asarray(leader_q, dtype=np.float64)
        return np.asarray(self.sign) * q[list(self.index)] + np.asarray(self.offset)


class LeaderArmDevice(TeleopDevice):
    """Mirror a leader arm onto a ``joint_position`` follower; see the module docstring.

    Args:
        leader: the leader arm, a :class:`~gipo_robot.hardware.robot.Robot` with ``read_positions()``
            and ``torque(enabled)`` (a :class:`~gipo_robot.hardware.serial_bus.SerialArm`); the device
            connects it, turns its torque off, and disconnects it on :meth:`close`.
        follower_spec: the follower's spec (action mode ``joint_position``).
        mapping: leader -> follower joints; None is the identity (the arms must have equal joint counts).
        events: a device (keyboard) whose events are merged in; its actions are ignored.

    Raises:
        TeleopError: the follower is not in ``joint_position`` mode, or the mapping does not fit the arms.
    """

    name = "leader"

    def __init__(
        self,
        leader: Robot,
        follower_spec: RobotSpec,
        mapping: JointMapping | None = None,
        *,
        events: TeleopDevice | None = None,
    ) -> None:
        if follower_spec.action_mode != "joint_position":
            raise TeleopError(
                f"a leader arm drives absolute joint targets; {follower_spec.name} uses action mode "
                f"{follower_spec.action_mode!r} (use --device keyboard or spacemouse)"
            )
        for method in ("read_positions", "torque"):
            if not callable(getattr(leader, method, None)):
                raise TeleopError(f"leader arm {type(leader).__name__} has no {method}() (use a servo arm)")
        if leader.spec.units != follower_spec.units:
            raise TeleopError(
                f"leader {leader.spec.name} reads joints in {leader.spec.units!r} units, follower "
                f"{follower_spec.name} takes {follower_spec.units!r}: use a leader in the follower's units "
                "(a LeRobot teleoperator config follows its follower's units by itself)"
            )
        n_leader, n_follower = leader.spec.n_joints, follower_spec.action_dim
        if mapping is None:
            if n_leader != n_follower:
                raise TeleopError(
                    f"leader {leader.spec.name} has {n_leader} joints, follower {follower_spec.name} "
                    f"{n_follower}: give a joint mapping (--leader-map)"
                )
            mapping = JointMapping.identity(n_follower)
        if len(mapping.index) != n_follower:
            raise TeleopError(
                f"joint mapping has {len(mapping.index)} entries, the follower has {n_follower} joints"
            )
        if max(mapping.index) >= n_leader:
            raise TeleopError(
                f"joint mapping reads leader joint {max(mapping.index)}, the leader has {n_leader} joints"
            )
        self.leader = leader
        self.spec = follower_spec
        self.mapping = mapping
        self.events = events
        self._recording = False

    @classmethod
    def from_options(
        cls,
        follower_spec: RobotSpec,
        *,
        leader: str | Robot,
        mapping: str | Path | JointMapping | None = None,
        events: TeleopDevice | None = None,
    ) -> LeaderArmDevice:
        """Build from a leader robot config (``load_robot`` spec string or a Robot; a LeRobot teleoperator
        config ``{"type": "lerobot", "teleop": {...}}`` is read by
        :class:`~gipo_robot.teleop.from_lerobot.LeRobotLeader`) and a mapping file."""
        if isinstance(leader, str):
            from gipo_robot.hardware.config import load_robot
            from gipo_robot.teleop.from_lerobot import LeRobotLeader, read_teleop_config

            table = read_teleop_config(leader)
            if table is None:
                leader = load_robot(leader)
            else:
                leader = LeRobotLeader.from_config(table, leader, follower_spec.units)
        if mapping is not None and not isinstance(mapping, JointMapping):
            mapping = JointMapping.load(mapping, follower_spec.action_dim)
        return cls(leader, follower_spec, mapping, events=events)

    def start(self) -> None:
        self.leader.connect()
        self.leader.torque(False)
        if self.events is not None:
            self.events.start()

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        with contextlib.suppress(Exception):  # a leader that is already gone has nothing to release
            self.leader.disconnect()

    def begin_episode(self, observation: Any) -> None:
        self._recording = True
        if self.events is not None:
            self.events.begin_episode(observation)

    def end_episode(self) -> None:
        self._recording = False

    def targets(self) -> np.ndarray:
        """(J,) follower joint targets now, rad, within the follower's joint limits."""
        q = np.asarray(self.leader.read_positions(), dtype=np.float64)
        return np.clip(self.mapping.apply(q), self.spec.joint_low, self.spec.joint_high)

    def poll(self) -> DeviceCommand:
        action = np.clip(self.spec.to_normalized(self.targets()), -1.0, 1.0)
        if self.events is None:  # no operator events: start by ourselves, the time limit ends episodes
            return DeviceCommand(action, () if self._recording else ("start",))
        return DeviceCommand(action, merge_events(self.events.poll()))

    @property
    def labels_episodes(self) -> bool:
        """With a keyboard for the event keys, the operator labels every episode (:class:`TeleopDevice`)."""
        return self.events is not None and self.events.labels_episodes

    def help(self) -> str:
        text = f"leader arm {self.leader.spec.name}: move it by hand; the follower mirrors it"
        return text + ("\n" + self.events.help() if self.events is not None else "")
