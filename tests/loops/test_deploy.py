"""deploy: the policy/robot check before motion, the paced loop, recording, and robot errors mid-episode."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from gipo_robot.datasets import DatasetError, EpisodeStore
from gipo_robot.hardware.robot import RobotError
from gipo_robot.hardware.safety import SafetyConfig
from gipo_robot.loops.actor import check_policy_fits
from gipo_robot.loops.deploy import DeployConfig, deploy, open_deploy_store
from gipo_robot.policies import GaussianPolicy, PolicyConfig, load_policy, save_policy
from gipo_robot.sim.robot import SimRobot
from tests.hardware.test_safety import RecordingArm

UP = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0]  # full +z, gripper open


def constant_policy(low_dim: dict, action: list[float], chunk: int = 2, names=None) -> GaussianPolicy:
    """mode() = the constant ``action`` for every chunk step (zero weights, bias = action)."""
    p = GaussianPolicy(
        PolicyConfig(low_dim=low_dim, action_dim=len(action), chunk=chunk, hidden=[8], action_names=names)
    )
    with torch.no_grad():
        p.mean_head.weight.zero_()
        p.mean_head.bias.copy_(torch.tensor(action * chunk))
    return p


@pytest.fixture(scope="module")
def sim():
    robot = SimRobot("Lift", horizon=200)
    yield robot
    robot.close()


@pytest.fixture
def lift_checkpoint(tmp_path, sim):
    policy = constant_policy({"robot0_eef_pos": [3], "object": [10]}, UP, names=list(sim.spec.action_names))
    return save_policy(tmp_path / "ckpt", policy)


# ---------------------------------------------------------------------------------------------- pacing


def test_mismatched_policy_is_refused_before_anything_moves(tmp_path, sim):
    store = open_deploy_store(tmp_path / "s.zarr", sim.spec)
    wrong_dim = constant_policy({"robot0_eef_pos": [3]}, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="action dimension is 7, the policy outputs 3"):
        deploy(wrong_dim, sim, store, DeployConfig(max_steps=3))
    wrong_shape = constant_policy({"robot0_eef_pos": [4]}, UP)
    with pytest.raises(ValueError, match=r"'robot0_eef_pos' has shape \[3\], the policy expects \[4\]"):
        deploy(wrong_shape, sim, store, DeployConfig(max_steps=3))
    missing = constant_policy({"joint_pos": [7]}, UP)
    with pytest.raises(ValueError, match="'joint_pos' is not provided"):
        deploy(missing, sim, store, DeployConfig(max_steps=3))
    names = ["dq0", "dq1", "dq2", "dq3", "dq4", "dq5", "gripper"]
    wrong_names = constant_policy({"robot0_eef_pos": [3]}, UP, names=names)
    with pytest.raises(ValueError, match="trained on actions"):
        check_policy_fits(wrong_names.config, sim.spec)
    assert not sim.is_connected and store.n_episodes == 0


def test_a_robot_that_cannot_tell_when_to_stop_needs_max_steps(tmp_path):
    arm = RecordingArm()
    policy = constant_policy({"joint_pos": [3]}, [0.0, 0.0, 0.0])
    store = open_deploy_store(tmp_path / "s.zarr", arm.spec)
    with pytest.raises(ValueError, match="give max_steps"):
        deploy(policy, arm, store, DeployConfig(max_steps=None))


# ---------------------------------------------------------------------------------------------- on SimRobot


def test_deploy_on_sim_records_what_the_guard_sent(tmp_path, sim, lift_checkpoint):
    policy = load_policy(lift_checkpoint)
    store = open_deploy_store(tmp_path / "deploy.zarr", sim.spec)
    config = DeployConfig(episodes=2, max_steps=6, task="Lift")  # default safety: 20-step soft start
    result = deploy(policy, sim, store, config, policy_name=str(lift_checkpoint))
    assert result.error is None and len(result.episodes) == 2
    store = EpisodeStore.open(tmp_path / "deploy.zarr")
    assert store.n_episodes == 2 and store.n_steps == 12
    meta = store.episode_meta(0)
    assert meta.source == "deploy" and meta.task == "Lift" and meta.success is False
    ep = store.episode(0)
    # The policy always asks dz = 1; the soft-start ramp (0.1 -> 1 over 20 steps) lets through
    # 0.1 + 0.9 * k / 20 = 0.1, 0.145, 0.19, ... : the store holds the command sent, not the policy's.
    np.testing.assert_allclose(ep["action"][:, 2], 0.1 + 0.045 * np.arange(6), atol=1e-6)
    np.testing.assert_allclose(ep["action"][:, 6], -1.0)
    # Paced at 20 Hz: steps 50 ms apart (wide bounds: a loaded machine).
    gaps = np.diff(ep["timestamp"])
    assert 0.04 < np.median(gaps) < 0.08 and ep["timestamp"][0] == pytest.approx(0.0, abs=0.01)
    assert ep["obs.robot0_eef_pos"].shape == (6, 3)
    extra = meta.extra
    assert extra["safety"]["interventions"]["delta"] == 6
    assert extra["success_known"] is True and extra["error"] is None
    assert extra["timing"]["period_ms"] == 50.0 and extra["timing"]["p99_period_error_ms"] is not None
    assert extra["policy"] == str(lift_checkpoint)
    summary = result.to_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["steps"] == 12 and summary["interventions"]["delta"] == 12

    # A second run appends to the same store; a store for another robot is refused.
    deploy(policy, sim, EpisodeStore.open(tmp_path / "deploy.zarr", "a"), DeployConfig(max_steps=2))
    assert EpisodeStore.open(tmp_path / "deploy.zarr").n_episodes == 3
    with pytest.raises(DatasetError, match=r"obs\.joint_pos"):
        open_deploy_store(tmp_path / "deploy.zarr", RecordingArm().spec)


def test_deploy_runs_until_the_sim_episode_ends(tmp_path, sim, lift_checkpoint):
    # No max_steps: the episode ends when the env truncates at its horizon (200 steps), unpaced.
    store = open_deploy_store(tmp_path / "s.zarr", sim.spec)
    result = deploy(load_policy(lift_checkpoint), sim, store, DeployConfig(realtime=False))
    assert result.episodes[0]["steps"] == 200
    assert bool(store.episode(0)["truncated"][-1]) is True


# ---------------------------------------------------------------------------------------------- robot errors


class FailingArm(RecordingArm):
    """Raises RobotError on act number ``fail_at`` (0-based), as an unplugged servo bus does."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def act(self, action):
        if len(self.received) == self.fail_at:
            raise RobotError("recording-arm: no reply from servo 2 on /dev/ttyUSB0 (bus gone)")
        return super().act(action)


