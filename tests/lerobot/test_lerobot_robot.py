"""An ``so101_follower`` LeRobot config drives the virtual Feetech arm through LeRobot's own driver
(``FeetechMotorsBus`` over the Feetech SDK, on a pty speaking the STS3215 protocol), behind the guard, with
the calibration file LeRobot's own ``calibrate()`` wrote; its faults hold the arm and commit the episode."""

from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", reason=SKIP_REASON)

import torch
from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import EpisodeStore
from gipo_robot.hardware.config import RobotConfigError, load_robot
from gipo_robot.hardware.emulators.servo_arm import DEFAULT_MOUNT_OFFSETS
from gipo_robot.hardware.emulators.virtual_bus import FaultConfig, VirtualServoBus
from gipo_robot.hardware.robot import RobotError
from gipo_robot.hardware.safety import SafetyGuard
from gipo_robot.policies import GaussianPolicy, PolicyConfig, save_policy
from tests.lerobot.virtual_so101 import K, follower, lerobot_config

TICK = 2 * np.pi / 4096  # the virtual STS3215's encoder tick, rad
POSE = np.array([0.5, -0.3, 0.4, 0.2, -0.6, 0.3])  # joint targets, rad (gipo-robot's frame, see below)


def mid(data, joint):
    """The middle of a joint's calibrated range, ticks: where gipo-robot reads 0 rad."""
    return (data[joint]["range_min"] + data[joint]["range_max"]) / 2


def test_lerobots_calibration_file_is_written_to_fresh_servos_and_read_in_rad(tmp_path, calibration):
    folder, data = calibration
    names = list(data)
    # LeRobot's half-turn homing of a servo at rest in the zero pose: Present = Actual - Homing_Offset,
    # Actual = 2048 + mount offset, and LeRobot wants 4095 // 2 = 2047 there: offset = mount + 1 (to a
    # tick or two: the limp arm settles under gravity).
    offsets = [data[n]["homing_offset"] for n in names]
    assert offsets == pytest.approx([m + 1 for m in DEFAULT_MOUNT_OFFSETS], abs=2)
    # The sweep took shoulder_pan to +-0.9 * 2 rad = +-1173 ticks of 2 pi / 4096 around 2047.
    pan = data["shoulder_pan"]
    assert (pan["range_min"], pan["range_max"]) == pytest.approx((874, 3220), abs=2)
    with VirtualServoBus("feetech") as bus:  # a fresh arm: factory registers, homing offsets 0
        assert bus.state()["homing_offset"] == [0] * 6
        arm = load_robot(follower(tmp_path, bus.port, folder))
        # joint limits: the calibrated range about its middle, (3220 - 874) / 2 * 2 pi / 4095 = 1.7998 rad
        assert arm.spec.joint_high[0] == pytest.approx((pan["range_max"] - pan["range_min"]) / 2 * K)
        assert arm.spec.joint_high[0] == pytest.approx(1.7998, abs=0.003)
        assert arm.spec.action_names == tuple(names)
        with arm:
            assert bus.state()["homing_offset"] == offsets
            assert bus.state()["torque"] == [True] * 6  # LeRobot's configure: torque on, holding
            q = arm.observe()["joint_pos"]
        # At rest in the zero pose every servo reads 2047, so joint i reads (2047 - mid_i) * K rad: about 0
        # for the body joints (ranges swept symmetrically), and for the gripper, whose range is
        # [1930, 3044] (mid 2487), (2047 - 2487) * 2 pi / 4095 = -0.6751 rad.
        expected = np.array([(2047 - mid(data, n)) * K for n in names])
        assert expected[5] == pytest.approx(-0.6751, abs=1e-4)
        np.testing.assert_allclose(q, expected, atol=0.01)


