"""RosArm against the real rosbridge_suite ROS 1 server (0.11.17, vendored) and a rospy arm, all on loopback.

The arm node (``scripts/ros1/arm_node.py``) has six joints with limits [-2, 2] rad moving at most 2 rad/s; it
publishes JointState at 50 Hz in reverse joint order plus a joint no controller drives. A normalised action
a maps to the target -2 + (a + 1) * 2 rad: -0.5 -> -1, 0.25 -> 0.5, 0.9 -> 1.8, 1 -> 2.
"""

from __future__ import annotations

import ipaddress
import math
import time

import numpy as np
import pytest
import roslibpy

from gipo_robot.hardware import ros_bridge
from gipo_robot.hardware.robot import RobotError
from gipo_robot.hardware.ros_bridge import RosArm, StaleStateError
from gipo_robot.hardware.safety import EStopError, SafetyConfig, SafetyGuard
from tests.hardware.ros1.conftest import SO100_JOINTS, robot_config
from tests.hardware.test_ros_bridge import drive, observe_or_none, wait_until

pytestmark = pytest.mark.ros1

LIFT, ELBOW = 1, 2  # shoulder_lift and elbow_flex: the joints whose encoders fail


def test_every_process_listens_on_loopback_only(ros1):
    listening = ros1.listening()
    assert ("websocket", "127.0.0.1", ros1.ws_port) in listening, listening
    assert ("rosmaster", "127.0.0.1", ros1.master_port) in listening, listening
    assert {name for name, _, _ in listening} == {"rosmaster", "rosapi", "websocket", "arm"}
    wide = [entry for entry in listening if not ipaddress.ip_address(entry[1]).is_loopback]
    assert not wide, f"listening beyond loopback: {wide}"  # before the launcher's fix: 0.0.0.0:ws_port


def test_a_trajectory_names_our_joints_in_our_order_and_moves_them(ros1, arm_sim):
    # Three of the six joints, in the client's own order; the arm publishes all six reversed plus one more.
    names = ["wrist_flex", "shoulder_pan", "elbow_flex"]
    cfg = robot_config(ros1, joint_names=names, joint_low=[-2.0] * 3, joint_high=[2.0] * 3)
    with RosArm.from_config(cfg) as arm:
        np.testing.assert_allclose(arm.reset()["joint_pos"], 0.0, atol=1e-9)
        expected = np.array([0.5, -1.0, 2.0])  # actions 0.25, -0.5, 1.0
        n = arm_sim.status()["commands"]
        arm.act(np.array([0.25, -0.5, 1.0]))
        last = arm_sim.wait(lambda s: s["commands"] == n + 1)["last_command"]
        assert last["n_points"] == 1
        assert last["type"] == "trajectory_msgs/JointTrajectory" and last["joint_names"] == names
        np.testing.assert_allclose(last["positions"], expected)
        # The slowest joint (elbow_flex) travels 2 rad at 2 rad/s: time_from_start 1 s.
        assert last["time_from_start"] == pytest.approx(1.0, abs=1e-6)
        pos = drive(arm, np.array([0.25, -0.5, 1.0]), expected)
        at = arm_sim.wait(lambda s: abs(s["position"][SO100_JOINTS.index("elbow_flex")] - 2.0) < 1e-3)
        np.testing.assert_allclose(pos, [at["position"][SO100_JOINTS.index(j)] for j in names], atol=0.05)
        for other in ("shoulder_lift", "wrist_roll", "gripper"):  # not ours: never commanded
            assert at["target"][SO100_JOINTS.index(other)] == 0.0


def test_float64_multi_array_carries_the_positions_in_controller_order(ros1, arm_sim):
    cfg = robot_config(
        ros1, command_topic="/arm_group_controller/command", command_type="std_msgs/Float64MultiArray"
    )
    with RosArm.from_config(cfg) as arm:
        arm.reset()
        action = np.array([0.25, -0.5, 0.0, 1.0, -1.0, 0.5])
        expected = np.array([0.5, -1.0, 0.0, 2.0, -2.0, 1.0])
        n = arm_sim.status()["commands"]
        arm.act(action)
        last = arm_sim.wait(lambda s: s["commands"] == n + 1)["last_command"]
        assert last["type"] == "std_msgs/Float64MultiArray"
        np.testing.assert_allclose(last["positions"], expected)
        drive(arm, action, expected)


