"""Every simulated task's default workspace box holds where its gripper really goes.

The box (``spec.workspace_low``/``high``, :func:`gipo_robot.sim.spec.workspace_box`) is a safety limit:
if the task's own scripted expert needs the guard to clip it, the box is wrong, and every deployment on
that task would count meaningless interventions.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from gipo_robot.hardware.safety import SafetyConfig, SafetyGuard
from gipo_robot.sim.experts import PLANS, ScriptedExpert
from gipo_robot.sim.robot import SimRobot
from gipo_robot.sim.tasks import TASKS


@pytest.mark.parametrize("task", sorted(PLANS))
def test_the_scripted_expert_never_meets_the_default_box(task):
    # Before the fix, Can's box was one bin's size centred on the origin (x in +-0.195, y in +-0.245 m),
    # while the can goes from the bin at y = -0.25 to the one at y = +0.28: the expert's eef reached
    # y = 0.40 m and the guard clipped 73% of its steps, by up to the whole 4 cm step.
    robot = SimRobot(task)
    guard = SafetyGuard(robot, SafetyConfig(soft_start_steps=0, watchdog_periods=None))
    low, high = robot.spec.workspace_low, robot.spec.workspace_high
    try:
        with guard:
            obs = guard.reset(seed=0)
            expert = ScriptedExpert(task, 0.0, np.random.default_rng(0))
            eef = [obs["robot0_eef_pos"]]
            while not (status := guard.task_status()).done:
                guard.act(expert.act(robot.env.privileged_state()))
                eef.append(guard.observe()["robot0_eef_pos"])
            assert status.success
            assert guard.interventions["workspace"] == 0
        eef = np.array(eef)
        assert np.all(eef >= low) and np.all(eef <= high)
    finally:
        robot.close()


def test_can_box_spans_both_bins_and_square_box_holds_its_pegs():
    can = SimRobot("Can")
    try:
        rs = can.env._rs
        np.testing.assert_allclose(
            can.spec.workspace_low[:2], [rs.bin1_pos[0] - 0.195, rs.bin1_pos[1] - 0.245]
        )
        np.testing.assert_allclose(
            can.spec.workspace_high[:2], [rs.bin2_pos[0] + 0.195, rs.bin2_pos[1] + 0.245]
        )
        assert can.spec.workspace_low[2] == pytest.approx(0.8)
        assert can.spec.workspace_high[2] == pytest.approx(1.3)
    finally:
        can.close()
    square = SimRobot("Square")
    try:
        square.connect()
        obs = square.reset(seed=0)
        rs = square.env._rs
        pegs = rs.sim.data.body_xpos[[rs.peg1_body_id, rs.peg2_body_id]]
        for point in (*pegs, obs["robot0_eef_pos"]):
            assert np.all(point >= square.spec.workspace_low) and np.all(point <= square.spec.workspace_high)
    finally:
        square.close()


def test_every_task_gets_a_box_above_its_work_surface():
    for task in TASKS:
        robot = SimRobot(task, horizon=5)
        try:
            low, high = robot.spec.workspace_low, robot.spec.workspace_high
            assert np.all(high - low > 0.3), task
            robot.connect()
            eef = robot.reset(seed=0)["robot0_eef_pos"]
            assert np.all(eef > low) and np.all(eef < high), task
        finally:
            robot.close()
