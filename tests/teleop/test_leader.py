"""Leader-arm teleoperation on two virtual serial arms (MuJoCo servos answering real packets on ptys).

The leader speaks Dynamixel 2.0, the follower Feetech STS: one mapping across two protocols. Neither arm
is calibrated, so each reads its horns' mount offsets (120, -85, 200, -160, 45, -30 ticks, the same on
both emulated arms) on top of the joint angle; the follower is driven to the leader's *reading*, which
puts it at the leader's physical pose. Tolerance 0.03 rad: a settled emulated servo sits within 6 mrad of
its goal plus half a tick (tests/hardware/test_serial_bus.py derives it).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import validate
from gipo_robot.teleop.devices import TeleopError
from gipo_robot.teleop.leader import JointMapping, LeaderArmDevice

pytest.importorskip("dynamixel_sdk")
pytest.importorskip("scservo_sdk")
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.serial_bus import SerialArm

MOUNT = np.array([120, -85, 200, -160, 45, -30]) * 2 * np.pi / 4096  # rad, the uncalibrated reading offset
POSE = np.array([0.3, -0.2, 0.4, 0.1, -0.5, 0.6])  # rad, inside every joint's limits
TOL = 0.03


@pytest.fixture(scope="module")
def arms():
    with VirtualServoBus("dynamixel") as leader_bus, VirtualServoBus("feetech") as follower_bus:
        yield leader_bus, follower_bus


def test_the_leader_pose_becomes_the_follower_joint_action(arms):
    leader_bus, follower_bus = arms
    follower_spec = SerialArm.from_config(follower_bus.robot_config()).spec
    device = LeaderArmDevice(SerialArm.from_config(leader_bus.robot_config()), follower_spec)
    with device:
        assert leader_bus.state()["torque"] == [False] * 6  # limp, so a human can move it
        leader_bus.move_by_hand(POSE)
        command = device.poll()
        assert command.events == ("start",)  # no event device: episodes start by themselves
        expected = follower_spec.to_normalized(POSE + MOUNT)
        np.testing.assert_allclose(command.action, expected, atol=0.01)
        # A mapping that mirrors joint 0 and shifts joint 1 by 0.1 rad.
        device.mapping = JointMapping((0, 1, 2, 3, 4, 5), (-1.0, 1, 1, 1, 1, 1), (0.0, 0.1, 0, 0, 0, 0))
        targets = device.targets()
        assert targets[0] == pytest.approx(-(POSE + MOUNT)[0], abs=0.01)
        assert targets[1] == pytest.approx((POSE + MOUNT)[1] + 0.1, abs=0.01)


def test_record_mirrors_the_leader_onto_the_follower(arms, tmp_path):
    leader_bus, follower_bus = arms
    leader_bus.move_by_hand(np.zeros(6))
    leader_cfg, follower_cfg = tmp_path / "leader.json", tmp_path / "follower.json"
    leader_cfg.write_text(json.dumps(leader_bus.robot_config(name="leader")))
    follower_cfg.write_text(json.dumps(follower_bus.robot_config(name="follower")))
    out = tmp_path / "leader.zarr"

    def operator() -> None:  # the human moves the leader half a second into the episode
        time.sleep(0.5)
        leader_bus.move_by_hand(POSE)

    hand = threading.Thread(target=operator)
    hand.start()
    result = CliRunner().invoke(
        app,
        ["record", "--robot", str(follower_cfg), "--device", "leader", "--leader", str(leader_cfg),
         "--max-seconds", "3", "--out", str(out), "--json"],
    )  # fmt: skip
    hand.join()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["saved"] == [0] and summary["episodes"][0]["end"] == "time_limit"
    # 3 s at the arm's 30 Hz = 90 steps.
    assert summary["steps"] == 90
    store = validate(out)
    ep = store.episode(0)
    # The limp leader sags under gravity after the hand lets go (friction holds it only near its zero
    # pose), so compare with where it really is: the follower mirrors it, in reading and in physics.
    leader_q = np.array(leader_bus.state()["q"])
    assert np.abs(leader_q - POSE).max() < 0.15  # it did move to (about) the pose
    np.testing.assert_allclose(ep["obs.joint_pos"][-1], leader_q + MOUNT, atol=TOL)
    np.testing.assert_allclose(follower_bus.state()["q"], leader_q, atol=TOL)


def test_leader_errors_name_the_problem(arms, tmp_path):
    leader_bus, follower_bus = arms
    follower_spec = SerialArm.from_config(follower_bus.robot_config()).spec
    leader = SerialArm.from_config(leader_bus.robot_config())
    with pytest.raises(TeleopError, match="joint mapping has 2 entries, the follower has 6"):
        LeaderArmDevice(leader, follower_spec, JointMapping((0, 1), (1.0, 1.0), (0.0, 0.0)))
    with pytest.raises(TeleopError, match="reads leader joint 9, the leader has 6"):
        LeaderArmDevice(leader, follower_spec, JointMapping((9, 1, 2, 3, 4, 5), (1.0,) * 6, (0.0,) * 6))
    bad = tmp_path / "map.json"
    bad.write_text('{"index": [0, 1, 2, 3, 4, 5], "sign": [2, 1, 1, 1, 1, 1]}')
    with pytest.raises(ValueError, match="sign entries must be"):
        JointMapping.load(bad, 6)
    bad.write_text('{"indices": [0]}')
    with pytest.raises(ValueError, match=r"map\.json: unknown joint-mapping keys \['indices'\]"):
        JointMapping.load(bad, 6)
    result = CliRunner().invoke(
        app,
        ["record", "--robot", "sim:Lift", "--device", "leader", "--leader", "x.json", "--out",
         str(tmp_path / "y.zarr"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1 and "needs --max-seconds" in result.stdout
