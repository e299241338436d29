"""The fast loop reproduces stock robosuite's step exactly (same seed + actions -> same trajectory)."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.sim.experts import ScriptedExpert
from gipo_robot.sim.robosuite_env import make_env


def _trajectory(env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, list[dict], list[float]]:
    obs, _ = env.reset(seed=seed)
    data = env.robosuite_env.sim.data
    states, observations, rewards = [], [obs], []
    for a in actions:
        obs, reward, *_ = env.step(a)
        states.append(np.concatenate([data.qpos, data.qvel, data.ctrl]))
        observations.append(obs)
        rewards.append(reward)
    return np.array(states), observations, rewards


def _expert_actions(task: str, seed: int, steps: int) -> np.ndarray:
    """Actions with contacts (grasp, lift, place): the hard case for exactness."""
    env = make_env(task, end_on_success=False, horizon=steps, fast=False)
    expert = ScriptedExpert(task, noise=0.0)
    env.reset(seed=seed)
    actions = []
    for _ in range(steps):
        actions.append(expert.act(env.privileged_state()))
        env.step(actions[-1])
    env.close()
    return np.array(actions)


@pytest.mark.parametrize(("task", "kind"), [("Lift", "random"), ("Lift", "expert"), ("Stack", "expert")])
def test_fast_loop_matches_stock_robosuite(task, kind):
    steps = 60 if kind == "random" else 100
    if kind == "random":
        actions = np.random.default_rng(5).uniform(-1, 1, (steps, 7))
    else:
        actions = _expert_actions(task, seed=2, steps=steps)
    stock = make_env(task, fast=False, end_on_success=False, horizon=steps, reward="shaped")
    fast = make_env(task, fast=True, end_on_success=False, horizon=steps, reward="shaped")
    try:
        assert stock._stepper is None and fast._stepper is not None
        s_states, s_obs, s_rew = _trajectory(stock, 2, actions)
        f_states, f_obs, f_rew = _trajectory(fast, 2, actions)
    finally:
        stock.close()
        fast.close()
    # the fast loop makes the same floating-point operations in the same order, but its small matrix
    # products go through numba's BLAS (scipy's OpenBLAS), stock robosuite's partly through numpy's: where
    # the two libraries pick different kernels for the CPU, the last bits differ (~1e-11 after 60 steps on
    # some machines, 0 on others). 1e-8 is the contract.
    assert np.max(np.abs(s_states - f_states)) <= 1e-8
    assert s_rew == pytest.approx(f_rew, abs=1e-8)
    for a, b in zip(s_obs, f_obs, strict=True):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-8)
    # the trajectory actually moved (a vacuous comparison of a still robot would pass too)
    assert np.ptp(s_states[:, :7], axis=0).max() > 0.1


@pytest.mark.parametrize("rates", ["all_30hz", "one_10hz"])
def test_fast_loop_matches_stock_with_other_sampling_rates(rates):
    """Observables sampled mid-step (30 Hz: the compiled substep runs are split around the samples) or on
    clocks of their own (one at 10 Hz: no shared clock, observables updated after every substep)."""
    steps = 30
    actions = np.random.default_rng(7).uniform(-1, 1, (steps, 7))
    envs = []
    for fast in (False, True):
        env = make_env("Lift", fast=fast, end_on_success=False, horizon=steps)
        names = list(env.robosuite_env._observables)
        for name in names if rates == "all_30hz" else names[:1]:
            env.robosuite_env.modify_observable(name, "sampling_rate", 30 if rates == "all_30hz" else 10)
        envs.append(env)
    try:
        (s_states, s_obs, _), (f_states, f_obs, _) = (_trajectory(e, 4, actions) for e in envs)
        assert envs[1]._stepper._shared_clock is (rates == "all_30hz")
    finally:
        for env in envs:
            env.close()
    # the same 1e-8 contract as above (exact where numpy's and numba's BLAS pick the same kernels)
    np.testing.assert_allclose(s_states, f_states, rtol=0, atol=1e-8)
    for a, b in zip(s_obs, f_obs, strict=True):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-8)
    assert np.ptp(s_states[:, :7], axis=0).max() > 0.1


def test_fast_loop_follows_a_hard_reset():
    """robosuite's ``hard_reset=True`` rebuilds MjModel/MjData on every reset: the stepper must step the new
    ones (it holds their C pointers), or it drives a stale simulation."""
    import robosuite

    from gipo_robot.sim.fast_step import FastStepper
    from gipo_robot.sim.robosuite_env import _reseed

    actions = np.random.default_rng(3).uniform(-1, 1, (15, 7))

    def run(fast: bool) -> np.ndarray:
        env = robosuite.make(
            "Lift", robots="Panda", has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
            hard_reset=True, ignore_done=True, seed=0,
        )  # fmt: skip
        stepper = FastStepper.create(env) if fast else None
        states = []
        for episode in range(2):
            _reseed(env, episode)
            env.reset()
            if stepper is not None:
                stepper.reset()
            for a in actions:
                stepper.step(a) if stepper is not None else env.step(a)
                states.append(np.concatenate([env.sim.data.qpos, env.sim.data.qvel]))
        env.close()
        return np.array(states)

    stock, fast = run(False), run(True)
    np.testing.assert_allclose(stock, fast, rtol=0, atol=1e-8)
    assert np.ptp(stock[:, :7], axis=0).max() > 0.05