def test_a_hung_driver_is_stale_and_nothing_is_queued(ros1, arm_sim):
    with RosArm.from_config(robot_config(ros1)) as arm:
        arm.reset()
        arm_sim.control(publishing=False)  # the driver hangs; the websocket stays up
        with pytest.raises(StaleStateError, match=r"stale_after_s=0.5\); rosbridge link to .* up"):
            wait_until(lambda: arm.observe() and False, timeout=0.5 + 5.0)
        sent = arm_sim.status()["commands"]
        with pytest.raises(StaleStateError):
            arm.act(np.full(6, 0.5))
        arm.hold()  # never raises; the last measured position goes out
        arm_sim.wait(lambda s: s["commands"] == sent + 1)
        time.sleep(0.3)
        assert arm_sim.status()["commands"] == sent + 1  # the refused act was not queued
        arm_sim.control(publishing=True)
        wait_until(lambda: observe_or_none(arm))


def test_the_hold_sent_on_disconnect_arrives_20_times_in_a_row(ros1, arm_sim):
    """The session ends the way a fast loop ends it: a last burst of commands, then disconnect (which holds).
    rosbridge 0.11.17 clears its queue of unprocessed operations when the websocket closes; before RosArm
    waited for the /rosapi/get_time round trip, the burst's tail and the hold were dropped (here: 10 of 10
    sessions lost the hold, the arm drove on to 1.8 rad)."""
    config = robot_config(ros1)
    for k in range(20):
        sign = 1.0 if k % 2 == 0 else -1.0
        far = np.full(6, 0.9 * sign)  # 1.8 rad away on the side we head for
        arm = RosArm.from_config(config)
        arm.connect()
        start = arm.observe()["joint_pos"].copy()
        n = arm_sim.status()["commands"]
        sent = 0
        while np.max(np.abs(arm.observe()["joint_pos"] - start)) < 0.2:  # on its way, paced at 20 Hz
            arm.act(far)
            sent += 1
            time.sleep(arm.spec.period)
        arm_sim.wait(lambda s, want=n + sent: s["commands"] == want)
        for _ in range(20):  # the burst: 20 commands straight after each other
            arm.act(far)
        arm.disconnect()  # hold() + the confirmation round trip + close
        total = n + sent + 20 + 1
        status = arm_sim.wait(lambda s, want=total: s["commands"] >= want, timeout=3.0, fail=False)
        lost = total - status["commands"]
        assert lost == 0, f"session {k}: the last {lost} commands, the hold among them, never reached the arm"
        held = np.array(status["last_command"]["positions"])
        assert np.all(np.abs(held - 1.8 * sign) > 0.3), f"session {k}: the last command was not the hold"
        assert np.all(np.abs(held - start) >= 0.2 - 1e-6)  # where the arm was at disconnect


def test_disconnect_confirms_with_any_answer_even_without_the_service(ros1, arm_sim, monkeypatch):
    # rosapi not running (a bridge started without it): rosbridge answers "service does not exist",
    # which it sends only after the publishes before the call too.
    monkeypatch.setattr(ros_bridge, "CONFIRM_SERVICE", "/gipo_tests/no_such_service")
    arm = RosArm.from_config(robot_config(ros1))
    arm.connect()
    n = arm_sim.status()["commands"]
    for _ in range(20):
        arm.act(np.full(6, 0.5))
    start = time.monotonic()
    arm.disconnect()
    assert time.monotonic() - start < 2.0  # answered, not timed out (confirm_timeout_s=2)
    assert arm_sim.wait(lambda s: s["commands"] >= n + 21, timeout=3.0)["commands"] == n + 21


