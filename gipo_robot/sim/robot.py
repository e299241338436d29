"""The simulator as a robot backend: a robosuite task behind the :class:`~gipo_robot.hardware.robot.Robot`
interface.

``SimRobot`` is how the recorder, ``deploy`` and the safety guard drive simulation through the same code
path as a real arm: ``act`` is one control step of the env, and ``spec`` is the env's ``robot_spec`` (the
same :class:`~gipo_robot.hardware.robot.RobotSpec` and action vocabulary as a real arm's). The control
rate is the env's (20 Hz by default) but nothing sleeps here — pacing belongs to the caller's loop, so sim
can also run faster than real time. The env's task knowledge (reward, success, episode end) is exposed
via :meth:`task_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec, TaskStatus
from gipo_robot.sim.robosuite_env import make_env

__all__ = ["SimRobot"]


class SimRobot(Robot):
    """A robosuite env as a Robot.

    Args:
        task: Task name (``Lift``, ``Can``, ...); ignored when ``env`` is given.
        env: An existing :class:`~gipo_robot.sim.robosuite_env.RobosuiteEnv` to wrap (the robot closes it).
        **env_kwargs: Passed to :func:`~gipo_robot.sim.robosuite_env.make_env` (``seed``, ``cameras``,
            ``image_size``, ``action_mode``, ...). Cameras render with ``render_quality="fast"`` unless
            ``render_quality="exact"`` is given, as every camera path of the toolkit does (a policy
            deployed on a simulated robot sees the pixels it was trained on).
    """

    def __init__(self, task: str = "Lift", *, env: Any = None, **env_kwargs: Any) -> None:
        if env is None:
            if env_kwargs.get("cameras"):
                env_kwargs.setdefault("render_quality", "fast")
            env = make_env(task, **env_kwargs)
        self.env = env
        self._obs: dict[str, np.ndarray] | None = None
        self._status: TaskStatus | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> SimRobot:
        """Build from a ``type = "sim"`` robot config (how :func:`~gipo_robot.hardware.config.load_robot`
        builds every robot type): ``task`` plus :data:`~gipo_robot.hardware.config.SIM_OPTIONS`.

        Raises:
            ValueError: an unknown option, a missing task, or a bad value; names ``source`` and the key.
        """
        from gipo_robot.hardware.config import SIM_OPTIONS

        options = {k: v for k, v in cfg.items() if k not in ("type", "task")}
        unknown = sorted(set(options) - set(SIM_OPTIONS))
        if unknown:
            raise ValueError(f"{source}: unknown sim options {unknown}; known: {sorted(SIM_OPTIONS)}")
        task = cfg.get("task")
        if not isinstance(task, str) or not task:
            raise ValueError(f"{source}: key 'task' must be a task name such as \"Lift\", got {task!r}")
        try:
            return cls(task, **options)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from err

    @property
    def spec(self) -> RobotSpec:
        return self.env.robot_spec

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
