"""RosArm (the real roslibpy client) against the virtual rosbridge (a websockets server) on 127.0.0.1.

Every server binds a free port (port 0). The simulated arm behind the server has limits [-2, 2] rad on
every joint and moves at most 2 rad/s, so a normalised action a maps to the target -2 + (a + 1) * 2 rad:
-1 -> -2, -0.5 -> -1, 0 -> 0, 0.25 -> 0.5, 1 -> 2.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("roslibpy")
pytest.importorskip("websockets")

from websockets.sync.client import connect as ws_connect

from gipo_robot.hardware.emulators.virtual_rosbridge import (
    SO100_JOINTS,
    VirtualRosbridge,
    VirtualRosbridgeConfig,
    serve,
)
from gipo_robot.hardware.robot import RobotError
from gipo_robot.hardware.ros_bridge import RosArm, RosArmConfig, StaleStateError

FAST = {"connect_timeout_s": 5.0, "stale_after_s": 0.3, "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0}


def wait_until(condition, timeout: float = 10.0, period: float = 0.02):
    """Poll ``condition()`` until it returns something other than None/False; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value is not None and value is not False:
            return value
        time.sleep(period)
    pytest.fail(f"condition not met within {timeout} s")


def drive(arm: RosArm, action: np.ndarray, expected: np.ndarray, timeout: float = 10.0) -> np.ndarray:
    """Send ``action`` at the control rate until the observed joint_pos is within 1e-3 rad of ``expected``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arm.act(action)
        pos = arm.observe()["joint_pos"]
        if np.max(np.abs(pos - expected)) < 1e-3:
            return pos
        time.sleep(arm.spec.period)
    pytest.fail(f"arm did not reach {expected} within {timeout} s; at {arm.observe()['joint_pos']}")


def observe_or_none(arm: RosArm):
    """The observation, or None while the state is stale."""
    try:
        return arm.observe()
    except StaleStateError:
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("command_type", "ros_version"),
    [
        ("trajectory_msgs/JointTrajectory", 1),
        ("std_msgs/Float64MultiArray", 1),
        ("trajectory_msgs/msg/JointTrajectory", 2),
    ],
)
def test_command_moves_the_arm_and_joint_state_reflects_it(command_type, ros_version):
    config = VirtualRosbridgeConfig(port=0, command_type=command_type, ros_version=ros_version)
    with VirtualRosbridge(config) as bridge, RosArm.from_config(bridge.robot_config(**FAST)) as arm:
        assert arm.spec.action_mode == "joint_position" and arm.spec.obs_shapes["joint_pos"] == (6,)
        np.testing.assert_allclose(arm.reset()["joint_pos"], np.zeros(6), atol=1e-9)
        action = np.array([0.25, -0.5, 0.0, 1.0, -1.0, 1.5])
        # -2 + (a + 1) * 2 per joint; 1.5 is clipped to 1 before it is sent.
        expected = np.array([0.5, -1.0, 0.0, 2.0, -2.0, 2.0])
        np.testing.assert_array_equal(arm.act(action), np.clip(action, -1, 1))
        start = time.monotonic()
        pos = drive(arm, action, expected)
        # The farthest joints travel 2 rad at <= 2 rad/s: it cannot take less than 1 s.
        assert time.monotonic() - start > 0.9
        np.testing.assert_allclose(pos, expected, atol=1e-3)
        np.testing.assert_allclose(list(bridge.joint_positions().values()), expected, atol=1e-3)
        wait_until(lambda: bool(np.max(np.abs(arm.observe()["joint_vel"])) < 1e-6))  # at rest: zero velocity


def test_joints_are_picked_by_name_not_order():
    # The driver publishes all six joints in reverse order; the client drives three of them, in its own order.
    config = VirtualRosbridgeConfig(port=0, joint_state_order=tuple(reversed(SO100_JOINTS)))
    with VirtualRosbridge(config) as bridge:
        names = ["wrist_flex", "shoulder_pan", "elbow_flex"]
        cfg = bridge.robot_config(joint_names=names, joint_low=[-2.0] * 3, joint_high=[2.0] * 3, **FAST)
        with RosArm.from_config(cfg) as arm:
            arm.reset()
            expected = np.array([0.5, -1.0, 2.0])  # actions 0.25, -0.5, 1.0
            drive(arm, np.array([0.25, -0.5, 1.0]), expected)
            moved = bridge.joint_positions()
            assert moved["wrist_flex"] == pytest.approx(0.5, abs=1e-3)
            assert moved["shoulder_pan"] == pytest.approx(-1.0, abs=1e-3)
            assert moved["elbow_flex"] == pytest.approx(2.0, abs=1e-3)
            for other in ("shoulder_lift", "wrist_roll", "gripper"):  # not ours: never commanded
                assert moved[other] == 0.0


def test_a_joint_missing_from_joint_state_is_a_clear_error():
    with VirtualRosbridge(VirtualRosbridgeConfig(port=0)) as bridge:
        cfg = bridge.robot_config(joint_names=[*SO100_JOINTS[:5], "elbow"], **FAST)
        arm = RosArm.from_config(cfg)
        with pytest.raises(RobotError, match=r"/joint_states lacks joints \['elbow'\]"):
            arm.connect()
        assert not arm.is_connected


def test_stale_joint_state_blocks_observe_and_act():
    with (
        VirtualRosbridge(VirtualRosbridgeConfig(port=0)) as bridge,
        RosArm.from_config(bridge.robot_config(**FAST)) as arm,
    ):
        arm.reset()
        arm.act(np.zeros(6))
        sent = wait_until(lambda: bridge.arm.commands or None)  # the server has received it
        bridge.publishing = False  # the driver hangs; the websocket stays up
        with pytest.raises(StaleStateError, match=r"stale_after_s=0.3\); rosbridge link to .* up"):
            wait_until(lambda: arm.observe() and False, timeout=0.3 + 5.0)
        with pytest.raises(StaleStateError):
            arm.act(np.full(6, 0.5))
        arm.hold()  # never raises
        wait_until(lambda: bridge.arm.commands == sent + 1)  # the hold went out ...
        time.sleep(0.2)
        assert bridge.arm.commands == sent + 1  # ... and nothing else: the refused act was not queued
        bridge.publishing = True
        wait_until(lambda: observe_or_none(arm))  # fresh again


def test_finite_difference_velocity_when_the_driver_publishes_none():
    config = VirtualRosbridgeConfig(port=0, publish_velocity=False, command_type="std_msgs/Float64MultiArray")
    with VirtualRosbridge(config) as bridge, RosArm.from_config(bridge.robot_config(**FAST)) as arm:
        arm.reset()
        arm.act(np.ones(6))  # 0 -> 2 rad at 2 rad/s: ~1 s of motion at +2 rad/s
        vel = wait_until(lambda: v if (v := arm.observe()["joint_vel"])[0] > 1.0 else None)
        np.testing.assert_allclose(vel, 2.0, atol=0.5)


def test_reset_moves_home_and_hold_keeps_the_measured_position():
    with VirtualRosbridge(VirtualRosbridgeConfig(port=0)) as bridge:
        home = [0.4, -0.3, 0.2, 0.0, 0.1, -0.1]
        with RosArm.from_config(bridge.robot_config(home=home, home_tolerance=0.01, **FAST)) as arm:
            obs = arm.reset()
            np.testing.assert_allclose(obs["joint_pos"], home, atol=0.01)
            arm.act(np.ones(6))  # start toward +2 rad, then hold wherever the arm is
            measured = wait_until(lambda: p if (p := arm.observe()["joint_pos"])[0] > 0.8 else None)
            sent = bridge.arm.commands  # the homing steps and the act: all received, the arm is moving
            arm.hold()
            wait_until(lambda: bridge.arm.commands == sent + 1)
            targets = np.array(list(bridge.joint_targets().values()))
            # The hold target is the last measured position: at most a JointState or two (20 ms each,
            # 0.04 rad at 2 rad/s) newer than ``measured``, and far short of the +2 rad goal.
            np.testing.assert_allclose(targets, measured, atol=0.1)
            assert np.all(targets < 1.8)
            wait_until(lambda: bool(np.allclose(list(bridge.joint_positions().values()), targets, atol=1e-6)))


def test_disconnect_waits_until_rosbridge_has_answered_after_the_hold():
    with VirtualRosbridge(VirtualRosbridgeConfig(port=0)) as bridge:
        arm = RosArm.from_config(bridge.robot_config(**FAST))
        arm.connect()
        arm.act(np.full(6, 0.5))
        sent = wait_until(lambda: bridge.arm.commands or None)
        arm.disconnect()  # hold, /rosapi/get_time answered, close: no error
        assert not arm.is_connected
        wait_until(lambda: bridge.arm.commands == sent + 1)  # the hold


def test_an_unconfirmed_hold_is_a_clear_error_and_the_link_is_closed_anyway():
    with VirtualRosbridge(VirtualRosbridgeConfig(port=0)) as bridge:
        arm = RosArm.from_config(bridge.robot_config(confirm_timeout_s=0.3, **FAST))
        arm.connect()
        bridge.answering = False  # a server too busy to reply: the hold may be dropped when we close
        start = time.monotonic()
        unconfirmed = r"did not answer /rosapi/get_time within 0.3 s \(confirm_timeout_s\)"
        with pytest.raises(RobotError, match=unconfirmed):
            arm.disconnect()
        assert 0.3 <= time.monotonic() - start < 3.0
        assert not arm.is_connected
        arm.disconnect()  # idempotent, silent


def test_reconnects_after_the_server_restarts_then_gives_up_after_the_budget():
    first = VirtualRosbridge(VirtualRosbridgeConfig(port=0)).start()
    port = first.port
    cfg = first.robot_config(reconnect_budget_s=2.0, **FAST)
    with RosArm.from_config(cfg) as arm:
        arm.reset()
        first.stop()  # the websocket drops
        with pytest.raises(StaleStateError, match="down, reconnecting"):
            wait_until(lambda: arm.observe() and False, timeout=5.0)
        with pytest.raises(StaleStateError):
            arm.act(np.zeros(6))  # refused, not queued for later replay
        # A new server on the same port, with the arm elsewhere: the client comes back by itself.
        second = VirtualRosbridge(VirtualRosbridgeConfig(port=port, initial_position=(0.3,) * 6)).start()
        try:
            obs = wait_until(lambda: observe_or_none(arm), timeout=15.0)
            np.testing.assert_allclose(obs["joint_pos"], 0.3)
            assert second.arm.commands == 0  # nothing stale was replayed on reconnection
            drive(arm, np.full(6, -0.5), np.full(6, -1.0))
        finally:
            second.stop()
        # Down for good: after reconnect_budget_s the error is no longer "stale" but final.
        start = time.monotonic()

        def gave_up():
            try:
                arm.observe()
            except StaleStateError:
                return None
            except RobotError as err:
                return err
            return None

        err = wait_until(gave_up, timeout=10.0)
        assert "gave up reconnecting" in str(err) and f"127.0.0.1:{port}" in str(err)
        assert time.monotonic() - start >= 1.5  # the link dropped just before ``start``


def test_connecting_to_a_closed_port_fails_fast_naming_the_address():
    port = free_port()
    arm = RosArm(
        RosArmConfig(joint_names=["a"], joint_low=[-1], joint_high=[1], port=port, connect_timeout_s=1.0)
    )
    start = time.monotonic()
    with pytest.raises(RobotError, match=rf"ws://127.0.0.1:{port} within 1.0 s"):
        arm.connect()
    assert time.monotonic() - start < 5.0
    assert not arm.is_connected


BASE = {"type": "ros", "joint_names": ["a", "b"], "joint_low": [-1, -1], "joint_high": [1, 1]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": 70000}, "port"),
        ({"port": "9090"}, "port"),
        ({"command_type": "std_msgs/String"}, "command_type"),
        ({"joint_high": [1, -2]}, "joint_high"),
        ({"joint_low": [-1]}, "joint_low"),
        ({"joint_names": ["a", "a"]}, "joint_names"),
        ({"max_joint_velocity": 0}, "max_joint_velocity"),
        ({"stale_after_s": 0}, "stale_after_s"),
        ({"reconnect_initial_s": 2.0, "reconnect_max_s": 1.0}, "reconnect_max_s"),
        ({"joint_state_topic": "joint_states"}, "joint_state_topic"),
        ({"ros_version": 3}, "ros_version"),
        ({"home": [0.0, 5.0]}, "home"),
        ({"speed": 1}, "speed"),
    ],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises(ValueError, match=rf"robot\.json: .*{field}"):
        RosArm.from_config({**BASE, **change}, source="robot.json")


def test_missing_config_key_is_named():
    with pytest.raises(ValueError, match=r"robot\.json: missing keys \['joint_high'\]"):
        RosArm.from_config({k: v for k, v in BASE.items() if k != "joint_high"}, source="robot.json")


def test_the_virtual_bridge_speaks_the_protocol_to_a_raw_websocket_client():
    stop = threading.Event()
    port = free_port()
    thread = threading.Thread(target=serve, args=(VirtualRosbridgeConfig(port=port, publish_hz=20.0), stop))
    thread.start()
    try:
        ws = wait_until(lambda: _try_connect(f"ws://127.0.0.1:{port}"))
        with ws:
            ws.send(json.dumps({"op": "set_level", "level": "warning"}))
            # /joint_states carries sensor_msgs/JointState: advertising it as another type is refused.
            advertise = {
                "op": "advertise",
                "id": "a1",
                "topic": "/joint_states",
                "type": "std_msgs/Float64MultiArray",
            }
            ws.send(json.dumps(advertise))
            status = json.loads(ws.recv(timeout=5))
            assert status["op"] == "status" and status["level"] == "error" and status["id"] == "a1"
            assert "already exists with type sensor_msgs/JointState" in status["msg"]
            # A JointTrajectory with a field that the type lacks is dropped with an error naming the path.
            bad = {"joint_names": ["gripper"], "points": [{"positions": [1.0], "speed": 3}]}
            ws.send(json.dumps({"op": "publish", "topic": "/arm_controller/command", "msg": bad}))
            status = json.loads(ws.recv(timeout=5))
            assert "msg.points[0] has unknown fields ['speed']" in status["msg"]
            # Missing fields are filled (a warning), an omitted header is stamped, and the arm takes it.
            good = {"joint_names": ["gripper"], "points": [{"positions": [1.0]}]}
            ws.send(json.dumps({"op": "publish", "topic": "/arm_controller/command", "msg": good}))
            status = json.loads(ws.recv(timeout=5))
            assert status["level"] == "warning" and "time_from_start" in status["msg"]
            # Subscribe with a 200 ms throttle: JointState arrives stamped, named, at most 5 per second.
            ws.send(json.dumps({"op": "subscribe", "topic": "/joint_states", "throttle_rate": 200}))
            stamps = []
            while len(stamps) < 4:
                msg = json.loads(ws.recv(timeout=5))
                assert msg["op"] == "publish" and msg["topic"] == "/joint_states"
                assert msg["msg"]["name"] == list(SO100_JOINTS)
                stamp = msg["msg"]["header"]["stamp"]
                stamps.append(stamp["secs"] + 1e-9 * stamp["nsecs"])
            assert min(np.diff(stamps)) >= 0.18  # published every 50 ms, throttled to >= 200 ms apart
            ws.send(json.dumps({"op": "call_service", "service": "/rosapi/topics"}))
            while (reply := json.loads(ws.recv(timeout=5)))["op"] != "status":
                pass
            assert "not supported" in reply["msg"]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def _try_connect(url: str):
    try:
        return ws_connect(url, open_timeout=1)
    except OSError:
        return None
