"""Guard counts that mean something: a limit is counted only when it changed the command by more than a
tolerance, the report says by how much, and a limit that changes nothing returns the command bit for bit.

``PointArm`` is an ``ee_delta`` arm whose end effector moves exactly by the physical delta it is sent. Its
numbers, used by hand below:

    actions dx, dy, dz (m), gripper; dx..dz: [-0.05, 0.05] m (so a = 1 means 5 cm), gripper [-1, 1]
    workspace box x, y in [-0.5, 0.5] m, z in [0.8, 1.3] m (a table at 0.8 m); 10 Hz
"""

import json
import time

import numpy as np
import pytest

from gipo_robot.hardware.limits import clamp_into_box, clamp_step
from gipo_robot.hardware.robot import Robot, RobotSpec
from gipo_robot.hardware.safety import SafetyConfig, SafetyGuard

OFF = {"soft_start_steps": 0, "watchdog_periods": None}


class PointArm(Robot):
    """An end effector that moves exactly by each (dx, dy, dz) it is sent."""

    def __init__(self, start=(0.1, 0.1, 0.9)) -> None:
        self._spec = RobotSpec(
            name="point-arm",
            action_mode="ee_delta",
            action_names=("dx", "dy", "dz", "gripper"),
            action_low=[-0.05, -0.05, -0.05, -1.0],
            action_high=[0.05, 0.05, 0.05, 1.0],
            joint_names=("j0",),
            joint_low=[-1.0],
            joint_high=[1.0],
            max_joint_velocity=[1.0],
            control_hz=10.0,
            obs_shapes={"eef_pos": (3,)},
            obs_dtypes={"eef_pos": "float64"},
            workspace_low=[-0.5, -0.5, 0.8],
            workspace_high=[0.5, 0.5, 1.3],
            eef_feature="eef_pos",
        )
        self.start = np.array(start, dtype=np.float64)
        self.eef = self.start.copy()
        self.holds = 0

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def reset(self, *, seed=None):
        self.eef = self.start.copy()
        return self.observe()

    def observe(self):
        return {"eef_pos": self.eef.copy()}

    def act(self, action):
        sent = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.eef = self.eef + self.spec.to_physical(sent)[:3]
        return sent

    def hold(self) -> None:
        self.holds += 1


def test_a_limit_that_changes_nothing_returns_the_value_exactly():
    # 0.1 + 0.2 - 0.1 is 0.20000000000000004 in floating point: before, clamp_into_box returned that
    # (position + delta) - position for a step well inside the box, and clamp_step returned
    # reference + (target - reference), so a guard counted an "intervention" on most steps.
    assert (0.1 + 0.2) - 0.1 != 0.2
    position, delta = np.array([0.1, 0.1, 0.1]), np.array([0.2, 0.2, 0.2])
    np.testing.assert_array_equal(clamp_into_box(position, delta, np.full(3, -1.0), np.full(3, 1.0)), delta)
    target, reference = np.array([0.3, 0.3]), np.array([0.1, 0.1])
    np.testing.assert_array_equal(clamp_step(target, reference, np.full(2, 0.5)), target)
    # ... while a step that does cross the wall is still clipped: 0.1 + 0.2 would pass a wall at 0.25
    np.testing.assert_allclose(clamp_into_box(position, delta, np.full(3, -1.0), np.full(3, 0.25)), 0.15)


def test_steps_inside_the_box_are_not_counted_and_pass_untouched():
    # 40 small moves in every direction from (0.1, 0.1, 0.9), all far from the walls.
    arm = PointArm()
    guard = SafetyGuard(arm, SafetyConfig(**OFF))
    rng = np.random.default_rng(0)
    with guard:
        guard.reset()
        for _ in range(40):
            action = np.append(rng.uniform(-0.3, 0.3, 3), -1.0)
            guard.observe()
            np.testing.assert_array_equal(guard.act(action), action)
        assert guard.interventions["workspace"] == 0
        assert guard.intervention_report()["changes"] == {}


