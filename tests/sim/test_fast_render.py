"""render_quality="fast": culling changes no pixel; frames are deterministic, close to exact; same physics."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.sim.robosuite_env import RendererUnavailableError, make_env

SIZE = 48


def _camera_env(quality: str):
    try:
        return make_env(
            "Lift", cameras=("agentview",), image_size=SIZE, horizon=30, render_quality=quality, seed=0
        )
    except RendererUnavailableError as err:
        pytest.skip(str(err))


def _rollout(env, steps: int = 6) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=5)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-1, 1, 7))
        out.append(obs)
    return out


def _frames(rollout: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    return [obs["agentview_image"] for obs in rollout]


def test_fast_rendering_culls_geoms_out_of_view_without_changing_a_pixel():
    env = _camera_env("fast")
    try:
        renderer = env._renderer
        assert renderer.fast
        sim = env.robosuite_env.sim
        context = sim._render_context_offscreen
        camera = sim.model.camera_name2id("agentview")
        # the framebuffer is the image's size, single-sampled (robosuite's is 640x480, 4 samples)
        assert (context.con.offWidth, context.con.offHeight, context.con.offSamples) == (SIZE, SIZE, 0)
        before, after = renderer.faces  # the drawn-only meshes, simplified for 48-pixel frames
        assert before > 150_000 and after < before / 2
        rng = np.random.default_rng(0)
        env.reset(seed=1)
        for _ in range(4):
            env.step(rng.uniform(-1, 1, 7))
            hidden = renderer.hidden_geoms(camera)
            # from agentview most of the arm's links are out of the frame: they are left out of the scene
            assert len(hidden) > 10
            rgba = sim.model._model.geom_rgba.copy()
            culled = sim.render(camera_name="agentview", width=SIZE, height=SIZE)
            assert np.array_equal(sim.model._model.geom_rgba, rgba)  # the model is restored after the frame
            context.render = renderer._stock_render  # the same settings, every geom drawn
            try:
                full = sim.render(camera_name="agentview", width=SIZE, height=SIZE)
            finally:
                context.render = renderer.render
            assert np.array_equal(culled, full)
    finally:
        env.close()


def test_fast_frames_are_deterministic_close_to_exact_ones_and_the_physics_is_untouched():
    fast_a, fast_b, exact = (_camera_env(q) for q in ("fast", "fast", "exact"))
    try:
        rollouts = [_rollout(env) for env in (fast_a, fast_b, exact)]
    finally:
        for env in (fast_a, fast_b, exact):
            env.close()
    for fast_obs, exact_obs in zip(rollouts[0], rollouts[2], strict=True):
        for key in ("robot0_joint_pos", "robot0_eef_pos", "object"):  # simplified meshes touch no physics
            assert np.array_equal(fast_obs[key], exact_obs[key])
    a, b, e = (_frames(r) for r in rollouts)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    diff = np.mean([np.abs(x.astype(float) - y).mean() for x, y in zip(a, e, strict=True)])
    assert 0 < diff < 4  # reflections and edge anti-aliasing only
    assert any(not np.array_equal(a[0], f) for f in a[1:])  # the arm moves in the frames
