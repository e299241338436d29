"""``units = "lerobot"``: the LeRobot loop composes. A follower in LeRobot's units observes and commands
exactly LeRobot's values (virtual Feetech arm, LeRobot's own driver and calibration); a dataset LeRobot
recorded in those units converts with ``convert --robot``; an ACT LeRobot trained on it is wrapped with the
robot's spec and deployed behind the guard; a leader follows its follower's units."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", reason=SKIP_REASON)

from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import EpisodeStore
from gipo_robot.hardware.config import load_robot
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.robot import RobotSpec
from tests.lerobot.virtual_so101 import K, lerobot_calibrate, lerobot_config

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """LeRobot's calibration of the follower, by LeRobot's own procedure, on a first virtual arm."""
    folder = tmp_path_factory.mktemp("calibration")
    with pytest.MonkeyPatch.context() as mp, VirtualServoBus("feetech") as bus:
        data = lerobot_calibrate(bus, folder, "robot", "so101_follower", "follower", mp)
    return folder, data


def follower(path, port, folder, **extra):
    table = {"type": "so101_follower", "port": port, "id": "follower", "calibration_dir": str(folder)}
    return lerobot_config(path / "follower.json", "robot", table, **extra)


def test_the_spec_holds_the_calibrated_ranges_in_lerobots_units(tmp_path, calibration):
    folder, data = calibration
    arm = load_robot(follower(tmp_path, "/dev/null-virtual", folder, units="lerobot"))  # not connected
    rad = load_robot(follower(tmp_path, "/dev/null-virtual", folder)).spec
    spec = arm.spec
    assert spec.units == "lerobot" and rad.units == "rad"
    assert spec.obs_shapes == {"state": (6,)} and spec.obs_dtypes == {"state": "float32"}
    # LeRobot 0.6's so101 follower reports its body joints in degrees (use_degrees defaults to true), the
    # gripper in 0..100 %. shoulder_pan's calibrated range [874, 3220] ticks is +-(3220 - 874) / 2 * 360 /
    # 4095 = +-103.12 degrees about its middle.
    pan = data["shoulder_pan"]
    half_deg = (pan["range_max"] - pan["range_min"]) / 2 * 360 / 4095
    assert half_deg == pytest.approx(103.12, abs=0.01)
    assert (spec.joint_low[0], spec.joint_high[0]) == pytest.approx((-half_deg, half_deg))
    assert (spec.joint_low[5], spec.joint_high[5]) == (0.0, 100.0)
    np.testing.assert_array_equal(spec.action_low, spec.joint_low)
    np.testing.assert_array_equal(spec.action_high, spec.joint_high)
    # Its rad/s limit in degrees/s: times 180 / pi.
    assert spec.max_joint_velocity[0] == pytest.approx(np.degrees(rad.max_joint_velocity[0]))
    # The gripper: 100 % is its whole range, (3044 - 1930) ticks, so rad/s divided by that span / 100.
    grip = data["gripper"]
    per_percent = (grip["range_max"] - grip["range_min"]) * K / 100
    assert spec.max_joint_velocity[5] == pytest.approx(rad.max_joint_velocity[5] / per_percent)
    # An old store's robot has no units: it reads as rad.
    old = {k: v for k, v in rad.to_dict().items() if k != "units"}
    assert RobotSpec.from_dict(old).units == "rad"


def test_range_mode_gives_minus_100_to_100(tmp_path, calibration):
    folder, _ = calibration
    table = {
        "type": "so101_follower",
        "port": "/dev/null-virtual",
        "id": "follower",
        "calibration_dir": str(folder),
        "use_degrees": False,
    }
    spec = load_robot(lerobot_config(tmp_path / "pct.json", "robot", table, units="lerobot")).spec
    np.testing.assert_array_equal(spec.joint_low, [-100] * 5 + [0])
    np.testing.assert_array_equal(spec.joint_high, [100] * 6)


def test_it_observes_and_commands_exactly_lerobots_values(tmp_path, calibration):
    folder, _ = calibration
    with VirtualServoBus("feetech") as bus:
        arm = load_robot(follower(tmp_path, bus.port, folder, units="lerobot"))
        seen, sent = [], []
        observe, send = arm.device.get_observation, arm.device.send_action
        arm.device.get_observation = lambda: seen.append(observe()) or seen[-1]
        arm.device.send_action = lambda action: sent.append(action) or send(action)
        with arm:
            obs = arm.observe()
            expected = np.array([seen[-1][f"{j}.pos"] for j in JOINTS], dtype=np.float32)
            np.testing.assert_array_equal(obs["state"], expected)
            assert obs["state"].dtype == np.float32 and set(obs) == {"state"}
            # A normalised command goes to LeRobot's send_action as spec.to_physical, unchanged in value...
            action = np.array([0.2, -0.1, 0.3, 0.0, -0.4, 0.5])
            returned = arm.act(action)
            physical = arm.spec.to_physical(action)  # pan: 0.2 * 103.12 degrees; gripper: 75 %
            assert physical[0] == pytest.approx(0.2 * arm.spec.joint_high[0]) and physical[5] == 75.0
            assert sent[-1] == {f"{j}.pos": pytest.approx(v) for j, v in zip(JOINTS, physical, strict=True)}
            np.testing.assert_allclose(returned, action)
            goal_ours = bus.state()["goal_q"]
            # ...and lands where LeRobot's own send_action of that physical value puts the servos' goals.
            send({f"{j}.pos": 0.0 for j in JOINTS})
            assert bus.state()["goal_q"] != goal_ours
            send({f"{j}.pos": float(v) for j, v in zip(JOINTS, physical, strict=True)})
            assert bus.state()["goal_q"] == goal_ours


def test_a_leader_follows_its_followers_units(tmp_path, calibration):
    from gipo_robot.teleop.devices import TeleopError
    from gipo_robot.teleop.from_lerobot import LeRobotLeader
    from gipo_robot.teleop.leader import LeaderArmDevice

    folder, _ = calibration
    with pytest.MonkeyPatch.context() as mp, VirtualServoBus("feetech") as bus:
        lerobot_calibrate(bus, folder, "teleop", "so101_leader", "leader", mp)
    with VirtualServoBus("feetech") as leader_bus, VirtualServoBus("feetech") as follower_bus:
        table = {"type": "so101_leader", "port": leader_bus.port, "id": "leader"}
        table["calibration_dir"] = str(folder)
        leader = lerobot_config(tmp_path / "leader.json", "teleop", table)
        config = follower(tmp_path, follower_bus.port, folder, units="lerobot")
        spec = load_robot(config).spec
        # Mixing is refused, not converted silently: a leader read in rad cannot drive LeRobot's units.
        with pytest.raises(TeleopError, match=r"'rad' units, follower .* takes 'lerobot'"):
            LeaderArmDevice(LeRobotLeader.from_config(table, str(leader)), spec)
        device = LeaderArmDevice.from_options(spec, leader=str(leader))
        assert device.leader.spec.units == "lerobot"
        pose = np.array([0.4, -0.3, 0.5, 0.2, -0.4, 0.6])  # where the operator puts the leader, rad
        leader_bus.move_by_hand(pose)
        out = tmp_path / "rec.zarr"
        args = ["record", "--robot", str(config), "--device", "leader", "--leader", str(leader)]
        result = CliRunner().invoke(app, [*args, "--max-seconds", "1.5", "--out", str(out), "--json"])
        leader_q, follower_q = np.array(leader_bus.state()["q"]), np.array(follower_bus.state()["q"])
    assert result.exit_code == 0, result.output
    store = EpisodeStore.open(out)
    assert RobotSpec.from_dict(store.robot).units == "lerobot"
    assert store.schema["obs.state"].shape == (6,)
    episode = store.episode(0)
    # Both arms were calibrated alike, so the leader's LeRobot values are the follower's targets: the
    # follower ends where the leader is, and records LeRobot's values, the last one at the last target
    # (0.04 rad is at most 2.3 degrees, or 2.3 % of the gripper's 1.71 rad range).
    np.testing.assert_allclose(follower_q, leader_q, atol=0.04)
    np.testing.assert_allclose(episode["obs.state"][-1], spec.to_physical(episode["action"][-1]), atol=2.5)
