"""A ROS joint that reports ``null`` (NaN) behind the guard (issue 28, item 8), on the real roslibpy client
against the virtual rosbridge.

Numbers: the virtual arm's joints span [-2, 2] rad and move at most 2 rad/s; at 20 Hz the guard lets a
target be at most 2 * 0.05 = 0.1 rad from the measured position. Normalised 0.25 is 0.5 rad.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("roslibpy")
pytest.importorskip("websockets")

from gipo_robot.hardware.emulators.virtual_rosbridge import VirtualRosbridge, VirtualRosbridgeConfig
from gipo_robot.hardware.ros_bridge import RosArm
from gipo_robot.hardware.safety import EStopError, SafetyConfig, SafetyGuard
from tests.hardware.test_ros_bridge import FAST, wait_until

LIFT = 1  # shoulder_lift, the joint whose encoder fails


def _targets(bridge: VirtualRosbridge) -> np.ndarray:
    return np.array(list(bridge.joint_targets().values()))


def _bridge() -> VirtualRosbridge:
    return VirtualRosbridge(VirtualRosbridgeConfig(port=0, command_type="std_msgs/Float64MultiArray"))


def test_a_null_joint_is_a_sensor_fault_the_guard_holds_then_estops_and_nothing_nan_is_published():
    with _bridge() as bridge:
        arm = RosArm.from_config(bridge.robot_config(control_hz=20.0, **FAST))
        guard = SafetyGuard(arm, SafetyConfig(soft_start_steps=0, watchdog_periods=None))
        with guard:
            guard.reset()  # at 0 rad
            action = np.full(6, 0.25)  # 0.5 rad: the velocity check caps each target at measured + 0.1
            sent = guard.act(action)
            np.testing.assert_allclose(arm.spec.to_physical(sent), 0.1, atol=0.01)
            wait_until(lambda: bool(np.all(arm.observe()["joint_pos"] > 0.09)))
            last_finite = arm.observe()["joint_pos"][LIFT]
            bridge.null_joints = {"shoulder_lift"}
            wait_until(lambda: bool(np.isnan(arm.observe()["joint_pos"][LIFT])))
            commands = bridge.arm.commands
            for _ in range(2):
                sent = guard.act(action)  # held, not sent: before, shoulder_lift got 0.5 rad, uncapped
                np.testing.assert_allclose(arm.spec.to_physical(sent), 0.1, atol=0.01)
            wait_until(lambda: bridge.arm.commands >= commands + 2)  # the two holds
            targets = _targets(bridge)
            assert np.all(np.isfinite(targets)), targets  # before: hold published [.., NaN, ..]
            assert targets[LIFT] == pytest.approx(last_finite, abs=0.05)  # its last finite reading
            assert np.all(targets < 0.25)  # nobody went on toward 0.5 rad
            with pytest.raises(EStopError, match="3 observations in a row with non-finite"):
                guard.act(action)
            assert guard.interventions["sensor"] == 3 and guard.estopped
        assert np.all(np.isfinite(_targets(bridge)))  # disconnect held again: still finite


def test_hold_of_the_bare_arm_keeps_a_null_joint_at_its_last_finite_reading():
    with _bridge() as bridge, RosArm.from_config(bridge.robot_config(**FAST)) as arm:
        arm.reset()
        arm.act(np.full(6, 0.25))
        wait_until(lambda: bool(np.all(arm.observe()["joint_pos"] > 0.3)))
        bridge.null_joints = {"shoulder_lift"}
        obs = wait_until(lambda: o if np.isnan((o := arm.observe())["joint_pos"][LIFT]) else None)
        assert np.isnan(obs["joint_vel"][LIFT]) and np.all(np.isfinite(np.delete(obs["joint_pos"], LIFT)))
        commands = bridge.arm.commands
        arm.hold()
        wait_until(lambda: bridge.arm.commands == commands + 1)
        targets = _targets(bridge)
        assert np.all(np.isfinite(targets)), targets
        assert 0.3 < targets[LIFT] <= 0.5  # where the joint was last seen, on its way to 0.5 rad