def test_only_changes_above_the_tolerance_count_and_the_report_gives_their_size():
    # The table is at z = 0.8. From z = 0.8005 (0.5 mm above it) a step of dz = -1 mm (a = -0.02) is cut
    # by 0.5 mm: applied (the arm stops at 0.8), not counted (default tolerance 1 mm). From 0.81 a step of
    # dz = -3 cm (a = -0.6) is cut by 2 cm, then at the table -1 cm (a = -0.2) is cut by 1 cm: counted
    # twice, largest change 0.02 m, mean (0.02 + 0.01) / 2 = 0.015 m.
    arm = PointArm(start=(0.0, 0.0, 0.8005))
    guard = SafetyGuard(arm, SafetyConfig(**OFF))
    with guard:
        guard.reset()
        guard.observe()
        sent = guard.act(np.array([0.0, 0.0, -0.02, -1.0]))
        assert sent[2] == pytest.approx(-0.01)  # -0.5 mm, normalised by 0.05 m
        assert arm.eef[2] == pytest.approx(0.8)
        assert guard.interventions["workspace"] == 0

        arm.start = np.array([0.0, 0.0, 0.81])
        guard.reset()
        for a in (-0.6, -0.2):
            guard.observe()
            guard.act(np.array([0.0, 0.0, a, -1.0]))
        assert arm.eef[2] == pytest.approx(0.8)
        report = guard.intervention_report()
        assert report["interventions"]["workspace"] == 2
        assert set(report["changes"]) == {"workspace"} and set(report["changes"]["workspace"]) == {"dz"}
        assert report["changes"]["workspace"]["dz"]["max"] == pytest.approx(0.02)
        assert report["changes"]["workspace"]["dz"]["mean"] == pytest.approx(0.015)
        assert json.loads(json.dumps(report)) == report


def test_tolerance_zero_counts_every_change_and_a_bad_one_is_named():
    arm = PointArm(start=(0.0, 0.0, 0.8005))
    guard = SafetyGuard(arm, SafetyConfig(intervention_tolerance=0.0, **OFF))
    with guard:
        guard.reset()
        guard.observe()
        guard.act(np.array([0.0, 0.0, -0.02, -1.0]))  # cut by 0.5 mm: counted now
        assert guard.interventions["workspace"] == 1
    for bad in (-1e-3, float("nan"), "1 mm"):
        with pytest.raises(ValueError, match="intervention_tolerance"):
            SafetyConfig(intervention_tolerance=bad)
    config = SafetyConfig(intervention_tolerance=0.002)
    assert SafetyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_holding_on_purpose_stands_the_watchdog_down_until_the_next_action():
    # Watchdog after 2 periods = 0.2 s. An act, then hold() (the recorder between episodes): nothing fires
    # in 0.5 s. An act re-arms it, and a silence after that is a lapse again.
    arm = PointArm()
    guard = SafetyGuard(arm, SafetyConfig(soft_start_steps=0, watchdog_periods=2.0))
    with guard:
        guard.reset()
        guard.act(np.array([0.0, 0.0, 0.0, -1.0]))
        guard.hold()
        time.sleep(0.5)
        assert guard.interventions["watchdog"] == 0 and arm.holds == 1
        guard.act(np.array([0.0, 0.0, 0.0, -1.0]))
        deadline = time.monotonic() + 5.0
        while guard.interventions["watchdog"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert guard.interventions["watchdog"] == 1 and arm.holds == 2


class SlowHoldArm(PointArm):
    """A bus that takes 0.3 s to confirm a hold (a servo bus retrying a write)."""

    def hold(self) -> None:
        time.sleep(0.3)
        super().hold()


def test_a_counted_watchdog_lapse_means_the_arm_is_already_held():
    # The count was raised before hold() was sent: a reader (a status line, a test) could see the lapse
    # counted while the arm still moved. A slow hold makes that window 0.3 s wide.
    arm = SlowHoldArm()
    guard = SafetyGuard(arm, SafetyConfig(soft_start_steps=0, watchdog_periods=2.0))
    with guard:
        guard.reset()
        guard.act(np.array([0.0, 0.0, 0.0, -1.0]))
        deadline = time.monotonic() + 5.0
        while guard.interventions["watchdog"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert guard.interventions["watchdog"] == 1 and arm.holds == 1
