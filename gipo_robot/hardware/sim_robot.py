"""A robosuite task behind the :class:`~gipo_robot.hardware.robot.Robot` interface.

``SimRobot`` is how the recorder, ``deploy`` and the safety guard drive simulation through the same code
path as a real arm: ``act`` is one control step of the env. The control rate is the env's (20 Hz by
default) but nothing sleeps here — pacing belongs to the caller's loop, so sim can also run faster than
real time. The env's task knowledge (reward, success, episode end) is exposed via :meth:`task_status`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec, TaskStatus

#: sim action mode -> Robot action mode (robosuite's JOINT_POSITION controller takes per-step deltas).
_MODES = {"osc_delta": "ee_delta", "joint_position": "joint_delta"}

#: Panda joint velocity limits, rad/s (Franka datasheet), used when the model carries none.
PANDA_MAX_JOINT_VELOCITY = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])


def spec_from_env(env: Any, name: str | None = None) -> RobotSpec:
    """Build a :class:`RobotSpec` from a :class:`~gipo_robot.sim.robosuite_env.RobosuiteEnv`.

    The workspace box is the table top's footprint from the table surface to 0.5 m above it.
    """
    sim_spec = env.sim_spec
    rs = env.robosuite_env
    robot = rs.robots[0]
    joint_range = np.asarray(rs.sim.model.jnt_range[robot.joint_indexes], dtype=np.float64)
    n = len(robot.joint_indexes)
    vmax = PANDA_MAX_JOINT_VELOCITY[:n] if n <= 7 else np.full(n, 2.0)
    table = np.asarray(getattr(rs, "table_offset", (0.0, 0.0, 0.8)), dtype=np.float64)
    size = np.asarray(getattr(rs, "table_full_size", (0.8, 0.8, 0.05)), dtype=np.float64)
    return RobotSpec(
        name=name or f"sim:{sim_spec.task}",
        action_mode=_MODES[sim_spec.action_mode],
        action_names=sim_spec.action_names,
        action_low=sim_spec.action_low,
        action_high=sim_spec.action_high,
        joint_names=tuple(robot.robot_joints),
        joint_low=joint_range[:, 0],
        joint_high=joint_range[:, 1],
        max_joint_velocity=vmax,
        control_hz=sim_spec.control_hz,
        obs_shapes=dict(sim_spec.obs_shapes),
        obs_dtypes=dict(sim_spec.obs_dtypes),
        cameras=sim_spec.cameras,
        workspace_low=np.array([table[0] - size[0] / 2, table[1] - size[1] / 2, table[2]]),
        workspace_high=np.array([table[0] + size[0] / 2, table[1] + size[1] / 2, table[2] + 0.5]),
        eef_feature="robot0_eef_pos",
    )


class SimRobot(Robot):
    """A robosuite env as a Robot.

    Args:
        task: Task name (``Lift``, ``Can``, ...); ignored when ``env`` is given.
        env: An existing :class:`~gipo_robot.sim.robosuite_env.RobosuiteEnv` to wrap (the robot closes it).
        **env_kwargs: Passed to :func:`gipo_robot.sim.make_env` (``seed``, ``cameras``, ``image_size``, ...).
    """

    def __init__(self, task: str = "Lift", *, env: Any = None, **env_kwargs: Any) -> None:
        if env is None:
            from gipo_robot.sim import make_env

            env = make_env(task, **env_kwargs)
        self.env = env
        self._spec = spec_from_env(env)
        self._obs: dict[str, np.ndarray] | None = None
        self._status: TaskStatus | None = None

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def close(self) -> None:
        """Disconnect and free the simulator."""
        self.disconnect()
        self.env.close()

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        self._require_connected()
        self._obs, info = self.env.reset(seed=seed)
        self._status = TaskStatus()
        self.last_info = info
        return self._obs

    def observe(self) -> dict[str, np.ndarray]:
        self._require_connected()
        if self._obs is None:
            raise RobotError(f"{self.spec.name}: observe() before reset()")
        return self._obs

    def act(self, action: np.ndarray) -> np.ndarray:
        self._require_connected()
        if self._status is None:
            raise RobotError(f"{self.spec.name}: act() before reset()")
        if self._status.done:
            raise RobotError(f"{self.spec.name}: the episode has ended; call reset()")
        sent = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self._obs, reward, terminated, truncated, info = self.env.step(sent)
        self._status = TaskStatus(float(reward), bool(info["success"]), bool(terminated), bool(truncated))
        self.last_info = info
        return sent

    def task_status(self) -> TaskStatus | None:
        return self._status
