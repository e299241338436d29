"""make_env: each task builds and steps; the contract (spaces, robot_spec, reward, termination); seeding."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.sim.config import EnvConfig
from gipo_robot.sim.robosuite_env import (
    OBJECT_FEATURE,
    PROPRIO_FEATURES,
    RendererUnavailableError,
    SimError,
    make_env,
)
from gipo_robot.sim.tasks import TASKS


def _rollout(env, seed: int, actions: np.ndarray) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return out


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_builds_steps_and_resets_reproducibly(task):
    env = make_env(task, horizon=20)
    try:
        actions = np.random.default_rng(0).uniform(-1, 1, (8, env.action_space.shape[0]))
        first = _rollout(env, 3, actions)
        again = _rollout(env, 3, actions)
        other = _rollout(env, 4, actions)
        assert set(first[0]) == set(env.observation_space.spaces)
        for obs in first:
            assert env.observation_space.contains(obs)
        for a, b in zip(first, again, strict=True):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
        # a different seed places the objects elsewhere
        assert not np.array_equal(first[0][OBJECT_FEATURE], other[0][OBJECT_FEATURE])
    finally:
        env.close()


def test_observation_names_shapes_and_spec(lift_env):
    spec = lift_env.robot_spec
    assert list(spec.obs_shapes)[: len(PROPRIO_FEATURES)] == list(PROPRIO_FEATURES)
    assert spec.obs_shapes["robot0_eef_pos"] == (3,)
    assert spec.obs_shapes["robot0_eef_quat"] == (4,)
    assert spec.obs_shapes[OBJECT_FEATURE] == (10,)  # cube pos (3) + quat (4) + gripper-to-cube (3)
    assert spec.action_names == ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
    # robosuite's default OSC: +-1 is +-5 cm and +-0.5 rad per step
    np.testing.assert_allclose(spec.action_high, [0.05, 0.05, 0.05, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(spec.action_low, -spec.action_high)
    assert spec.control_hz == 20.0 and lift_env.substeps == 25  # 25 x 2 ms = 50 ms
    assert lift_env.action_space.low.min() == -1.0 and lift_env.action_space.high.max() == 1.0
    d = spec.to_dict()
    assert d["action_high"][0] == pytest.approx(0.05)


def test_positive_dz_raises_the_gripper(lift_env):
    lift_env.reset(seed=0)
    z0 = lift_env.privileged_state()["eef_pos"][2]
    for _ in range(5):
        _, reward, terminated, _, info = lift_env.step(np.array([0, 0, 1.0, 0, 0, 0, -1]))
    # +1 asks for 5 cm per step; five steps must rise well over 5 cm even with the controller's lag
    assert lift_env.privileged_state()["eef_pos"][2] - z0 > 0.05
    assert reward == 0.0 and not terminated and info["success"] is False


def test_truncates_at_horizon_and_refuses_to_step_past_it():
    env = make_env("Lift", horizon=3)
    try:
        env.reset(seed=0)
        flags = [env.step(np.zeros(7))[2:4] for _ in range(3)]
        assert flags == [(False, False), (False, False), (False, True)]
        with pytest.raises(SimError, match="reset"):
            env.step(np.zeros(7))
    finally:
        env.close()


def test_seedless_resets_are_reproducible_from_their_recorded_seed(lift_env):
    lift_env.reset(seed=11)
    obs, info = lift_env.reset()  # next seed of the sequence
    replay, replay_info = lift_env.reset(seed=info["seed"])
    assert replay_info["seed"] == info["seed"]
    np.testing.assert_array_equal(obs[OBJECT_FEATURE], replay[OBJECT_FEATURE])


@pytest.mark.parametrize("action", [np.zeros(6), np.zeros((1, 7)), np.array([0, 0, np.nan, 0, 0, 0, 0])])
def test_bad_actions_raise_value_error(lift_env, action):
    lift_env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        lift_env.step(action)


def test_joint_delta_mode_and_shaped_reward():
    env = make_env("Lift", action_mode="joint_delta", reward="shaped", horizon=5)
    try:
        assert env.robot_spec.action_names[:7] == tuple(f"dq{i}" for i in range(7))
        env.reset(seed=0)
        q0 = env.robosuite_env.sim.data.qpos[:7].copy()
        _, reward, *_ = env.step(np.r_[np.ones(7), -1.0])
        assert (
            0.0 < reward < 1.0
        )  # reaching term of robosuite's shaped reward: gripper near, not at, the cube
        assert np.all(env.robosuite_env.sim.data.qpos[:7] > q0)  # every joint moved in + direction
    finally:
        env.close()


def test_renderer_failure_names_the_fix(monkeypatch):
    import robosuite

    def broken(*args, **kwargs):
        raise RuntimeError("Cannot initialize a EGL device display")

    monkeypatch.setattr(robosuite, "make", broken)
    with pytest.raises(RendererUnavailableError, match="MUJOCO_GL=osmesa") as err:
        make_env("Lift", cameras=("agentview",))
    assert "libegl1" in str(err.value) and "libosmesa6" in str(err.value)


def test_camera_observation_is_an_upright_uint8_image():
    try:
        env = make_env("Lift", cameras=("agentview",), image_size=32, horizon=5)
    except RendererUnavailableError as err:
        pytest.skip(str(err))
    try:
        obs, _ = env.reset(seed=0)
        image = obs["agentview_image"]
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        # robosuite renders bottom-up (OpenGL); we return the frame flipped upright
        raw = env.robosuite_env._observables["agentview_image"].obs
        np.testing.assert_array_equal(image, raw[::-1])
        with pytest.raises(ValueError, match="unknown camera"):
            make_env("Lift", cameras=("nosuchcam",))
    finally:
        env.close()


def test_fast_render_quality_draws_the_same_scene_without_reflections_or_multisampling():
    frames = {}
    for quality in ("exact", "fast"):
        try:
            env = make_env("Lift", cameras=("agentview",), image_size=64, horizon=5, render_quality=quality)
        except RendererUnavailableError as err:
            pytest.skip(str(err))
        try:
            model = env.robosuite_env.sim.model
            # fast: the offscreen framebuffer is single-sampled (robosuite's model asks for 4 samples)
            assert (model.vis.quality.offsamples == 0) == (quality == "fast")
            obs, _ = env.reset(seed=0)
            frames[quality] = obs["agentview_image"].astype(float)
        finally:
            env.close()
    diff = np.abs(frames["exact"] - frames["fast"])
    # same scene, same pose: only reflections and edge anti-aliasing differ (~1/255 on average), so the
    # images are close on average but not equal (else the option would do nothing)
    assert 0 < diff.mean() < 4
    with pytest.raises(ValueError, match="render_quality"):
        EnvConfig(render_quality="ultra")
