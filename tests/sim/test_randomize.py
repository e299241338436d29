"""Domain randomization changes the model parameters it claims to, records them, is the identity when off."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.sim.randomize import Randomization
from gipo_robot.sim.robosuite_env import make_env


def test_physics_parameters_change_as_recorded():
    config = Randomization(
        object_mass_scale=(0.5, 2.0),
        friction_scale=(0.5, 1.5),
        joint_damping_scale=(2.0, 3.0),
        light_scale=(0.2, 0.4),
    )
    env = make_env("Lift", randomization=config, horizon=5)
    try:
        model = env.robosuite_env.sim.model._model
        rnd = env._randomizer
        nominal = {k: v.copy() for k, v in rnd._nominal.items()}
        cube = rnd.object_bodies
        assert [model.body(int(b)).name for b in cube] == ["cube_main"]
        seen = []
        for seed in (0, 1):
            _, info = env.reset(seed=seed)
            v = info["randomization"]
            seen.append(v["object_mass_scale"])
            assert 0.5 <= v["object_mass_scale"] <= 2.0 and 2.0 <= v["joint_damping_scale"] <= 3.0
            np.testing.assert_allclose(
                model.body_mass[cube], nominal["body_mass"][cube] * v["object_mass_scale"]
            )
            np.testing.assert_allclose(
                model.geom_friction[:, 0], nominal["geom_friction"][:, 0] * v["friction_scale"]
            )
            np.testing.assert_allclose(
                model.geom_friction[:, 1:], nominal["geom_friction"][:, 1:]
            )  # untouched
            arm = rnd.arm_dofs
            np.testing.assert_allclose(
                model.dof_damping[arm], nominal["dof_damping"][arm] * v["joint_damping_scale"]
            )
            np.testing.assert_allclose(model.light_diffuse, nominal["light_diffuse"] * v["light_scale"])
            # the robot's links keep their mass: only free objects are scaled
            robot_body = model.body("robot0_link1").id
            assert model.body_mass[robot_body] == nominal["body_mass"][robot_body]
        assert seen[0] != seen[1]
        # values come from the episode seed: resetting with seed 0 again reproduces them
        _, info = env.reset(seed=0)
        assert info["randomization"]["object_mass_scale"] == seen[0]
    finally:
        env.close()


def test_identity_randomization_leaves_the_trajectory_unchanged():
    actions = np.random.default_rng(0).uniform(-1, 1, (10, 7))
    plain = make_env("Lift", horizon=20)
    ident = make_env("Lift", horizon=20, randomization=Randomization())
    try:
        for env in (plain, ident):
            env.reset(seed=4)
            for a in actions:
                obs, *_ = env.step(a)
            env.final = obs
        for k in plain.final:
            np.testing.assert_array_equal(plain.final[k], ident.final[k])
    finally:
        plain.close()
        ident.close()


def test_latency_delays_actions_and_obs_noise_perturbs_floats():
    env = make_env(
        "Lift", horizon=20, randomization=Randomization(action_latency_steps=(2, 2), obs_noise_std=0.01)
    )
    try:
        _, info = env.reset(seed=0)
        assert info["randomization"]["action_latency_steps"] == 2
        rnd = env._randomizer
        up = np.array([0, 0, 1.0, 0, 0, 0, -1.0])
        # the first two commands are held back (zeros, gripper as commanded), the third gets the first back
        assert np.array_equal(rnd.perturb_action(up), [0, 0, 0, 0, 0, 0, -1.0])
        assert np.array_equal(rnd.perturb_action(2 * up.clip(-0.5, 0.5)), [0, 0, 0, 0, 0, 0, -1.0])
        assert np.array_equal(rnd.perturb_action(np.zeros(7)), up)
        obs = {"a": np.zeros(1000), "img": np.zeros((4, 4, 3), np.uint8)}
        noisy = rnd.corrupt_observation(obs)
        assert noisy["a"].std() == pytest.approx(0.01, rel=0.2) and not noisy["img"].any()
    finally:
        env.close()


def test_bad_ranges_name_the_field():
    with pytest.raises(ValueError, match="friction_scale"):
        Randomization(friction_scale=(1.5, 0.5))
    with pytest.raises(ValueError, match="obs_noise_std"):
        Randomization(obs_noise_std=-1.0)
