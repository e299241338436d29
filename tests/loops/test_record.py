"""The recording loop: config errors, time limits, intervention marking under a policy (pacing: elsewhere)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch

from gipo_robot.datasets import EpisodeStore, validate
from gipo_robot.loops.actor import PolicyActor, check_policy_fits
from gipo_robot.loops.record import RecorderConfig, record
from gipo_robot.loops.record_store import teleop_schema
from gipo_robot.sim.robot import SimRobot
from gipo_robot.teleop.devices import DeviceCommand, ScriptedDevice, TeleopDevice

os.environ.setdefault("MUJOCO_GL", "egl")


def test_recorder_config_names_the_bad_field():
    with pytest.raises(ValueError, match=r"RecorderConfig\.episodes"):
        RecorderConfig(out="x.zarr", episodes=0)
    with pytest.raises(ValueError, match=r"RecorderConfig\.max_seconds"):
        RecorderConfig(out="x.zarr", max_seconds=-1.0)
    with pytest.raises(ValueError, match=r"RecorderConfig\.fps"):
        RecorderConfig(out="x.zarr", fps=float("nan"))


@pytest.fixture(scope="module")
def lift():
    robot = SimRobot("Lift", horizon=60)
    yield robot
    robot.close()


def test_schema_has_every_observation_and_the_intervention_flag(lift):
    schema = teleop_schema(lift.spec)
    assert schema["obs.robot0_eef_pos"].shape == (3,) and schema["action"].shape == (7,)
    assert schema["intervention"].dtype == "bool" and schema["intervention"].fill is False


class Stubborn(TeleopDevice):
    """Starts an episode, then always asks for the same action and never saves."""

    name = "stubborn"

    def __init__(self, action: np.ndarray) -> None:
        self.action = action
        self.recording = False

    def begin_episode(self, observation):
        self.recording = True

    def end_episode(self):
        self.recording = False

    def poll(self) -> DeviceCommand:
        return DeviceCommand(self.action, ()) if self.recording else DeviceCommand(events=("start",))


def test_the_time_limit_ends_and_saves_an_episode(lift, tmp_path):
    out = tmp_path / "limit.zarr"
    device = Stubborn(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    config = RecorderConfig(out=str(out), episodes=2, max_seconds=0.4, realtime=False, status=False)
    result = record(lift, device, config)
    # 0.4 s at the robot's 20 Hz is 8 steps; the arm holds still, so the cube is never lifted.
    assert result.saved == [0, 1] and result.steps == 16 and result.successes == 0
    store = validate(out)
    assert [store.episode_meta(i).extra["end"] for i in (0, 1)] == ["time_limit", "time_limit"]
    np.testing.assert_allclose(store.episode(0)["timestamp"], np.arange(8) * 0.05)  # nominal when not paced


def test_estop_drops_the_episode_and_ends_the_session(lift, tmp_path):
    out = tmp_path / "estop.zarr"
    device = ScriptedDevice.expert(lift, events={0: {4: ["estop"]}})
    config = RecorderConfig(out=str(out), episodes=3, realtime=False, status=False)
    result = record(lift, device, config)
    assert result.ended == "estop" and result.saved == [] and result.discarded == 1
    assert EpisodeStore.open(out).n_episodes == 0


def constant_policy(spec, gripper: float) -> PolicyActor:
    """A GaussianPolicy whose mean is (0, ..., 0, gripper) for every observation."""
    from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig

    config = PolicyConfig(low_dim={"robot0_eef_pos": [3]}, action_dim=spec.action_dim, chunk=2, hidden=[8])
    policy = GaussianPolicy(config)
    with torch.no_grad():
        policy.mean_head.weight.zero_()
        policy.mean_head.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, gripper] * 2))
    check_policy_fits(policy.config, spec)
    return PolicyActor(policy)


def test_takeover_steps_are_marked_as_interventions(lift, tmp_path):
    out = tmp_path / "hil.zarr"
    # The policy drives (gripper half closed, +0.5); the scripted operator takes over at step 5 and hands
    # back at step 12. Its expert keeps the gripper open (-1) while approaching the cube.
    device = ScriptedDevice.expert(
        lift, events={0: {5: ["takeover"], 12: ["takeover"], 20: ["save_failure"]}}
    )
    config = RecorderConfig(out=str(out), episodes=1, realtime=False, seed=3, status=False)
    result = record(lift, device, config, policy=constant_policy(lift.spec, 0.5), status_stream=io.StringIO())
    assert result.saved == [0]
    ep = EpisodeStore.open(out).episode(0)
    # The takeover raised at poll 5 applies to step 5; the hand-back at poll 12 to step 12: steps 5..11.
    expected = np.zeros(20, bool)
    expected[5:12] = True
    np.testing.assert_array_equal(ep["intervention"], expected)
    # What was sent: the operator's gripper command while intervening, the policy's otherwise.
    np.testing.assert_allclose(ep["action"][expected, 6], -1.0)
    np.testing.assert_allclose(ep["action"][~expected, 6], 0.5, atol=1e-6)
    np.testing.assert_allclose(ep["action"][~expected, :6], 0.0, atol=1e-6)
    meta = EpisodeStore.open(out).episode_meta(0)
    assert meta.extra["intervention_steps"] == 7 and not meta.success and meta.extra["end"] == "operator"


def test_a_session_at_another_rate_gives_the_guard_its_period(lift, tmp_path):
    # --fps 5 on the 20 Hz simulator: the guard's per-step limits are computed for 0.2 s steps (issue 28
    # item 9; tests/hardware/test_safety.py checks what that does to the limits).
    from gipo_robot.hardware.safety import SafetyGuard

    guard = SafetyGuard(lift)
    out = str(tmp_path / "fps.zarr")
    config = RecorderConfig(out=out, fps=5.0, max_seconds=0.4, realtime=False, status=False)
    result = record(guard, Stubborn(np.array([0, 0, 0, 0, 0, 0, -1.0])), config)
    assert result.saved == [0] and result.steps == 2 and guard.period == pytest.approx(0.2)
