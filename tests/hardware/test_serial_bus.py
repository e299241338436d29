"""The real driver (vendor SDKs underneath) against the virtual servo bus, for both protocols.

Tolerances: the emulated servos track their set point with a stiff position loop (kp 200 N m/rad) against
gear friction (0.8 N m) and gravity (< 0.4 N m at these poses), so a settled joint sits within
(0.8 + 0.4) / 200 = 6 mrad of its goal, plus half a tick (0.8 mrad) of rounding; we allow 0.03 rad.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gipo_robot.hardware.calibration import MotorCalibration, load_calibration, save_calibration
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.robot import RobotError
from gipo_robot.hardware.serial_bus import BusError, SerialArm

pytest.importorskip("dynamixel_sdk")
pytest.importorskip("scservo_sdk")

PROTOCOLS = ["feetech", "dynamixel"]
TOL = 0.03  # rad, see the module doc
TARGET = np.array([0.5, -0.4, 0.6, -0.3, 1.0, 0.8])  # rad, inside every joint's limits


def _drive(arm: SerialArm, target: np.ndarray, seconds: float) -> np.ndarray:
    """Observe + act toward ``target`` at the control rate; returns the last observed positions."""
    action = arm.spec.to_normalized(target)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        obs = arm.observe()
        arm.act(action)
        time.sleep(arm.spec.period)
    return obs["joint_pos"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_calibrate_save_load_and_move_to_a_target(protocol, tmp_path):
    cal_path = tmp_path / "arm.json"
    with VirtualServoBus(protocol) as bus:
        arm = SerialArm.from_config(bus.robot_config(calibration=str(cal_path)))
        with arm:
            with pytest.raises(RobotError, match="calibrate"):  # configured file missing: no motion
                arm.act(np.zeros(6))
            # uncalibrated, the zero pose reads the horns' mount offsets: servo 3 is 200 ticks off,
            # 200 * 2 pi / 4096 = 0.307 rad
            assert arm.read_positions()[2] == pytest.approx(0.307, abs=0.005)
            calibration = arm.calibrate()
            # homing offset = homing_sign * (2048 - raw): Feetech (sign -1) stores +200 for servo 3,
            # Dynamixel (sign +1) stores -200 (+-2 ticks: the limp arm may settle a tick under gravity)
            expected = 200 if protocol == "feetech" else -200
            assert calibration["elbow_flex"].homing_offset == pytest.approx(expected, abs=2)
            np.testing.assert_allclose(arm.read_positions(), 0.0, atol=0.005)
            arm.reset()
            final = _drive(arm, TARGET, 2.0)
            np.testing.assert_allclose(final, TARGET, atol=TOL)
            np.testing.assert_allclose(bus.state()["q"], TARGET, atol=TOL)  # the physics agrees
            # no faults injected: no bad checksums (a timeout on a loaded machine is retried and allowed)
            assert arm.bus_stats["corrupt"] == 0
    saved = json.loads(cal_path.read_text())
    assert set(saved["gripper"]) == {"id", "drive_mode", "homing_offset", "range_min", "range_max"}
    assert load_calibration(cal_path) == calibration

    # a fresh bus (homing offsets back to 0) + the saved file: connect writes the calibration back
    with (
        VirtualServoBus(protocol) as bus,
        SerialArm.from_config(bus.robot_config(calibration=str(cal_path))) as arm,
    ):
        np.testing.assert_allclose(arm.read_positions(), 0.0, atol=0.005)
        assert bus.state()["homing_offset"][2] == calibration["elbow_flex"].homing_offset


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_leader_arm_reads_positions_torque_off(protocol):
    with VirtualServoBus(protocol) as bus, SerialArm.from_config(bus.robot_config()) as arm:
        arm.torque(False)
        moved = [0.3, -0.2, 0.4, 0.1, -0.5, 0.6]
        bus.move_by_hand(moved)
        # no calibration: reads are offset by each horn's mount offset (120, -85, 200, -160, 45, -30 ticks)
        mount = np.array([120, -85, 200, -160, 45, -30]) * 2 * np.pi / 4096
        np.testing.assert_allclose(arm.read_positions(), np.array(moved) + mount, atol=0.01)
        assert bus.state()["torque"] == [False] * 6


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_percent_corrupted_replies_still_track_with_counted_retries(protocol, tmp_path):
    with VirtualServoBus(protocol, faults={"corrupt_prob": 0.01, "seed": 3}) as bus:
        with SerialArm.from_config(bus.robot_config()) as arm:
            arm.calibrate(tmp_path / "cal.json")
            arm.reset()
            final = _drive(arm, TARGET, 3.0)
            stats = arm.bus_stats
            injected = bus.state()["counts"]["corrupted"]
        np.testing.assert_allclose(final, TARGET, atol=TOL)
    # ~90 steps x 6 replies at 1 % -> ~5 corrupted replies expected; each fails its transaction, which is
    # retried (the driver may count a few more: bytes of a broken sync read that land after the retry
    # began parse as one more bad packet); every failure was retried and none exhausted the budget
    assert injected >= 1
    assert stats["corrupt"] >= 1
    assert stats["retries"] == stats["corrupt"] + stats["timeout"] + stats["io"]


@pytest.mark.parametrize(("protocol", "mode"), [("feetech", "silent"), ("dynamixel", "close")])
def test_unplugged_bus_raises_bus_error_after_the_budget_and_hold_does_not(protocol, mode):
    with VirtualServoBus(protocol, faults={"disconnect_mode": mode}) as bus:
        arm = SerialArm.from_config(bus.robot_config(retries=3, timeout_s=0.2))
        arm.connect()
        arm.reset()
        action = arm.spec.to_normalized(TARGET)
        for _ in range(5):  # mid-motion
            arm.observe()
            arm.act(action)
        bus.disconnect()
        before = dict(arm.bus_stats)
        start = time.monotonic()
        with pytest.raises(BusError, match="4 time"):  # 1 try + 3 retries
            for _ in range(10):
                arm.observe()
                arm.act(action)
        # silent: 4 timeouts of 0.2 s + wire time; closed: 4 immediate I/O errors. Generous for load:
        assert time.monotonic() - start < 5.0
        failures = sum(arm.bus_stats[k] - before[k] for k in ("timeout", "corrupt", "io"))
        assert failures == 4
        start = time.monotonic()
        arm.hold()  # must not raise
        arm.disconnect()  # holds again, closes: must not raise
        assert time.monotonic() - start < 5.0
        assert not arm.is_connected


def test_wrong_port_wrong_model_wrong_protocol_and_missing_id_fail_at_connect():
    with pytest.raises(RobotError, match="/dev/ttyDOESNOTEXIST"), VirtualServoBus("feetech") as bus:
        SerialArm.from_config(bus.robot_config(port="/dev/ttyDOESNOTEXIST")).connect()
    with VirtualServoBus("dynamixel", model="xm430-w350") as bus:
        arm = SerialArm.from_config(bus.robot_config(model="xl330-m288"))
        with pytest.raises(RobotError, match=r"id 1 .*1020 \(xm430-w350\).*xl330-m288"):
            arm.connect()
        assert not arm.is_connected
        assert bus.state()["torque"] == [False] * 6  # nothing was written
        feetech_cfg = bus.robot_config(type="feetech", model="sts3215", retries=1)
        with pytest.raises(RobotError, match=rf"{bus.port}: no reply from servo id 1"):
            SerialArm.from_config(feetech_cfg).connect()
        with pytest.raises(RobotError, match=r"no reply from servo id 9 \(joint 'gripper'"):
            SerialArm.from_config(bus.robot_config(model="xm430-w350", ids=[1, 2, 3, 4, 5, 9])).connect()


def _config(**overrides):
    cfg = {
        "type": "feetech",
        "port": "/dev/ttyUSB0",
        "ids": [1, 2],
        "joint_names": ["shoulder", "gripper"],
        "joint_limits": {"shoulder": [-1.0, 1.0], "gripper": [0.0, 1.5]},
    }
    cfg.update(overrides)
    return cfg


def test_config_errors_name_the_field_and_the_source():
    with pytest.raises(ValueError, match=r"arm\.toml: .*joint_limits\.gripper is missing"):
        SerialArm.from_config(_config(joint_limits={"shoulder": [-1, 1]}), source="arm.toml")
    with pytest.raises(ValueError, match=r"arm\.toml: missing key\(s\) \['joint_limits'\]"):
        cfg = _config()
        del cfg["joint_limits"]
        SerialArm.from_config(cfg, source="arm.toml")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['baud'\]"):
        SerialArm.from_config(_config(baud=57600))
    with pytest.raises(ValueError, match=r"joint_limits\.shoulder must be"):
        SerialArm.from_config(_config(joint_limits={"shoulder": [1, -1], "gripper": [0, 1]}))
    with pytest.raises(ValueError, match="retries"):
        SerialArm.from_config(_config(retries=-1))
    with pytest.raises(ValueError, match="is a dynamixel servo"):
        SerialArm.from_config(_config(model="xl330-m288"))
    arm = SerialArm.from_config(_config())  # the spec is readable without connecting
    assert arm.spec.action_mode == "joint_position"
    np.testing.assert_allclose(arm.spec.action_high, [1.0, 1.5])


def test_calibration_file_round_trip_and_errors(tmp_path):
    cal = {"wrist": MotorCalibration(id=5, drive_mode=1, homing_offset=-37, range_min=100, range_max=3900)}
    path = save_calibration(tmp_path / "c.json", cal)
    assert load_calibration(path) == cal
    path.write_text(json.dumps({"wrist": {"id": 5, "drive_mode": 0, "homing_offset": 1, "range_min": 0}}))
    with pytest.raises(ValueError, match=r"c\.json: joint 'wrist' misses field\(s\) \['range_max'\]"):
        load_calibration(path)
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        load_calibration(tmp_path / "nope.json")
