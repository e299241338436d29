"""SafetyGuard and a NaN/inf measurement (issue 28, item 8): a sensor fault, never a looser limit.

Uses ``RecordingArm`` of ``test_safety`` (10 Hz, T = 0.1 s; j0, j1 in [-2, 2] rad map to normalised
[-1, 1], so normalised = physical / 2; velocity limit 1 rad/s, so a target may be at most 0.1 rad from the
measured position). ``FaultyArm`` reports NaN for the joints listed in ``nan_joints``.
"""

import numpy as np
import pytest

from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.hardware.safety import EStopError, SafetyConfig, SafetyGuard
from tests.hardware.test_safety import OFF, RecordingArm


class FaultyArm(RecordingArm):
    """RecordingArm whose measurement of ``nan_joints`` reads NaN (a ROS joint publishing null)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.nan_joints: list[int] = []

    def observe(self):
        obs = super().observe()
        obs["joint_pos"][self.nan_joints] = np.nan
        return obs


class FaultyDeltaArm(FaultyArm):
    """The same arm in ``joint_delta`` mode: an action of +-1 moves a joint 0.5 rad per step."""

    def __init__(self) -> None:
        super().__init__()
        spec = self._spec
        self._spec = RobotSpec(
            **{
                **{k: getattr(spec, k) for k in spec.__dataclass_fields__},
                "action_mode": "joint_delta",
                "action_low": [-0.5, -0.5, -0.5],
                "action_high": [0.5, 0.5, 0.5],
            }
        )

    def act(self, action):
        action = np.asarray(action, dtype=np.float64)
        self.received.append(action.copy())
        self.q = self.q + self.spec.to_physical(np.clip(action, -1, 1))
        return np.clip(action, -1, 1)


def test_a_nan_joint_holds_at_the_last_finite_target_instead_of_dropping_its_velocity_limit():
    arm = FaultyArm()
    guard = SafetyGuard(arm, SafetyConfig(**{**OFF, "velocity_margin": 1.0}))
    want = arm.spec.to_normalized(np.array([0.0, 0.5, 0.4]))  # j1 to 0.5 rad: 5 steps at 0.1 rad/step
    with guard:
        guard.reset()
        guard.act(want)
        np.testing.assert_allclose(arm.physical[-1], [0.0, 0.1, 0.4])  # velocity-limited, measured known
        arm.nan_joints = [1]
        holds = arm.holds
        for _ in range(2):
            sent = guard.act(want)
            # nothing reached the arm (before: 0.5 rad was sent, the limit skipped for the unknown joint);
            # the command returned is the last finite target, j1 = 0.1 rad = 0.05 normalised
            assert len(arm.received) == 1
            np.testing.assert_allclose(sent, [0.0, 0.05, 0.4 * 2 - 1])
        assert arm.holds == holds + 2
        assert guard.interventions["sensor"] == 2 and not guard.estopped
        arm.nan_joints = []  # the sensor recovers: the count of faults in a row starts over
        guard.act(want)
        np.testing.assert_allclose(arm.physical[-1], [0.0, 0.2, 0.4])
        arm.nan_joints = [1]
        guard.act(want)
        guard.act(want)
        with pytest.raises(EStopError, match=r"3 observations in a row with non-finite .*joint_pos"):
            guard.act(want)  # the third faulty observation in a row (default sensor_estop_after=3)
        assert guard.interventions["sensor"] == 5 and guard.interventions["estop"] == 1
        assert guard.intervention_report()["estop"].startswith("3 observations")
    assert all(np.all(np.isfinite(a)) for a in arm.received)
    assert len(arm.received) == 2


def test_joint_delta_never_skips_the_joint_limit_of_an_unknown_joint():
    arm = FaultyDeltaArm()
    guard = SafetyGuard(arm, SafetyConfig(**OFF, sensor_estop_after=None))
    with guard:
        guard.reset()  # q = [0, 0, 0.4]
        arm.q = np.array([0.0, 0.9, 0.4])  # j1 0.1 rad below its upper limit (1.0)
        arm.nan_joints = [1]
        guard.observe()  # reset's observation was fresh and finite: take a new one
        for _ in range(5):  # +0.5 rad/step on j1 would pass 1.0 at once; sensor_estop_after=None: no e-stop
            guard.act(np.array([0.0, 1.0, 0.0]))
        assert arm.received == [] and guard.interventions["sensor"] == 5 and not guard.estopped
        arm.nan_joints = []
        guard.act(np.array([0.0, 1.0, 0.0]))
        # measured again: j1 may move 1.0 - 0.9 = 0.1 rad, and no more (normalised 0.1 / 0.5 = 0.2)
        np.testing.assert_allclose(arm.received[-1], [0.0, 0.2, 0.0], atol=1e-6)  # float32 obs


def test_sensor_estop_after_is_checked():
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="sensor_estop_after"):
            SafetyConfig(sensor_estop_after=bad)
    assert SafetyConfig.from_dict({"sensor_estop_after": None}).sensor_estop_after is None
