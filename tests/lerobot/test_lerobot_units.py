"""``units = "lerobot"``: the LeRobot loop composes. A follower in LeRobot's units observes and commands
exactly LeRobot's values (virtual Feetech arm, LeRobot's own driver and calibration); a dataset LeRobot
recorded in those units converts with ``convert --robot``; an ACT LeRobot trained on it is wrapped with the
robot's spec and deployed behind the guard; a leader follows its follower's units."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", reason=SKIP_REASON)

import torch
from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import EpisodeStore
from gipo_robot.hardware.config import load_robot
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.robot import RobotSpec
from tests.lerobot.virtual_so101 import K, follower, lerobot_calibrate, lerobot_config

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


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
        result = CliRunner().invoke(app, [*args, "--max-seconds", "2.5", "--out", str(out), "--json"])
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


def record_in_lerobot_units(root, spec, lengths=(20, 14, 17), *, env_state=True):
    """A dataset recorded with LeRobot's own API in the arm's LeRobot units, as ``lerobot-record`` stores
    it: ``observation.state`` and ``action`` named ``<motor>.pos``, values inside each motor's calibrated
    range; ``observation.environment_state`` repeats the state (ACT needs an image or an environment
    state, and the virtual arm has no camera). Returns the episodes as added."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    names = [f"{j}.pos" for j in JOINTS]
    vector = {"dtype": "float32", "shape": (6,), "names": names}
    keys = ("observation.state", "observation.environment_state", "action")
    features = {k: vector for k in keys if env_state or k != keys[1]}
    dataset = LeRobotDataset.create(
        "local/arm", fps=30, features=features, root=root, robot_type="so101_follower"
    )
    episodes = []
    for e, length in enumerate(lengths):
        rng = np.random.default_rng(e)
        t = np.arange(length + 1)[:, None] / 30
        z = 0.6 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6, 6) * t + rng.uniform(0, 6.3, 6))  # normalised
        path = spec.to_physical(z).astype(np.float32)  # degrees and % (T + 1, J)
        episode = {keys[0]: path[:-1], keys[1]: path[:-1], keys[2]: path[1:]}
        episode = {k: v for k, v in episode.items() if k in features}
        for i in range(length):
            dataset.add_frame({**{k: v[i] for k, v in episode.items()}, "task": "reach"})
        dataset.save_episode()
        episodes.append(episode)
    dataset.finalize()
    return episodes


@pytest.fixture(scope="module")
def lerobot_unit_data(tmp_path_factory, calibration):
    """``(dataset folder, episodes, robot config)``: LeRobot-unit data of the follower (port unused)."""
    folder, _ = calibration
    root = tmp_path_factory.mktemp("lerobot_units")
    config = follower(root, "/dev/null-virtual", folder, units="lerobot")
    episodes = record_in_lerobot_units(root / "dataset", load_robot(config).spec)
    return root / "dataset", episodes, config


def test_convert_with_robot_normalises_the_actions_by_its_spec(tmp_path, lerobot_unit_data, calibration):
    src, episodes, config = lerobot_unit_data
    spec = load_robot(config).spec
    out = tmp_path / "store.zarr"
    result = CliRunner().invoke(app, ["convert", str(src), str(out), "--robot", str(config), "--json"])
    assert result.exit_code == 0, result.output
    store = EpisodeStore.open(out)
    assert RobotSpec.from_dict(store.robot).units == "lerobot"
    for i, episode in enumerate(episodes):
        steps = store.episode(i)
        np.testing.assert_array_equal(steps["obs.state"], episode["observation.state"])  # unchanged
        expected = spec.to_normalized(episode["action"]).astype(np.float32)
        np.testing.assert_array_equal(steps["action"], expected)
        assert np.abs(steps["action"]).max() <= 0.6 + 1e-5  # the path was 0.6 of each range
        # the round trip through the spec gives LeRobot's values back (to float32 rounding)
        np.testing.assert_allclose(spec.to_physical(steps["action"]), episode["action"], rtol=1e-5, atol=1e-4)
    # Without --robot the values stay LeRobot's.
    plain = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "plain.zarr"), "--json"])
    assert plain.exit_code == 0, plain.output
    np.testing.assert_array_equal(
        EpisodeStore.open(tmp_path / "plain.zarr").episode(0)["action"], episodes[0]["action"]
    )
    # A robot in rad, or one whose motors the dataset does not name, is refused naming the file and key.
    folder, _ = calibration
    rad = follower(tmp_path, "/dev/null-virtual", folder)
    bad = CliRunner().invoke(
        app, ["convert", str(src), str(tmp_path / "a.zarr"), "--robot", str(rad), "--json"]
    )
    assert bad.exit_code == 1 and 'units = \\"lerobot\\"' in bad.stdout, bad.output
    other = tmp_path / "other"
    import shutil

    shutil.copytree(src, other)
    info = json.loads((other / "meta" / "info.json").read_text())
    info["features"]["action"]["names"] = [f"{j}.pos" for j in reversed(JOINTS)]
    (other / "meta" / "info.json").write_text(json.dumps(info))
    bad = CliRunner().invoke(
        app, ["convert", str(other), str(tmp_path / "b.zarr"), "--robot", str(config), "--json"]
    )
    assert bad.exit_code == 1
    error = json.loads(bad.stdout)["error"]
    assert "meta/info.json: feature 'action' names ['gripper.pos'" in error and str(other) in error
    assert not (tmp_path / "b.zarr").exists()


