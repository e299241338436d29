"""The one guarded control step, and the episode runner built on it.

Legend: ``A`` action size, ``T`` control period (s, ``spec.period``).

One control step (:func:`guarded_step`), the same for every loop::

    observe -> choose the action (a policy's, an operator's) -> robot.act (returns the command actually
    sent) -> robot.task_status() -> Step -> Step.row(), the episode store's row

"Guarded" because the robot a user drives is a :class:`~gipo_robot.hardware.safety.SafetyGuard` around the
backend: what ``act`` returns, and what the row records as ``action``, is the command the guard let
through. (Training evaluation alone drives the simulator unguarded: see
:func:`~gipo_robot.loops.evaluate.evaluate`.)

One episode (:class:`EpisodeRunner`): reset the actor and the robot, then guarded steps, each at a tick of a
:class:`~gipo_robot.hardware.pacing.Pacer` when paced or back to back when not, until the task says the
episode is done or ``max_steps`` steps were taken. Deploy and evaluation run their episodes with it; the
recorder's event loop, whose episodes start and end on operator events, calls :func:`guarded_step` for
its control step.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Container, Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from gipo_robot.hardware.pacing import Pacer
from gipo_robot.hardware.robot import Robot, TaskStatus
from gipo_robot.hardware.safety import SafetyGuard

__all__ = ["Actor", "EpisodeRunner", "Step", "guarded_step", "knows_task"]


class Actor(Protocol):
    """Anything that chooses an action per observation (e.g. :class:`~gipo_robot.loops.actor.PolicyActor`)."""

    def reset(self) -> None:
        """Forget any plan: an episode starts."""

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The (A,) normalised action for this observation."""


def knows_task(robot: Robot) -> bool:
    """Whether ``robot`` (or the robot a safety guard wraps) reports reward, success and episode ends
    (:meth:`~gipo_robot.hardware.robot.Robot.task_status`): simulators do, real arms usually do not."""
    inner = robot.robot if isinstance(robot, SafetyGuard) else robot
    return type(inner).task_status is not Robot.task_status


@dataclasses.dataclass(frozen=True)
class Step:
    """One control step that happened.

    Attributes:
        obs: the observation the action was chosen from (feature name -> array).
        sent: (A,) the normalised command the robot actually sent.
        status: the task's reward/success/done after the action; None where the robot does not know them.
        timestamp: s since the episode's start, taken just before the observation.
    """

    obs: dict[str, np.ndarray]
    sent: np.ndarray
    status: TaskStatus | None
    timestamp: float

    def row(
        self, *, features: Container[str] | None = None, timestamp: float | None = None, copy: bool = False
    ) -> dict[str, Any]:
        """The episode store's row of this step.

        ``obs.<feature>`` per observation, ``action`` (the command sent), ``timestamp``, and where the robot
        knows the task ``reward``, ``terminated``, ``truncated`` and ``success``.

        Args:
            features: keep only the observations whose ``obs.<feature>`` is in this (e.g. a store's schema);
                None keeps all.
            timestamp: the row's time instead of :attr:`timestamp` (e.g. a nominal ``k * T``).
            copy: copy the observation arrays (for a row that is written later, on another thread).
        """
        row: dict[str, Any] = {
            f"obs.{k}": np.array(v) if copy else v
            for k, v in self.obs.items()
            if features is None or f"obs.{k}" in features
        }
        row.update(action=self.sent, timestamp=self.timestamp if timestamp is None else timestamp)
        if self.status is not None:
            row.update(
                reward=self.status.reward,
                terminated=self.status.terminated,
                truncated=self.status.truncated,
                success=self.status.success,
            )
        return row

    def nonfinite(self) -> str | None:
        """The first observation with a NaN or inf (``obs.joint_pos``): a sensor fault; None if all finite."""
        for name, value in self.obs.items():
            arr = np.asarray(value)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                return f"obs.{name}"
        return None


def guarded_step(
    robot: Robot, choose: Callable[[dict[str, np.ndarray]], np.ndarray], *, t0: float = 0.0
) -> Step:
    """One control step: observe, choose the action, send it, read the task status.

    Args:
        robot: a connected, reset robot (a :class:`~gipo_robot.hardware.safety.SafetyGuard` for a user's arm).
        choose: observation -> (A,) normalised action (a policy actor's ``act``, an operator's command).
        t0: the episode's start on :func:`time.perf_counter`'s clock (the step's timestamp counts from it).

    Raises:
        RobotError: the robot failed (nothing is caught here; the loop decides: hold, commit, stop).
    """
    timestamp = time.perf_counter() - t0
    obs = robot.observe()
    sent = robot.act(choose(obs))
    return Step(obs, sent, robot.task_status(), timestamp)


class EpisodeRunner:
    """Episodes of one actor on one robot: reset, then guarded steps until the task or ``max_steps`` ends.

    Usage::

        runner = EpisodeRunner(guard, PolicyActor(policy), max_steps=200, pacer=Pacer(spec.period))
        runner.reset(seed=0)
        for step in runner.run():
            writer.add(step.row())
        runner.steps, runner.success   # also valid after a RobotError escaped run()

    Args:
        robot: the robot, connected.
        actor: chooses the actions; reset with each episode.
        max_steps: steps per episode at most; None runs until the task says the episode is done (a robot
            that does not know the task then never stops: see :func:`knows_task`).
        pacer: one step per tick of this pacer (restarted by :meth:`reset`); None steps back to back.

    Attributes:
        steps: steps taken in the current episode.
        success: whether the task reported success at any step of it.
        total_reward: the sum of the task's rewards (0.0 where the robot does not know the task).
        status: the last step's task status (None before the first step, or where the robot does not know).
        t0: the episode's start on :func:`time.perf_counter`'s clock.
    """

    def __init__(
        self, robot: Robot, actor: Actor, *, max_steps: int | None = None, pacer: Pacer | None = None
    ) -> None:
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {max_steps!r}")
        self.robot = robot
        self.actor = actor
        self.max_steps = max_steps
        self.pacer = pacer
        self.steps = 0
        self.success = False
        self.total_reward = 0.0
        self.status: TaskStatus | None = None
        self.t0 = 0.0

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode: reset the actor, the robot (``seed`` for a simulated scene) and the clock.

        Returns:
            The first observation.
        """
        self.steps, self.success, self.total_reward, self.status = 0, False, 0.0, None
        self.actor.reset()
        obs = self.robot.reset(seed=seed)
        self.t0 = self.pacer.start() if self.pacer is not None else time.perf_counter()
        return obs

    def run(self) -> Iterator[Step]:
        """The episode's steps, one per iteration, until the task says it is done or ``max_steps``.

        Raises:
            RobotError: the robot failed; :attr:`steps` counts the steps completed before it.
        """
        while self.max_steps is None or self.steps < self.max_steps:
            if self.pacer is not None:
                self.pacer.wait()
            step = guarded_step(self.robot, self.actor.act, t0=self.t0)
            self.steps += 1
            self.status = step.status
            if step.status is not None:
                self.success = self.success or step.status.success
                self.total_reward += step.status.reward
            yield step
            if step.status is not None and step.status.done:
                return
