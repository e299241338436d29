"""LeRobot's own units without LeRobot: the calibrated range and velocity of each motor in LeRobot's values
(drive-mode flips included), the ``units`` field of :class:`LeRobotArmConfig` and of :class:`RobotSpec`
(an old spec without it reads as rad)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gipo_robot.hardware.lerobot_config import JointUnits, LeRobotArmConfig
from gipo_robot.hardware.robot import RobotSpec
from tests.hardware.test_lerobot_config import K, fake_bus


def test_limits_in_lerobot_units_are_each_motors_calibrated_range():
    modes = ["degrees", "range_m100_100", "range_m100_100", "range_0_100", "range_0_100"]
    ranges = [(874, 3220), (1000, 3000), (1000, 3000), (1930, 3044), (1930, 3044)]
    bus, cal = fake_bus(modes, ranges, [0, 0, 1, 0, 1])  # motors 2 and 4 in drive mode 1 (flipped)
    units = JointUnits.of_bus(bus, cal, "test")
    low, high = units.limits("lerobot")
    # degrees: +-(3220 - 874) / 2 ticks * 360 / 4095 = +-103.1209 degrees; the percentages whatever the flip
    assert low[0] == pytest.approx(-103.1209, abs=1e-4) and high[0] == pytest.approx(103.1209, abs=1e-4)
    np.testing.assert_array_equal(low[1:], [-100, -100, 0, 0])
    np.testing.assert_array_equal(high[1:], [100, 100, 100, 100])
    # The ends in LeRobot's units are the ends in rad: 100 % on motor 1 is +1000 ticks = 1000 K rad, on the
    # flipped motor 2 -1000 K rad; 0 % on the flipped gripper (motor 4) is its range_max, +557 K rad.
    ends = [units.to_rad(units.from_values(v)) for v in (low, high)]
    np.testing.assert_allclose(ends[1][:3], [(3220 - 874) / 2 * K, 1000 * K, -1000 * K])
    np.testing.assert_allclose(ends[0][4], 557 * K)
    np.testing.assert_array_equal(units.limits("rad")[1], units.half_range)
    # Velocities: 1 rad/s is 180 / pi degrees/s, and 1 / (1000 K / 100) %/s on motor 1 (100 % = 1000 K rad).
    speed = units.speed(np.ones(5), "lerobot")
    assert speed[0] == pytest.approx(180 / math.pi) and speed[1] == pytest.approx(100 / (1000 * K))
    np.testing.assert_array_equal(units.speed(np.ones(5), "rad"), np.ones(5))
    # read/write: LeRobot's values unchanged in "lerobot" units
    values = {f"m{i}.pos": v for i, v in enumerate([10.0, -20.0, 30.0, 40.0, 50.0])}
    np.testing.assert_array_equal(units.read(values, "lerobot"), [10, -20, 30, 40, 50])
    assert units.write(units.read(values, "lerobot"), "lerobot") == values


def test_units_field_checks():
    robot = {"type": "so101_follower", "id": "a"}
    assert LeRobotArmConfig(robot=robot).units == "rad"
    assert LeRobotArmConfig(robot=robot, units="lerobot").units == "lerobot"
    with pytest.raises(ValueError, match=r"LeRobotArmConfig\.units must be 'rad' or 'lerobot', got 'deg'"):
        LeRobotArmConfig(robot=robot, units="deg")
    spec = RobotSpec(
        name="arm", action_mode="joint_position", action_names=("a",), action_low=[-100.0],
        action_high=[100.0],
        joint_names=("a",), joint_low=[-100.0], joint_high=[100.0], max_joint_velocity=[50.0],
        control_hz=30.0, obs_shapes={"state": (1,)}, obs_dtypes={"state": "float32"}, units="lerobot",
    )  # fmt: skip
    assert RobotSpec.from_dict(spec.to_dict()).units == "lerobot"
    old = {k: v for k, v in spec.to_dict().items() if k != "units"}  # a store written before the field
    assert RobotSpec.from_dict(old).units == "rad"
    with pytest.raises(ValueError, match=r"RobotSpec\.units 'deg' unknown; known: rad, lerobot"):
        RobotSpec.from_dict({**old, "units": "deg"})