def test_an_act_trained_on_lerobot_units_drives_the_arm_through_its_spec(tmp_path, lerobot_unit_data):
    from lerobot.common.control_utils import predict_action
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    from gipo_robot.policies import save_policy
    from gipo_robot.policies.from_lerobot import export_lerobot, load_finetuned, load_lerobot_policy
    from tests.lerobot.made_by_lerobot import train_act

    src, episodes, config = lerobot_unit_data
    spec = load_robot(config).spec
    checkpoint = train_act(src, tmp_path / "train")  # LeRobot's training, on LeRobot's values
    inputs = {"observation.state": {"state": [6]}, "observation.environment_state": {"state": [6]}}
    policy = load_lerobot_policy(checkpoint, inputs=inputs, robot_spec=spec)
    act = ACTPolicy.from_pretrained(checkpoint)
    pre, post = make_pre_post_processors(act.config, pretrained_path=str(checkpoint))
    state = episodes[0]["observation.state"][5]
    with torch.no_grad():
        ours = policy.env_mean(policy.normalized_chunk({"state": torch.from_numpy(state)[None]}))[0]
    act.reset()
    observation = {"observation.state": state, "observation.environment_state": state}
    cpu = torch.device("cpu")
    theirs = torch.cat(
        [predict_action(dict(observation), act, cpu, pre, post, use_amp=False) for _ in range(4)]
    )
    # LeRobot's actions are degrees and %; ours are the robot's normalised actions of exactly those.
    assert theirs.abs().max() > 2.0
    np.testing.assert_allclose(ours.numpy(), spec.to_normalized(theirs.numpy()), rtol=1e-5, atol=1e-5)
    # The density's scale is LeRobot's post-processor slope times 2 / (high - low) of the robot.
    lerobot_only = load_lerobot_policy(checkpoint, inputs=inputs)
    np.testing.assert_allclose(
        policy.action_scale.numpy(),
        lerobot_only.action_scale.numpy() * 2 / (spec.action_high - spec.action_low),
        rtol=1e-5,
    )
    # A robot in rad is refused: its normalised actions are not LeRobot's values.
    with pytest.raises(Exception, match=r"takes units 'rad'.*units = \"lerobot\""):
        load_lerobot_policy(
            checkpoint, inputs=inputs, robot_spec=RobotSpec.from_dict({**spec.to_dict(), "units": "rad"})
        )
    # Saved and loaded back it keeps the robot's range; exported to LeRobot it is LeRobot's own ACT again.
    save_policy(tmp_path / "ckpt", policy)
    again = load_finetuned(tmp_path / "ckpt")
    with torch.no_grad():
        torch.testing.assert_close(
            again.env_mean(again.normalized_chunk({"state": torch.from_numpy(state)[None]}))[0], ours
        )
    export_lerobot(again, tmp_path / "export")
    exported = ACTPolicy.from_pretrained(tmp_path / "export")
    pre2, post2 = make_pre_post_processors(exported.config, pretrained_path=str(tmp_path / "export"))
    again_theirs = torch.cat(
        [predict_action(dict(observation), exported, cpu, pre2, post2, use_amp=False) for _ in range(4)]
    )
    torch.testing.assert_close(again_theirs, theirs, rtol=0, atol=0)

    # deploy runs it on the virtual arm through LeRobot's driver, behind the guard
    with VirtualServoBus("feetech") as bus:
        arm = follower(
            tmp_path, bus.port, json.loads(config.read_text())["robot"]["calibration_dir"], units="lerobot"
        )
        out = tmp_path / "deploy.zarr"
        args = ["deploy", str(tmp_path / "ckpt"), "--robot", str(arm), "--max-steps", "30", "--out", str(out)]
        result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 30 and summary["error"] is None
    # The guard ran in LeRobot's units: it ramped the untrained ACT's jumps (delta) and held targets within
    # max_joint_velocity (degrees/s, %/s) of the position it measured in 'state' (velocity).
    assert summary["interventions"]["delta"] > 0 and summary["interventions"]["velocity"] > 0
    steps = EpisodeStore.open(out).episode(0)
    assert steps["obs.state"].shape == (30, 6) and steps["obs.state"].dtype == np.float32
    sent = spec.to_physical(steps["action"])  # the commands the guard let through, degrees and %
    assert np.all(np.abs(np.diff(sent, axis=0)) <= spec.max_joint_velocity * spec.period + 1e-6)
    assert np.abs(steps["obs.state"][-1] - steps["obs.state"][0]).max() > 1.0  # and the arm moved


def test_train_bc_on_a_converted_store_deploys_on_the_robot(tmp_path, calibration):
    """lerobot-record's data -> convert --robot -> train-bc -> deploy --robot: the policy observes 'state' as
    the dataset recorded it and its normalised actions mean what the store's actions meant."""
    folder, _ = calibration
    config = follower(tmp_path, "/dev/null-virtual", folder, units="lerobot")  # the spec needs no port
    record_in_lerobot_units(tmp_path / "dataset", load_robot(config).spec, env_state=False)
    runner = CliRunner()
    store, run = tmp_path / "store.zarr", tmp_path / "bc"
    steps = ["convert", str(tmp_path / "dataset"), str(store), "--robot", str(config), "--json"]
    assert runner.invoke(app, steps).exit_code == 0
    train = ["train-bc", str(store), "--out", str(run), "--steps", "20", "--hidden", "16", "--json"]
    trained = runner.invoke(app, train)
    assert trained.exit_code == 0, trained.output
    with VirtualServoBus("feetech") as bus:
        config = follower(tmp_path, bus.port, folder, units="lerobot")
        out = tmp_path / "deploy.zarr"
        args = ["deploy", str(run), "--robot", str(config), "--max-steps", "20", "--out", str(out), "--json"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 20 and summary["error"] is None
    assert EpisodeStore.open(out).episode(0)["obs.state"].shape == (20, 6)
