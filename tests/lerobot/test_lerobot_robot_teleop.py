"""LeRobot's own teleoperators as gipo-robot teleop devices: an ``so101_leader`` on a second virtual Feetech
arm (LeRobot's driver, the calibration LeRobot's ``calibrate()`` wrote) records episodes with ``gipo-robot
record`` whose actions follow the leader; LeRobot's gamepad and keyboards build or fail with a clear error."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", reason=SKIP_REASON)

from lerobot.teleoperators.utils import TeleopEvents
from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import EpisodeStore
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.teleop.devices import TeleopError
from gipo_robot.teleop.from_lerobot import LeRobotDeltaDevice, lerobot_device
from tests.lerobot.virtual_so101 import lerobot_calibrate, lerobot_config

POSE = np.array([0.4, -0.3, 0.5, 0.2, -0.4, 0.6])  # where the operator puts the leader, rad
TOL = 0.04


@pytest.fixture(scope="module")
def calibrations(tmp_path_factory):
    """LeRobot's calibration of a follower and a leader, each by LeRobot's own procedure on its own arm."""
    folder = tmp_path_factory.mktemp("calibration")
    with pytest.MonkeyPatch.context() as mp:
        with VirtualServoBus("feetech") as bus:
            lerobot_calibrate(bus, folder, "robot", "so101_follower", "follower", mp)
        with VirtualServoBus("feetech") as bus:
            lerobot_calibrate(bus, folder, "teleop", "so101_leader", "leader", mp)
    return folder


@pytest.mark.parametrize("flags", [["--device", "leader", "--leader"], ["--device", "lerobot", "--teleop"]])
def test_record_with_an_so101_leader_follows_the_leader(tmp_path, calibrations, flags):
    folder = calibrations
    with VirtualServoBus("feetech") as leader_bus, VirtualServoBus("feetech") as follower_bus:
        common = {"calibration_dir": str(folder)}
        leader = lerobot_config(
            tmp_path / "leader.json", "teleop",
            {"type": "so101_leader", "port": leader_bus.port, "id": "leader", **common},
        )  # fmt: skip
        follower = lerobot_config(
            tmp_path / "follower.json", "robot",
            {"type": "so101_follower", "port": follower_bus.port, "id": "follower", **common},
        )  # fmt: skip
        out = tmp_path / "rec.zarr"

        def operator() -> None:  # the human moves the leader half a second into the episode
            time.sleep(0.5)
            leader_bus.move_by_hand(POSE)

        hand = threading.Thread(target=operator)
        hand.start()
        result = CliRunner().invoke(
            app,
            ["record", "--robot", str(follower), *flags, str(leader), "--max-seconds", "2.5",
             "--out", str(out), "--json"],
        )  # fmt: skip
        hand.join()
        leader_state, follower_state = leader_bus.state(), follower_bus.state()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["saved"] == [0] and summary["episodes"][0]["end"] == "time_limit"
    assert summary["steps"] == 75  # 2.5 s at the arm's 30 Hz
    assert leader_state["torque"] == [False] * 6  # LeRobot's leader configure: limp, a hand moves it
    store = EpisodeStore.open(out)
    episode = store.episode(0)
    spec = RobotSpec.from_dict(store.robot)
    assert spec.name == "lerobot:so101_follower:follower"
    # The limp leader sags a little once the hand lets go; the follower mirrors where it really is. Both
    # arms were calibrated alike, so their joints read alike: the follower's emulated angles equal the
    # leader's, and its last recorded joint positions equal the last action (a target in rad, normalised).
    leader_q = np.array(leader_state["q"])
    assert np.abs(leader_q - POSE).max() < 0.15
    np.testing.assert_allclose(follower_state["q"], leader_q, atol=TOL)
    actions = episode["action"]
    assert np.abs(actions[-1] - actions[0]).max() > 0.1  # the actions followed the leader's move
    np.testing.assert_allclose(episode["obs.joint_pos"][-1], spec.to_physical(actions[-1]), atol=TOL)


def ee_spec() -> RobotSpec:
    names = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
    return RobotSpec(
        name="sim:Lift", action_mode="ee_delta", action_names=names, action_low=-np.ones(7),
        action_high=np.ones(7), joint_names=("j0",), joint_low=[-1.0], joint_high=[1.0],
        max_joint_velocity=[1.0], control_hz=20.0, obs_shapes={}, obs_dtypes={},
    )  # fmt: skip


class Stick:
    """Stands in for the gamepad LeRobot's ``GamepadTeleop`` reads (its pygame ``GamepadController``)."""

    def __init__(self, deltas, gripper, end=None):
        self.deltas, self.gripper, self.end = deltas, gripper, end

    def update(self):
        pass

    def get_deltas(self):
        return self.deltas

    def gripper_command(self):
        return self.gripper

    def should_intervene(self):
        return True

    def get_episode_end_status(self):
        return self.end


