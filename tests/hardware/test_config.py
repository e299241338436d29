"""load_robot: sim spec strings, JSON/TOML config files, the type registry, errors naming file and key."""

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before robosuite/mujoco load (camera options render offscreen)

import pytest

from gipo_robot.hardware.config import ROBOT_TYPES, SIM_OPTIONS, RobotConfigError, load_robot
from gipo_robot.sim.robot import SimRobot


def test_sim_spec_string_with_options():
    robot = load_robot("sim:Lift?action_mode=joint_delta&cameras=agentview&image_size=32&horizon=50")
    try:
        assert isinstance(robot, SimRobot)
        assert robot.spec.name == "sim:Lift"
        assert robot.spec.action_mode == "joint_delta"  # robosuite's joint-position controller
        assert robot.spec.cameras == ("agentview",)
        assert robot.spec.obs_shapes["agentview_image"] == (32, 32, 3)
        assert robot.env.config.horizon == 50
    finally:
        robot.close()


def test_sim_option_parsers():
    assert SIM_OPTIONS["cameras"]("agentview,robot0_eye_in_hand") == ("agentview", "robot0_eye_in_hand")
    assert SIM_OPTIONS["fast"]("false") is False and SIM_OPTIONS["end_on_success"]("1") is True
    with pytest.raises(ValueError, match="true/false"):
        SIM_OPTIONS["fast"]("maybe")


def test_toml_and_json_sim_configs(tmp_path):
    toml = tmp_path / "lift.toml"
    toml.write_text('type = "sim"\ntask = "Lift"\nhorizon = 40\ncameras = []\n')
    robot = load_robot(toml)
    try:
        assert isinstance(robot, SimRobot) and robot.env.config.horizon == 40
    finally:
        robot.close()
    bad = tmp_path / "lift.json"
    bad.write_text(json.dumps({"type": "sim", "task": "Lift", "horizn": 40}))
    with pytest.raises(RobotConfigError, match=r"lift\.json: unknown sim options \['horizn'\]"):
        load_robot(bad)


def test_ros_config_builds_a_ros_arm_without_connecting(tmp_path):
    path = tmp_path / "arm.json"
    path.write_text(
        json.dumps(
            {
                "type": "ros",
                "joint_names": ["a", "b"],
                "joint_low": [-1.0, -2.0],
                "joint_high": [1.0, 2.0],
                "control_hz": 25.0,
            }
        )
    )
    robot = load_robot(str(path))
    assert type(robot).__name__ == "RosArm"
    assert robot.spec.joint_names == ("a", "b") and robot.spec.control_hz == 25.0
    assert not robot.is_connected
    path.write_text(json.dumps({"type": "ros", "joint_names": ["a"], "joint_low": [0], "joint_hig": [1]}))
    with pytest.raises(RobotConfigError, match=r"arm\.json.*joint_hig"):
        load_robot(str(path))


def test_serial_types_reach_serial_arm(tmp_path):
    pytest.importorskip("gipo_robot.hardware.serial_bus", reason="helper 'serial' has not written it yet")
    path = tmp_path / "so100.toml"
    path.write_text('type = "feetech"\nport = "/dev/ttyDOESNOTEXIST"\nids = [1, 2]\nnot_a_key = 3\n')
    with pytest.raises(RobotConfigError, match=r"so100\.toml.*not_a_key"):
        load_robot(path)


def test_errors_name_the_file_and_the_key(tmp_path):
    with pytest.raises(RobotConfigError, match=r"missing\.toml does not exist"):
        load_robot(tmp_path / "missing.toml")
    path = tmp_path / "robot.toml"
    path.write_text('type = "kuka"\n')
    with pytest.raises(
        RobotConfigError, match=r"robot\.toml: key 'type' is 'kuka'; known types: sim, dynamixel"
    ):
        load_robot(path)
    path.write_text('port = "/dev/ttyUSB0"\n')
    with pytest.raises(RobotConfigError, match=r"robot\.toml: missing key 'type'"):
        load_robot(path)
    path.write_text('type = "sim"\ntask = \n')
    with pytest.raises(RobotConfigError, match=r"robot\.toml: invalid TOML"):
        load_robot(path)
    path.write_text('type = "sim"\n')
    with pytest.raises(RobotConfigError, match=r"robot\.toml: key 'task'"):
        load_robot(path)
    (tmp_path / "robot.yaml").write_text("type: sim\n")
    with pytest.raises(RobotConfigError, match=r"\.json or \.toml"):
        load_robot(tmp_path / "robot.yaml")
    (tmp_path / "robot.json").write_text('{"type": "sim",\n "task": }')
    with pytest.raises(RobotConfigError, match=r"robot\.json: invalid JSON at line 2"):
        load_robot(tmp_path / "robot.json")
    with pytest.raises(RobotConfigError, match=r"unknown sim option 'camera'; known: \['action_mode'"):
        load_robot("sim:Lift?camera=agentview")
    with pytest.raises(RobotConfigError, match=r"option 'horizon': invalid literal"):
        load_robot("sim:Lift?horizon=ten")
    with pytest.raises(RobotConfigError, match=r"sim:Lifft.*Lift"):
        load_robot("sim:Lifft")  # robosuite never starts: the task name is checked first
    assert set(ROBOT_TYPES) == {"sim", "dynamixel", "feetech", "ros", "lerobot"}


