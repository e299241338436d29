"""A ``koch_follower`` LeRobot config drives the virtual Dynamixel arm (two XL430-W250 and four XL330-M288, as
a Koch follower's bus) through LeRobot's own ``DynamixelMotorsBus``, calibrated by LeRobot's ``calibrate()``;
a servo overload is read from Hardware_Error_Status and holds the arm."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", reason=SKIP_REASON)

from gipo_robot.hardware.config import load_robot
from gipo_robot.hardware.emulators.servo_arm import DEFAULT_MOUNT_OFFSETS
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.robot import RobotError
from gipo_robot.hardware.safety import SafetyGuard
from gipo_robot.hardware.servo_faults import ServoFaultError
from tests.lerobot.virtual_so101 import K, lerobot_calibrate, lerobot_config

KOCH = ("xl430-w250", "xl430-w250") + ("xl330-m288",) * 4
POSE = np.array([0.5, -0.3, 0.4, 0.2, -0.6, 0.3])  # rad


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    with pytest.MonkeyPatch.context() as mp, VirtualServoBus("dynamixel", models=KOCH) as bus:
        data = lerobot_calibrate(bus, folder, "robot", "koch_follower", "koch", mp)
    return folder, data


def koch(tmp_path, port, folder):
    table = {"type": "koch_follower", "port": port, "id": "koch", "calibration_dir": str(folder)}
    return lerobot_config(tmp_path / "koch.json", "robot", table)


def test_koch_follower_through_lerobots_dynamixel_driver(tmp_path, calibration):
    folder, data = calibration
    names = list(data)
    # Dynamixel: Present = Actual + Homing_Offset; at rest in the zero pose Actual = 2048 + mount offset and
    # LeRobot wants 2047 there: offset = -(mount + 1), to a tick or two of the limp arm settling.
    offsets = [data[n]["homing_offset"] for n in names]
    assert offsets == pytest.approx([-(m + 1) for m in DEFAULT_MOUNT_OFFSETS], abs=2)
    # LeRobot's Koch calibration gives shoulder_pan and wrist_roll the whole turn: +-2047.5 ticks = +-pi rad
    assert (data["shoulder_pan"]["range_min"], data["shoulder_pan"]["range_max"]) == (0, 4095)
    with VirtualServoBus("dynamixel", models=KOCH) as bus:
        arm = load_robot(koch(tmp_path, bus.port, folder))
        assert arm.units.units == ("-100..100 %",) * 5 + ("0..100 %",)  # Koch's default: use_degrees off
        assert arm.spec.joint_high[0] == pytest.approx(4095 / 2 * K) == pytest.approx(np.pi)
        with SafetyGuard(arm) as guard:
            guard.reset()
            assert bus.state()["homing_offset"] == offsets  # the file, written to the fresh servos
            for _ in range(60):
                guard.observe()
                guard.act(guard.spec.to_normalized(POSE))
            np.testing.assert_allclose(guard.observe()["joint_pos"], POSE, atol=0.02)
            bus.servo_error(3, "overload")
            with pytest.raises(
                ServoFaultError, match=r"servo id 3 \(joint 'elbow_flex'\) reports overload.*reboot"
            ):
                for _ in range(5):
                    guard.observe()
                    guard.act(guard.spec.to_normalized(POSE))
            guard.hold()
            state = bus.state()
        assert state["torque"] == [True, True, False, True, True, True]


def test_a_servo_of_another_model_is_refused_before_anything_moves(tmp_path, calibration):
    folder, _ = calibration
    with VirtualServoBus("dynamixel") as bus:  # six XL330-M288: ids 1 and 2 are not XL430-W250s
        arm = load_robot(koch(tmp_path, bus.port, folder))
        with pytest.raises(
            RobotError, match=r"incorrect model numbers.*1 \(shoulder_pan\): expected 1060, found 1200"
        ):
            arm.connect()
        assert bus.state()["torque"] == [False] * 6 and bus.state()["homing_offset"] == [0] * 6
