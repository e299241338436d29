"""Vector envs: results equal single-env results for the same seeds and actions, auto-reset, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.sim.robosuite_env import make_env
from gipo_robot.sim.vector import BACKENDS, make_vector_env

N, T, HORIZON = 2, 14, 6  # 14 steps with a 6-step horizon: two auto-resets per env


def _single_env_reference(actions: np.ndarray, seed: int) -> list[dict]:
    """Env i alone with reset(seed=seed + i), resetting itself (seedless) when an episode ends."""
    env = make_env("Lift", horizon=HORIZON)
    refs = []
    for i in range(N):
        obs, info = env.reset(seed=seed + i)
        rows = {"obs": [obs["object"]], "reward": [], "done": [], "final": [], "seeds": [info["seed"]]}
        for k in range(T):
            obs, reward, terminated, truncated, info = env.step(actions[k, i])
            rows["reward"].append(reward)
            rows["done"].append(terminated or truncated)
            if terminated or truncated:
                rows["final"].append(obs["object"])
                obs, info = env.reset()
                rows["seeds"].append(info["seed"])
            rows["obs"].append(obs["object"])
        refs.append(rows)
    env.close()
    return refs


@pytest.mark.parametrize("backend", ["subprocess", "sync"])
def test_vector_equals_single_env(backend):
    actions = np.random.default_rng(0).uniform(-1, 1, (T, N, 7))
    refs = _single_env_reference(actions, seed=20)
    with make_vector_env("Lift", N, backend=backend, horizon=HORIZON) as venv:
        assert venv.num_envs == N and venv.single_action_space.shape == (7,)
        # the same contract as one env and a real arm: a RobotSpec, sim-only facts in the config
        assert venv.robot_spec.name == "sim:Lift" and venv.robot_spec.action_mode == "ee_delta"
        assert venv.robot_spec.action_dim == 7 and venv.config.max_steps == HORIZON
        obs, infos = venv.reset(seed=20)
        assert obs["object"].shape == (N, 10)
        got = [
            {"obs": [obs["object"][i]], "reward": [], "done": [], "final": [], "seeds": [infos[i]["seed"]]}
            for i in range(N)
        ]
        for k in range(T):
            obs, reward, terminated, truncated, infos = venv.step(actions[k])
            for i in range(N):
                got[i]["reward"].append(reward[i])
                got[i]["done"].append(bool(terminated[i] or truncated[i]))
                if terminated[i] or truncated[i]:
                    got[i]["final"].append(infos[i]["final_obs"]["object"])
                    got[i]["seeds"].append(infos[i]["seed"])
                got[i]["obs"].append(obs["object"][i])
    for ref, mine in zip(refs, got, strict=True):
        assert mine["done"] == ref["done"] and sum(ref["done"]) == 2
        assert mine["seeds"] == ref["seeds"]
        np.testing.assert_array_equal(np.array(mine["reward"]), np.array(ref["reward"]))
        np.testing.assert_array_equal(np.array(mine["obs"]), np.array(ref["obs"]))
        np.testing.assert_array_equal(np.array(mine["final"]), np.array(ref["final"]))


def test_bad_actions_and_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'nope'; known: " + ", ".join(sorted(BACKENDS))):
        make_vector_env("Lift", 2, backend="nope")
    with make_vector_env("Lift", 2, backend="sync", horizon=5) as venv:
        venv.reset(seed=0)
        with pytest.raises(ValueError, match=r"shape \(2, 7\)"):
            venv.step(np.zeros((3, 7)))
        bad = np.zeros((2, 7))
        bad[1, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            venv.step(bad)