def test_lerobots_gamepad_drives_an_end_effector_follower(tmp_path):
    config = lerobot_config(tmp_path / "pad.json", "teleop", {"type": "gamepad"})
    device = lerobot_device(ee_spec(), teleop=config)
    assert isinstance(device, LeRobotDeltaDevice) and device.labels_episodes
    # headless here: LeRobot's own error (pygame missing, or no gamepad) names the file
    with pytest.raises(TeleopError, match=r"pad\.json: LeRobot's gamepad cannot start: .*"):
        device.start()
    device.device.gamepad = Stick((0.5, -0.25, 1.0), "close")
    assert device.poll().events == ("start",)  # idle: episodes start by themselves
    device.begin_episode({})
    command = device.poll()
    # deltas -> dx, dy, dz; rotations 0; LeRobot's "close" (0) -> +1
    np.testing.assert_allclose(command.action, [0.5, -0.25, 1.0, 0, 0, 0, 1.0])
    assert command.events == ()
    device.device.gamepad = Stick((0.0, 0.0, 0.0), "stay", TeleopEvents.SUCCESS)
    command = device.poll()
    assert command.action[6] == 1.0  # "stay" keeps the last gripper command
    assert command.events == ("save_success",)
    device.device.gamepad = Stick((0.0, 0.0, 0.0), "open", TeleopEvents.RERECORD_EPISODE)
    command = device.poll()
    assert command.action[6] == -1.0 and command.events == ("discard",)


def test_lerobot_teleoperators_that_do_not_fit_are_refused_by_name(tmp_path, calibrations):
    pad = lerobot_config(tmp_path / "pad.json", "teleop", {"type": "gamepad"})
    joint_spec = SimpleNamespace(name="so101", action_mode="joint_position", action_names=("a",))
    with pytest.raises(TeleopError, match=r"pad\.json: LeRobot's gamepad gives end-effector deltas"):
        lerobot_device(joint_spec, teleop=pad)
    keys = lerobot_config(tmp_path / "keys.json", "teleop", {"type": "keyboard_ee"})
    try:
        import pynput  # noqa: F401
    except ImportError:  # LeRobot's own check names its extra
        with pytest.raises(
            ValueError, match=r"keys\.json: LeRobot cannot build teleop 'keyboard_ee'.*pynput"
        ):
            lerobot_device(ee_spec(), teleop=keys)
    robot_config = lerobot_config(tmp_path / "arm.json", "robot", {"type": "so101_follower", "id": "a"})
    with pytest.raises(TeleopError, match=r"arm\.json: not a LeRobot teleoperator config"):
        lerobot_device(ee_spec(), teleop=robot_config)
    uncalibrated = {"type": "so101_leader", "port": "x", "id": "other", "calibration_dir": str(calibrations)}
    other = lerobot_config(tmp_path / "other.json", "teleop", uncalibrated)
    with pytest.raises(
        TeleopError, match=r"lerobot-calibrate --teleop\.type=so101_leader .*--teleop\.id=other"
    ):
        lerobot_device(ee_spec(), teleop=other)