FEETECH = {
    "type": "feetech",
    "port": "/dev/ttyUSB0",
    "ids": [1, 2],
    "joint_names": ["a", "b"],
    "joint_limits": {"a": [-1, 1], "b": [-1, 1]},
}
ROS = {"type": "ros", "joint_names": ["a", "b"], "joint_low": [-1, -1], "joint_high": [1, 1]}
INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("base", "key", "value", "message"),
    [
        # issue 28 item 12: JSON's Infinity and NaN parse as floats; a string iterates character by character
        (FEETECH, "control_hz", INF, r"SerialArmConfig\.control_hz must be a finite number > 0, got inf"),
        (FEETECH, "control_hz", NAN, r"SerialArmConfig\.control_hz must be a finite number > 0, got nan"),
        (FEETECH, "control_hz", -30, r"SerialArmConfig\.control_hz must be a finite number > 0"),
        (FEETECH, "timeout_s", INF, r"SerialArmConfig\.timeout_s must be a finite number > 0"),
        (FEETECH, "baudrate", "1000000", r"SerialArmConfig\.baudrate must be a finite number > 0"),
        (FEETECH, "max_velocity", INF, r"SerialArmConfig\.max_velocity must be > 0 rad/s"),
        (FEETECH, "retries", True, r"SerialArmConfig\.retries must be an integer >= 0"),
        (FEETECH, "ids", "12", r"SerialArmConfig\.ids must be a list, got '12'"),
        (FEETECH, "ids", [1, 2.5], r"SerialArmConfig\.ids must be a list of integers"),
        (FEETECH, "joint_names", "ab", r"SerialArmConfig\.joint_names must be a list, got 'ab'"),
        (FEETECH, "home", "00", r"SerialArmConfig\.home must be a list"),
        (FEETECH, "calibration", 3, r"SerialArmConfig\.calibration must be a string"),
        (ROS, "control_hz", INF, r"RosArmConfig\.control_hz must be a finite number > 0, got inf"),
        (ROS, "stale_after_s", NAN, r"RosArmConfig\.stale_after_s must be a finite number > 0"),
        (ROS, "joint_names", "ab", r"RosArmConfig\.joint_names must be a list of joint names, got 'ab'"),
        (ROS, "joint_high", "11", r"RosArmConfig\.joint_high must be a list of numbers, got '11'"),
    ],
)
def test_values_that_parse_but_mean_nothing_are_refused_naming_the_file_and_key(
    tmp_path, base, key, value, message
):
    path = tmp_path / "arm.json"
    path.write_text(json.dumps({**base, key: value}))  # json.dumps writes Infinity / NaN, as a user might
    with pytest.raises(RobotConfigError, match=r"arm\.json: " + message):
        load_robot(path)


def test_toml_inf_is_refused_too_and_a_valid_config_still_loads(tmp_path):
    path = tmp_path / "arm.toml"
    path.write_text(
        'type = "ros"\njoint_names = ["a"]\njoint_low = [-1]\njoint_high = [1]\ncontrol_hz = inf\n'
    )
    with pytest.raises(RobotConfigError, match=r"arm\.toml: RosArmConfig\.control_hz must be a finite"):
        load_robot(path)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({**FEETECH, "ids": [3, 4], "max_velocity": [1, 2.0], "baudrate": 57600.0}))
    robot = load_robot(ok)
    assert robot.config.ids == (3, 4) and robot.config.baudrate == 57600
    assert robot.spec.max_joint_velocity.tolist() == [1.0, 2.0]


def test_robot_spec_refuses_a_non_finite_control_rate():
    from gipo_robot.hardware.robot import RobotSpec

    spec = {
        "name": "x", "action_mode": "joint_position", "action_names": ["a"], "action_low": [-1],
        "action_high": [1], "joint_names": ["a"], "joint_low": [-1], "joint_high": [1],
        "max_joint_velocity": [1], "obs_shapes": {}, "obs_dtypes": {},
    }  # fmt: skip
    for bad in (INF, NAN, 0.0):
        with pytest.raises(ValueError, match=r"RobotSpec\.control_hz must be a finite number > 0"):
            RobotSpec(**spec, control_hz=bad)