@pytest.mark.parametrize("shut", [1, 5])
def test_a_port_that_would_not_open_is_tried_once_more(tmp_path, calibration, monkeypatch, caplog, shut):
    """LeRobot's own port handler fails to open ``shut`` times (a USB adapter still settling): once is
    retried after OPEN_RETRY_S, a port that stays shut is a clear error after the second try."""
    folder, _ = calibration
    with VirtualServoBus("feetech") as bus:
        arm = load_robot(follower(tmp_path, bus.port, folder))
        handler, tries = arm.bus.port_handler, []
        real_open = handler.openPort
        monkeypatch.setattr(
            handler, "openPort", lambda: tries.append(1) or (len(tries) > shut and real_open())
        )
        if shut == 1:
            with arm:
                assert bus.state()["torque"] == [True] * 6
            assert "trying once more" in caplog.text
        else:
            with pytest.raises(RobotError, match=r"Could not connect on port"):
                arm.connect()
            assert len(tries) == 2 and not any(bus.state()["torque"])


def test_the_arm_moves_where_commanded_within_its_limits(tmp_path, calibration):
    folder, data = calibration
    with VirtualServoBus("feetech") as bus:
        guard = SafetyGuard(load_robot(follower(tmp_path, bus.port, folder)))
        with guard:
            guard.reset()
            spec = guard.spec
            start, steps = time.monotonic(), 0
            while time.monotonic() - start < 2.0:  # as fast as LeRobot's driver goes: observe + act
                guard.observe()
                guard.act(spec.to_normalized(POSE))
                steps += 1
            rate = steps / (time.monotonic() - start)
            q_read = guard.observe()["joint_pos"]
            q_true = np.array(bus.state()["q"])
            # Past the upper end: the action is clipped to +1 (the calibrated range's end), the servo's
            # Max_Position_Limit (written from the file) backs it.
            for _ in range(60):
                guard.observe()
                guard.act(np.full(6, 1.5))
                time.sleep(spec.period)
            q_end = np.array(bus.state()["q"])
    print(f"control loop through LeRobot's driver: {rate:.0f} Hz")
    assert rate > spec.control_hz  # 3 sync reads + 1 sync write per step fit a 30 Hz period
    np.testing.assert_allclose(q_read, POSE, atol=0.02)
    # The emulator's joint angle q is about the zero pose; gipo-robot's about the calibrated range's
    # middle: q = target + (mid - 2047) ticks (the gripper: + 440 ticks = +0.675 rad).
    offset = np.array([(mid(data, n) - 2047) * TICK for n in data])
    np.testing.assert_allclose(q_true, POSE + offset, atol=0.02)
    high = np.array([(data[n]["range_max"] - 2047) * TICK for n in data])
    assert np.all(q_end <= high + 0.02)
    np.testing.assert_allclose(q_end[:4], high[:4], atol=0.05)  # pushed to the calibrated end


def constant_checkpoint(path, names, action):
    """A policy whose mode is ``action`` (normalised) whatever it observes."""
    policy = GaussianPolicy(
        PolicyConfig(low_dim={"joint_pos": [6]}, action_dim=6, chunk=2, hidden=[8], action_names=names)
    )
    with torch.no_grad():
        policy.mean_head.weight.zero_()
        policy.mean_head.bias.copy_(torch.tensor(list(action) * 2, dtype=torch.float32))
    return save_policy(path, policy)


