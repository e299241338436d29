"""The ``lerobot`` robot config without LeRobot: its fields' checks, the unit conversion of LeRobot's motor
values to rad, and the error that names the extra when LeRobot is not installed (runs in every venv: here
lerobot's modules are hidden, as if it were not installed)."""

from __future__ import annotations

import json
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from gipo_robot.hardware.config import ROBOT_TYPES, RobotConfigError, load_robot
from gipo_robot.hardware.lerobot_config import JointUnits, LeRobotArmConfig

K = 2 * math.pi / 4095  # rad per tick in LeRobot's degree scale (360 degrees per 4095 ticks)


def fake_bus(modes, ranges, drive_modes):
    """What JointUnits reads of a LeRobot motor bus and its calibration."""
    motors = {f"m{i}": SimpleNamespace(model="sts3215", norm_mode=mode) for i, mode in enumerate(modes)}
    calibration = {
        f"m{i}": SimpleNamespace(range_min=lo, range_max=hi, drive_mode=d)
        for i, ((lo, hi), d) in enumerate(zip(ranges, drive_modes, strict=True))
    }
    bus = SimpleNamespace(motors=motors, model_resolution_table={"sts3215": 4096}, apply_drive_mode=True)
    return bus, calibration


def test_lerobot_motor_values_become_rad_about_the_middle_of_the_calibrated_range():
    modes = ["degrees", "range_m100_100", "range_m100_100", "range_0_100", "range_0_100"]
    ranges = [(874, 3220), (1000, 3000), (1000, 3000), (1930, 3044), (1930, 3044)]
    bus, cal = fake_bus(modes, ranges, [0, 0, 1, 0, 1])
    units = JointUnits.of_bus(bus, cal, "test")
    assert units.units == ("deg", "-100..100 %", "-100..100 %", "0..100 %", "0..100 %")
    values = {"m0.pos": 90.0, "m1.pos": 50.0, "m2.pos": 50.0, "m3.pos": 0.0, "m4.pos": 0.0}
    q = units.to_rad(values)
    # degrees: 90 deg = pi / 2.
    # -100..100: 50 % of the half range (3000 - 1000) / 2 = 1000 ticks = 500 ticks * K = 0.76718 rad;
    #   drive mode 1 flips it.
    # 0..100: 0 % is the bottom of [1930, 3044], (1930 - 2487) ticks = -557 * K = -0.85464 rad; drive
    #   mode 1 counts from the top: +0.85464.
    np.testing.assert_allclose(q, [math.pi / 2, 0.76718, -0.76718, -0.85464, 0.85464], atol=1e-5)
    # joint limits: half of each calibrated range, (3220 - 874) / 2 * K = 1.79980 rad
    np.testing.assert_allclose(units.half_range, np.array([1173, 1000, 1000, 557, 557]) * K)
    assert units.from_rad(q) == pytest.approx(values)
    with pytest.raises(ValueError, match=r"test: the calibration has no entry for motor 'm4'"):
        JointUnits.of_bus(bus, {k: v for k, v in cal.items() if k != "m4"}, "test")


def test_config_fields_are_checked_by_name(tmp_path):
    assert ROBOT_TYPES["lerobot"] == "gipo_robot.hardware.from_lerobot:LeRobotArm"
    robot = {"type": "so101_follower", "port": "/dev/ttyACM0", "id": "my_arm"}
    config = LeRobotArmConfig.from_dict({"type": "lerobot", "robot": robot}, "a.json")
    assert config.name == "lerobot:so101_follower:my_arm" and config.control_hz == 30.0
    # half the STS3215's no-load speed, 60 deg per 0.222 s: pi / 3 / 0.222 / 2 = 2.3586 rad/s
    assert config.velocity_limits(["sts3215"] * 2) == pytest.approx([2.3586] * 2, abs=1e-4)
    bad = [
        ({}, r"a\.json: missing key 'robot'"),
        ({"robot": robot, "speed": 1}, r"unknown key\(s\) \['speed'\].*'robot' table"),
        ({"robot": {"port": "x", "id": "a"}}, r"LeRobotArmConfig\.robot must be a table .* 'type'"),
        ({"robot": {"type": "so101_follower"}}, r"LeRobotArmConfig\.robot\.id is missing"),
        ({"robot": robot, "control_hz": 0}, r"LeRobotArmConfig\.control_hz must be a finite number > 0"),
        ({"robot": robot, "health_check_every": -1}, r"health_check_every must be an integer >= 0"),
        ({"teleop": robot}, r"a LeRobot teleoperator config \('teleop'\), not a robot"),
    ]
    for cfg, message in bad:
        with pytest.raises(ValueError, match=message):
            LeRobotArmConfig.from_dict({"type": "lerobot", **cfg}, "a.json")
    with pytest.raises(ValueError, match=r"max_velocity must be > 0 rad/s \(1 or 3 numbers\), got \[1, 2\]"):
        LeRobotArmConfig(robot=robot, max_velocity=[1, 2]).velocity_limits(["sts3215"] * 3)
    with pytest.raises(ValueError, match=r"max_velocity is needed: no known speed for .*'xm540-w270'"):
        LeRobotArmConfig(robot=robot).velocity_limits(["xm540-w270"])


@pytest.fixture
def no_lerobot(monkeypatch):
    monkeypatch.setitem(sys.modules, "lerobot", None)  # `import` of a None entry raises ImportError


def test_without_lerobot_the_error_names_the_extra(no_lerobot, tmp_path):
    path = tmp_path / "arm.json"
    fields = {"port": "x", "id": "a"}
    path.write_text(json.dumps({"type": "lerobot", "robot": {"type": "so101_follower", **fields}}))
    with pytest.raises(RobotConfigError, match=r"arm\.json: robot type 'lerobot' needs LeRobot: .*") as err:
        load_robot(path)
    assert "pip install 'gipo-robot[lerobot]'" in str(err.value) and "Python >= 3.12" in str(err.value)

    from gipo_robot.teleop.from_lerobot import lerobot_device

    path.write_text(json.dumps({"type": "lerobot", "teleop": {"type": "so101_leader", **fields}}))
    spec = SimpleNamespace(action_mode="joint_position")
    with pytest.raises(ValueError, match=r"pip install 'gipo-robot\[lerobot\]'"):
        lerobot_device(spec, teleop=path)