def test_robot_error_mid_episode_commits_a_failed_episode_and_stops(tmp_path):
    arm = FailingArm(fail_at=3)
    policy = constant_policy({"joint_pos": [3]}, [0.01, 0.0, -0.2])
    store = open_deploy_store(tmp_path / "s.zarr", arm.spec)
    safety = SafetyConfig(watchdog_periods=None)
    result = deploy(policy, arm, store, DeployConfig(episodes=3, max_steps=10, safety=safety))
    assert result.error is not None and "bus gone" in result.error
    assert len(result.episodes) == 1  # the run stopped: episodes 1 and 2 never started
    assert arm.holds >= 1
    assert store.n_episodes == 1 and store.n_steps == 3  # the 3 steps that went out
    meta = store.episode_meta(0)
    assert meta.success is False and "bus gone" in meta.extra["error"]
    assert meta.extra["success_known"] is False


def test_robot_error_on_the_first_step_commits_nothing(tmp_path):
    arm = FailingArm(fail_at=0)
    policy = constant_policy({"joint_pos": [3]}, [0.0, 0.0, 0.0])
    store = open_deploy_store(tmp_path / "s.zarr", arm.spec)
    result = deploy(policy, arm, store, DeployConfig(episodes=2, max_steps=5))
    assert result.episodes[0]["index"] is None and result.episodes[0]["steps"] == 0
    assert "bus gone" in result.error and store.n_episodes == 0


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_deploy_json(tmp_path, lift_checkpoint):
    exe = shutil.which("gipo-robot", path=os.path.dirname(sys.executable)) or "gipo-robot"
    out = subprocess.run(
        [exe, "deploy", str(lift_checkpoint), "--robot", "sim:Lift?horizon=50", "--episodes", "2",
         "--max-steps", "4", "--out", str(tmp_path / "d.zarr"), "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)  # exactly one JSON object on stdout
    assert result["episodes_run"] == 2 and result["steps"] == 8 and result["error"] is None
    for key in ("p50_period_error_ms", "p99_period_error_ms", "missed"):
        assert result["timing"][key] is not None
    assert EpisodeStore.open(tmp_path / "d.zarr").n_episodes == 2
    bad = subprocess.run(
        [exe, "deploy", str(lift_checkpoint), "--robot", "sim:Lift?action_mode=joint_delta",
         "--out", str(tmp_path / "e.zarr"), "--max-steps", "3", "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "action dimension is 8, the policy outputs 7" in json.loads(bad.stdout)["error"]
    assert not (tmp_path / "e.zarr").exists()  # refused before a store was even created


# ---------------------------------------------------------------------------------------------- serial bus


def test_serial_bus_unplugged_mid_episode(tmp_path):
    # End to end on the emulated Feetech arm: a TOML robot config -> load_robot -> SerialArm over a real
    # pty; 0.7 s into the episode the bus goes silent (cable pulled). The driver's retries run out
    # (BusError), the guard holds, the steps so far are committed as a failed episode, deploy returns.
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus

    with VirtualServoBus("feetech") as bus:
        cfg = bus.robot_config()
        lines = [f"{k} = {json.dumps(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
        lines.append("[joint_limits]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cfg["joint_limits"].items()]
        (tmp_path / "arm.toml").write_text("\n".join(lines) + "\n")
        arm = load_robot(tmp_path / "arm.toml")
        names = list(arm.spec.action_names)
        policy = constant_policy({"joint_pos": [6]}, [0.0] * 6, names=names)
        store = open_deploy_store(tmp_path / "s.zarr", arm.spec)
        unplug = threading.Timer(0.7, bus.disconnect)
        unplug.start()
        start = time.monotonic()
        result = deploy(policy, arm, store, DeployConfig(episodes=2, max_steps=300))
        unplug.join()
    assert time.monotonic() - start < 30
    assert result.error is not None and "BusError" in result.error, result.error
    assert len(result.episodes) == 1 and 0 < result.episodes[0]["steps"] < 300
    assert store.n_episodes == 1
    meta = store.episode_meta(0)
    assert meta.success is False and meta.source == "deploy" and "BusError" in meta.extra["error"]


class NanAfter(SimRobot):
    """The simulator, with a sensor that reads NaN from step 5 on (a sensor fault)."""

    steps = 0

    def act(self, action):
        self.steps += 1
        return super().act(action)

    def observe(self):
        obs = dict(super().observe())
        if self.steps >= 5:
            obs["robot0_eef_pos"] = np.full(3, np.nan)
        return obs


def test_a_non_finite_measurement_commits_the_steps_so_far_as_a_failed_episode(tmp_path, lift_checkpoint):
    # Issue 28 item 5: a sensor that starts reading NaN used to end deploy with a DatasetError blaming the
    # dataset and lose the episode's steps.
    robot = NanAfter("Lift", horizon=30)
    store = open_deploy_store(tmp_path / "s.zarr", robot.spec)
    result = deploy(load_policy(lift_checkpoint), robot, store, DeployConfig(episodes=2, realtime=False))
    robot.close()
    assert (
        result.error is not None and "sensor fault" in result.error and "obs.robot0_eef_pos" in result.error
    )
    assert len(result.episodes) == 1 and result.episodes[0]["steps"] == 5
    assert store.n_episodes == 1 and store.episode_meta(0).length == 5 and not store.episode_meta(0).success
    assert "sensor fault" in store.episode_meta(0).extra["error"]
