"""SimRobot: the simulator behind the Robot contract; its spec, its lifecycle, and a SafetyGuard over it."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.hardware.robot import RobotError, RobotSpec
from gipo_robot.hardware.safety import SafetyConfig, SafetyGuard
from gipo_robot.sim.robot import SimRobot
from gipo_robot.sim.spec import PANDA_MAX_JOINT_VELOCITY, UNLIMITED_JOINT_RANGE

# Every guard limit off unless a test turns it on.
OFF = {"max_step": 100.0, "velocity_margin": None, "soft_start_steps": 0, "watchdog_periods": None}


@pytest.fixture(scope="module")
def sim():
    robot = SimRobot("Lift", horizon=200)
    yield robot
    robot.close()


# ---------------------------------------------------------------------------------------------- the spec


def test_spec_is_the_envs_robot_spec_in_the_robot_vocabulary(sim):
    spec = sim.spec
    assert isinstance(spec, RobotSpec) and spec is sim.env.robot_spec
    assert spec.name == "sim:Lift" and spec.action_mode == "ee_delta"
    assert spec.action_names == ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
    assert spec.control_hz == 20.0 and spec.cameras == ()
    assert spec.joint_names == tuple(f"robot0_joint{i}" for i in range(1, 8))
    # the Panda's model limits, e.g. joint 4 is [-3.0718, -0.0698] rad; velocities from the datasheet
    assert spec.joint_low[3] == pytest.approx(-3.0718) and spec.joint_high[3] == pytest.approx(-0.0698)
    np.testing.assert_array_equal(spec.max_joint_velocity, PANDA_MAX_JOINT_VELOCITY)
    # Lift's table: centre (0, 0, 0.8) m, 0.8 x 0.8 m; the box is its footprint up to 0.5 m above it
    np.testing.assert_allclose(spec.workspace_low, [-0.4, -0.4, 0.8])
    np.testing.assert_allclose(spec.workspace_high, [0.4, 0.4, 1.3])
    assert spec.eef_feature == "robot0_eef_pos"
    assert set(spec.obs_shapes) == set(sim.env.observation_space.spaces)  # gymnasium sorts its keys
    assert RobotSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()


def test_joint_delta_mode_is_named_in_the_robot_vocabulary():
    robot = SimRobot("Lift", action_mode="joint_delta", horizon=5)
    try:
        assert robot.spec.action_mode == "joint_delta"
        assert robot.spec.action_names == (*(f"dq{i}" for i in range(7)), "gripper")
    finally:
        robot.close()


def test_a_model_without_joint_limits_gets_one_turn_either_way():
    # Kinova3's joints 1, 3, 5 and 7 are continuous (no range in the model); a RobotSpec's limits are finite
    robot = SimRobot("Lift", robot="Kinova3", horizon=5)
    try:
        spec = robot.spec
        np.testing.assert_allclose(spec.joint_low[[0, 2, 4, 6]], UNLIMITED_JOINT_RANGE[0])
        np.testing.assert_allclose(spec.joint_high[[0, 2, 4, 6]], UNLIMITED_JOINT_RANGE[1])
        assert spec.joint_high[1] == pytest.approx(2.41)  # a limited joint keeps the model's range
    finally:
        robot.close()


# ---------------------------------------------------------------------------------------------- lifecycle


def test_lifecycle_errors_name_the_robot():
    robot = SimRobot("Lift", horizon=2)
    try:
        with pytest.raises(RobotError, match="sim:Lift: not connected"):
            robot.reset(seed=0)
        robot.connect()
        with pytest.raises(RobotError, match=r"sim:Lift: observe\(\) before reset\(\)"):
            robot.observe()
        with pytest.raises(RobotError, match=r"sim:Lift: act\(\) before reset\(\)"):
            robot.act(np.zeros(7))
        robot.reset(seed=0)
        sent = robot.act(np.array([0, 0, 2.0, 0, 0, 0, -1]))  # out of range: clipped, and the clip returned
        assert sent[2] == 1.0
        robot.act(np.zeros(7))
        assert robot.task_status().truncated
        with pytest.raises(RobotError, match="episode has ended"):
            robot.act(np.zeros(7))
    finally:
        robot.close()


# ---------------------------------------------------------------------------------------------- guarded


def test_workspace_box_keeps_the_simulated_arm_inside(sim):
    # Full +z (a = 1: dz = 0.05 m/step) for 15 steps under a ceiling 3 cm above the start. The bare arm
    # rises well past it; the guarded one stops at the ceiling (1 cm allowance for controller overshoot).
    up = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0])
    sim.connect()
    z0 = float(sim.reset(seed=0)["robot0_eef_pos"][2])
    for _ in range(15):
        sim.act(up)
    bare_z = float(sim.observe()["robot0_eef_pos"][2])
    assert bare_z > z0 + 0.05

    ceiling = z0 + 0.03
    guard = SafetyGuard(sim, SafetyConfig(workspace_low=[-1, -1, 0], workspace_high=[1, 1, ceiling], **OFF))
    guard.connect()
    guard.reset(seed=0)
    zs = []
    for _ in range(15):
        guard.observe()
        guard.act(up)
        zs.append(float(guard.observe()["robot0_eef_pos"][2]))
    assert max(zs) <= ceiling + 0.01
    assert max(zs) > ceiling - 0.01  # it did get there: the box clips, it does not freeze the arm
    assert guard.interventions["workspace"] > 0


def test_soft_start_slows_the_first_simulated_steps(sim):
    # ee_delta default max_step is the action range's half-width (dz: 0.05 m); a 10-step ramp from 0.1
    # lets the first step command 0.1 * 0.05 = 0.005 m, i.e. normalised dz 0.1, then 0.19, 0.28, ...
    up = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0])
    guard = SafetyGuard(
        sim, SafetyConfig(max_step=None, soft_start_steps=10, soft_start_fraction=0.1, watchdog_periods=None)
    )
    guard.connect()
    guard.reset(seed=0)
    sent = [guard.act(up)[2] for _ in range(3)]
    np.testing.assert_allclose(sent, [0.1, 0.19, 0.28])
    assert guard.act(up)[6] == -1.0  # the gripper command is a level, never ramped


def test_a_simulated_robot_with_cameras_renders_fast_unless_asked_for_exact():
    from gipo_robot.hardware.config import load_robot

    for spec, quality in (
        ("sim:Lift?cameras=agentview&image_size=32", "fast"),
        ("sim:Lift?cameras=agentview&image_size=32&render_quality=exact", "exact"),
    ):
        robot = load_robot(spec)
        try:
            assert robot.env.config.render_quality == quality
        finally:
            robot.close()
