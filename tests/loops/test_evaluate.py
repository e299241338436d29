"""Evaluation loop: success counting, chunk execution, seeds, Wilson interval, MP4 videos; a simulated env
is driven as an unguarded SimRobot, a Robot as it is."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from gipo_robot.hardware.robot import Robot, RobotSpec, TaskStatus
from gipo_robot.loops.evaluate import evaluate, wilson_interval
from gipo_robot.policies import GaussianPolicy, PolicyConfig
from tests.hardware.test_safety import RecordingArm

#: Walk1D's contract: one joint x, the action moves it by 0.1 per unit per step.
WALK_SPEC = RobotSpec(
    name="walk1d",
    action_mode="joint_delta",
    action_names=("dx",),
    action_low=[-0.1],
    action_high=[0.1],
    joint_names=("x",),
    joint_low=[-10.0],
    joint_high=[10.0],
    max_joint_velocity=[2.0],
    control_hz=20.0,
    obs_shapes={"x": (1,)},
    obs_dtypes={"x": "float32"},
)


class Walk1D(gym.Env):
    """x starts at seed-dependent x0 in [0, 1); each action adds 0.1·a; success when x >= 1 (terminates)."""

    robot_spec = WALK_SPEC

    def __init__(self, horizon: int = 30):
        self.observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-10, 10, (1,))})
        self.action_space = gym.spaces.Box(-1, 1, (1,))
        self.horizon = horizon
        self.render_mode = "rgb_array"
        self.actions: list[float] = []
        self.seeds: list[int] = []

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        self.x = np.random.default_rng(seed).uniform(0, 1)
        self.t = 0
        return {"x": np.array([self.x], dtype=np.float32)}, {}

    def step(self, action):
        self.actions.append(float(action[0]))
        self.x += 0.1 * float(np.clip(action[0], -1, 1))
        self.t += 1
        success = self.x >= 1.0
        return (
            {"x": np.array([self.x], dtype=np.float32)},
            float(success),
            success,
            self.t >= self.horizon,
            {"success": success},
        )

    def render(self):
        frame = np.zeros((16, 16, 3), dtype=np.uint8)
        frame[:, : int(np.clip(self.x, 0, 1) * 15)] = 255
        return frame


def constant_policy(action: float, chunk: int = 1) -> GaussianPolicy:
    p = GaussianPolicy(PolicyConfig(low_dim={"x": [1]}, action_dim=1, chunk=chunk, hidden=[4]))
    with torch.no_grad():
        p.mean_head.weight.zero_()
        p.mean_head.bias.fill_(action)
    return p


def test_wilson_interval_by_hand():
    # 8/10, z = 1.96: centre = (0.8 + 0.19208)/1.38416 = 0.71674, half = 1.96·√0.025604/1.38416 = 0.22658.
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.49016, abs=1e-4) and hi == pytest.approx(0.94332, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0


def test_a_policy_that_moves_forward_always_succeeds():
    env = Walk1D()
    result = evaluate(constant_policy(1.0), env, episodes=5, seed=7, progress=False)
    assert result.success_rate == 1.0 and result.mean_return == 1.0
    assert env.seeds == [7, 8, 9, 10, 11]
    # x0 ~ U(0, 1) and +0.1 per step: at most 10 steps.
    assert all(1 <= e["length"] <= 10 for e in result.episodes)


def test_a_policy_that_moves_backward_never_succeeds():
    result = evaluate(constant_policy(-1.0), Walk1D(horizon=12), episodes=4, progress=False)
    assert result.success_rate == 0.0 and result.mean_length == 12
    assert result.success_ci95 == pytest.approx(wilson_interval(0, 4))


def test_chunks_execute_open_loop_and_actions_are_clipped():
    # A chunk of 3 with a mean beyond the bound: every executed action is clipped to +1.
    env = Walk1D(horizon=5)
    result = evaluate(constant_policy(3.0, chunk=3), env, episodes=1, seed=0, progress=False)
    assert set(env.actions) == {1.0}
    assert result.episodes[0]["length"] == len(env.actions)
    with pytest.raises(ValueError, match="execute_steps"):
        evaluate(constant_policy(1.0, chunk=3), env, episodes=1, execute_steps=4, progress=False)


def test_missing_observation_feature_is_named():
    p = GaussianPolicy(PolicyConfig(low_dim={"y": [1]}, action_dim=1))
    with pytest.raises(KeyError, match="'y'"):
        evaluate(p, Walk1D(), episodes=1, progress=False)


def test_videos_are_written_as_mp4(tmp_path):
    cv2 = pytest.importorskip("cv2")
    result = evaluate(
        constant_policy(1.0), Walk1D(), episodes=3, video_dir=tmp_path, video_episodes=2, progress=False
    )
    assert [p.split("/")[-1] for p in result.videos] == ["episode_0.mp4", "episode_1.mp4"]
    cap = cv2.VideoCapture(result.videos[0])
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames == result.episodes[0]["length"] + 1  # the reset frame and one per step


class GuardedWalk(Robot):
    """Walk1D as a Robot, each action halved (a stand-in for a guard): evaluate drives it as it is."""

    def __init__(self, horizon: int = 30):
        self.env = Walk1D(horizon)
        self.status = None

    @property
    def spec(self):
        return WALK_SPEC

    def _connect(self):
        pass

    def _disconnect(self):
        pass

    def reset(self, *, seed=None):
        self.obs, _ = self.env.reset(seed=seed)
        return self.obs

    def observe(self):
        return self.obs

    def act(self, action):
        sent = 0.5 * np.asarray(action, dtype=np.float64)
        self.obs, reward, terminated, truncated, info = self.env.step(sent)
        self.status = TaskStatus(reward, info["success"], terminated, truncated)
        return sent

    def task_status(self):
        return self.status


def test_a_robot_is_evaluated_as_it_is():
    robot = GuardedWalk()
    result = evaluate(constant_policy(1.0), robot, episodes=2, seed=7, progress=False)
    # Each step moves x by 0.05 (the halved action): from x0 ~ U(0, 1), at most 20 steps to x >= 1.
    assert set(robot.env.actions) == {0.5} and robot.env.seeds == [7, 8]
    assert result.success_rate == 1.0 and all(1 <= e["length"] <= 20 for e in result.episodes)
    assert not robot.is_connected  # connected for the evaluation only


def test_a_robot_that_does_not_know_the_task_is_refused():
    arm = RecordingArm()
    p = GaussianPolicy(PolicyConfig(low_dim={"joint_pos": [3]}, action_dim=3))
    with pytest.raises(ValueError, match="recording-arm does not report success"):
        evaluate(p, arm, episodes=1, progress=False)