def deploy(tmp_path, config, max_steps):
    names = list(load_robot(config).spec.action_names)
    spec = load_robot(config).spec
    ckpt = constant_checkpoint(tmp_path / "ckpt", names, spec.to_normalized(POSE))
    out = tmp_path / "deploy.zarr"
    args = ["deploy", str(ckpt), "--robot", str(config), "--max-steps", str(max_steps), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--json"])
    return result, out


def test_deploy_drives_the_so101_follower_behind_the_guard(tmp_path, calibration):
    folder, _ = calibration
    with VirtualServoBus("feetech") as bus:
        result, out = deploy(tmp_path, follower(tmp_path, bus.port, folder), max_steps=60)
        q_true = np.array(bus.state()["q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 60 and summary["error"] is None
    assert summary["interventions"]["delta"] > 0  # the guard ramped the first steps (soft start)
    store = EpisodeStore.open(out)
    episode = store.episode(0)
    np.testing.assert_allclose(episode["obs.joint_pos"][-1], POSE, atol=0.03)
    assert store.schema["obs.joint_pos"].shape == (6,)
    assert abs(q_true[0] - POSE[0]) < 0.03  # shoulder_pan's range is symmetric about the zero pose


def mid_episode(bus: VirtualServoBus, fault, after_s: float = 0.3) -> None:
    """Inject ``fault`` once the episode is under way: every servo's torque on (connected) and the goals
    moved since (the policy commanding), then ``after_s`` later. A fixed delay from the start would land in
    the connection on a loaded machine (LeRobot's motor check then fails instead: exit 1, not 3)."""
    deadline, connected = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        state = bus.state()
        if connected is None and all(state["torque"]):
            connected = state["goal_q"]
        elif connected is not None and state["goal_q"] != connected:
            break
        time.sleep(0.02)
    time.sleep(after_s)
    fault()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("servo", "ServoFaultError"),  # servo 3 overloads: its torque drops, LeRobot's reads see nothing
        ("silent", "ConnectionError"),  # the servo cable is pulled: no more replies
        # the USB adapter is pulled: the port closes (pyserial fails a read, or its flush in termios, or
        # the request went out just before and no reply comes)
        ("close", r"SerialException|error: \(5, 'Input/output error'\)|ConnectionError"),
    ],
)
def test_a_fault_mid_episode_holds_the_arm_and_commits_the_episode(tmp_path, calibration, fault, expected):
    folder, _ = calibration
    mode = "close" if fault == "close" else "silent"
    with VirtualServoBus("feetech", faults=FaultConfig(disconnect_mode=mode)) as bus:
        config = follower(tmp_path, bus.port, folder)
        trigger = bus.disconnect if fault != "servo" else lambda: bus.servo_error(3, "overload")
        timer = threading.Thread(target=mid_episode, args=(bus, trigger), daemon=True)
        timer.start()
        result, out = deploy(tmp_path, config, max_steps=300)
        timer.join()
        state = bus.state()
    assert result.exit_code == 3, result.output  # the robot stopped it
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert re.search(expected, summary["error"]), summary["error"]
    store = EpisodeStore.open(out)
    meta = store.episode_meta(0)
    assert meta.success is False and 0 < meta.length < 300 and re.search(expected, meta.extra["error"])
    if fault == "servo":
        assert "elbow_flex" in summary["error"] and "overload" in summary["error"]
        assert state["torque"] == [True, True, False, True, True, True]  # the others hold
        held = np.delete(np.abs(np.array(state["goal_q"]) - np.array(state["q"])), [2, 5])
        assert held.max() < 0.02  # goal = present: held where they were


def test_config_errors_name_the_file_and_key(tmp_path, calibration):
    folder, _ = calibration
    port = "/dev/null-virtual"
    uncalibrated = {"type": "so101_follower", "port": port, "id": "other", "calibration_dir": str(folder)}
    with pytest.raises(RobotConfigError, match=r"lerobot-calibrate --robot\.type=so101_follower.*\.id=other"):
        load_robot(lerobot_config(tmp_path / "a.json", "robot", uncalibrated))
    with pytest.raises(RobotConfigError, match=r"'robot\.type' is 'so102_follower'.*so101_follower"):
        load_robot(lerobot_config(tmp_path / "b.json", "robot", {"type": "so102_follower", "id": "x"}))
    misspelt = {"type": "so101_follower", "porrt": port, "id": "x"}
    with pytest.raises(RobotConfigError, match=r"b\.json: key 'robot': LeRobot's SOFollowerRobot.*porrt"):
        load_robot(lerobot_config(tmp_path / "b.json", "robot", misspelt))
    with pytest.raises(RobotConfigError, match=r"unknown key\(s\) \['speed'\].*'robot' table"):
        load_robot(follower(tmp_path, port, folder, speed=1))
    with pytest.raises(RobotConfigError, match=r"teleoperator config.*--device lerobot --teleop"):
        load_robot(lerobot_config(tmp_path / "c.json", "teleop", {"type": "so101_leader", "id": "x"}))
    with VirtualServoBus("feetech", ids=(1, 2, 3, 4, 5, 7)) as bus:  # servo 6 missing: LeRobot's handshake
        arm = load_robot(follower(tmp_path, bus.port, folder))
        with pytest.raises(Exception, match=r"connecting on .*Missing motor IDs") as err:
            arm.connect()
        assert type(err.value).__name__ == "RobotError"
        assert not arm.is_connected and not arm.bus.is_connected  # the port was closed again