def test_null_joints_are_sensor_faults_the_guard_holds_then_estops(ros1, arm_sim):
    """NaN and inf reach the client as JSON null (rosbridge's message conversion). Numbers: at 20 Hz and
    2 rad/s the guard lets a target be at most 0.1 rad from the measured position; 0.25 -> 0.5 rad."""
    raw = []
    joint_states = roslibpy.Topic(arm_sim.ros, "/joint_states", "sensor_msgs/JointState")
    joint_states.subscribe(raw.append)
    arm = RosArm.from_config(robot_config(ros1, control_hz=20.0))
    guard = SafetyGuard(arm, SafetyConfig(soft_start_steps=0, watchdog_periods=None))
    try:
        with guard:
            guard.reset()
            action = np.full(6, 0.25)
            sent = guard.act(action)
            np.testing.assert_allclose(arm.spec.to_physical(sent), 0.1, atol=0.01)
            wait_until(lambda: bool(np.all(arm.observe()["joint_pos"] > 0.09)))
            last_finite = arm.observe()["joint_pos"][[LIFT, ELBOW]]
            arm_sim.control(nonfinite={"shoulder_lift": "nan", "elbow_flex": "inf"})
            obs = wait_until(lambda: o if np.isnan((o := arm.observe())["joint_pos"][LIFT]) else None)
            assert np.isnan(obs["joint_pos"][ELBOW])  # +inf arrives as null too: NaN, like any unknown
            assert np.all(np.isfinite(np.delete(obs["joint_pos"], [LIFT, ELBOW])))
            on_wire = raw[-1]["position"][:6][::-1]  # published reversed, then camera_tilt
            assert on_wire[LIFT] is None and on_wire[ELBOW] is None, on_wire
            n = arm_sim.status()["commands"]
            for _ in range(2):
                sent = guard.act(action)  # a sensor fault: held, not sent
                np.testing.assert_allclose(arm.spec.to_physical(sent), 0.1, atol=0.01)
            status = arm_sim.wait(lambda s: s["commands"] >= n + 2)  # the two holds
            held = np.array(status["last_command"]["positions"])
            assert np.all(np.isfinite(held)), held  # nothing NaN reaches the arm
            np.testing.assert_allclose(held[[LIFT, ELBOW]], last_finite, atol=0.05)
            with pytest.raises(EStopError, match="3 observations in a row with non-finite"):
                guard.act(action)
            assert guard.interventions["sensor"] == 3 and guard.estopped
    finally:
        joint_states.unsubscribe()
    assert all(math.isfinite(x) for x in arm_sim.status()["target"])


def test_reset_refuses_to_move_home_from_a_null_joint(ros1, arm_sim):
    # Before: math.ceil(NaN) in the homing plan, a ValueError instead of a robot fault.
    arm_sim.control(nonfinite={"shoulder_lift": "nan"})
    n = arm_sim.status()["commands"]
    with RosArm.from_config(robot_config(ros1, home=[0.1] * 6)) as arm:
        with pytest.raises(RobotError, match=r"sensor fault: joints \['shoulder_lift'\] read null"):
            arm.reset()
        assert arm_sim.status()["commands"] == n  # no homing step went out


def test_reconnects_after_rosbridge_restarts(ros1, arm_sim):
    with RosArm.from_config(robot_config(ros1)) as arm:
        arm.reset()
        ros1.stop_process("websocket")  # the server dies; rosmaster and the arm live on
        with pytest.raises(StaleStateError, match="down, reconnecting"):
            wait_until(lambda: arm.observe() and False, timeout=5.0)
        n = arm_sim.status()["commands"]
        with pytest.raises(StaleStateError):
            arm.act(np.zeros(6))  # refused, not queued for replay
        ros1.start_websocket(deadline=time.monotonic() + 30.0)
        wait_until(lambda: observe_or_none(arm), timeout=30.0)
        time.sleep(0.3)
        assert arm_sim.fresh()["commands"] == n  # nothing stale replayed on reconnection
        drive(arm, np.full(6, -0.5), np.full(6, -1.0))
