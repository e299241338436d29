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
    assert set(ROBOT_TYPES) == {"sim", "dynamixel", "feetech", "ros"}
