"""The guarded step and the episode runner: what a step sends and records, when an episode stops."""

import numpy as np
import pytest

from gipo_robot.hardware.pacing import Pacer
from gipo_robot.hardware.robot import RobotError, TaskStatus
from gipo_robot.hardware.safety import SafetyConfig, SafetyGuard
from gipo_robot.loops.step import EpisodeRunner, guarded_step, knows_task
from tests.hardware.test_safety import OFF, RecordingArm


class Constant:
    """An actor that always asks for ``action``; counts its resets."""

    def __init__(self, action):
        self.action = np.asarray(action, dtype=np.float64)
        self.resets = 0

    def reset(self):
        self.resets += 1

    def act(self, obs):
        return self.action


class CountdownArm(RecordingArm):
    """A RecordingArm that knows a task: reward 0.5 a step, success and the end at step ``length``."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length

    def reset(self, *, seed=None):
        self.received = []
        return super().reset(seed=seed)

    def task_status(self):
        done = len(self.received) >= self.length
        return TaskStatus(reward=0.5, success=done, terminated=done)


def test_a_step_records_what_the_guard_sent_not_what_was_asked():
    # max_step 0.1 rad per step from j0 = 0; to_physical(a) = 2a, so asking a = +1 (2 rad) sends 0.05.
    guard = SafetyGuard(RecordingArm(), SafetyConfig(**{**OFF, "max_step": 0.1}))
    with guard:
        guard.reset()
        step = guarded_step(guard, lambda obs: np.array([1.0, 0.0, 0.0]))
    assert step.sent[0] == pytest.approx(0.05) and step.status is None
    row = step.row(features={"obs.joint_pos", "action"})
    assert set(row) == {"obs.joint_pos", "action", "timestamp"}  # no task: no reward/success columns
    assert row["action"] is step.sent and row["timestamp"] == step.timestamp
    assert step.row(timestamp=0.25)["timestamp"] == 0.25
    copied = step.row(copy=True)
    assert copied["obs.joint_pos"] is not step.obs["joint_pos"]
    np.testing.assert_array_equal(copied["obs.joint_pos"], step.obs["joint_pos"])


def test_the_runner_stops_at_max_steps_without_a_task():
    arm = RecordingArm()
    actor = Constant([0.1, 0.0, 0.0])
    runner = EpisodeRunner(arm, actor, max_steps=4)
    assert not knows_task(arm)
    with arm:
        runner.reset()
        steps = list(runner.run())
        assert len(steps) == 4 and runner.steps == 4 and len(arm.received) == 4
        assert runner.status is None and not runner.success and runner.total_reward == 0.0
        runner.reset()  # a second episode: the tally and the actor start again
        assert runner.steps == 0 and actor.resets == 2
    times = [s.timestamp for s in steps]
    assert times == sorted(times) and times[0] >= 0.0


def test_the_runner_stops_when_the_task_says_done():
    arm = CountdownArm(length=3)
    runner = EpisodeRunner(SafetyGuard(arm, SafetyConfig(**OFF)), Constant([0.0, 0.0, 0.0]))
    assert knows_task(runner.robot)
    with runner.robot:
        runner.reset(seed=1)
        rows = [step.row() for step in runner.run()]
    assert runner.steps == 3 and runner.success and runner.total_reward == 1.5
    assert [r["success"] for r in rows] == [False, False, True] and rows[-1]["terminated"]


def test_a_paced_runner_takes_one_step_per_tick():
    clock = [0.0]
    pacer = Pacer(0.1, 0.0, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    arm = RecordingArm()
    runner = EpisodeRunner(arm, Constant([0.0, 0.0, 0.0]), max_steps=3, pacer=pacer)
    with arm:
        runner.reset()
        list(runner.run())
    # Ticks at 0, 0.1 and 0.2 s on the fake clock; the first comes at once after the reset.
    assert runner.t0 == 0.0 and clock[0] == pytest.approx(0.2)


def test_a_robot_error_leaves_the_count_of_completed_steps():
    class Failing(RecordingArm):
        def act(self, action):
            if len(self.received) == 2:
                raise RobotError("bus gone")
            return super().act(action)

    arm = Failing()
    runner = EpisodeRunner(arm, Constant([0.0, 0.0, 0.0]), max_steps=10)
    with arm:
        runner.reset()
        with pytest.raises(RobotError, match="bus gone"):
            list(runner.run())
    assert runner.steps == 2
