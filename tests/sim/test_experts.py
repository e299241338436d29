"""Scripted experts: the success floor on 20 seeded episodes per task, the noise knob, the demo layout."""

from __future__ import annotations

import numpy as np
import pytest

from gipo_robot.sim.experts import PLANS, ScriptedExpert, collect_demos

SUCCESS_FLOOR = 0.95


@pytest.mark.parametrize("task", ["Lift", "Can", "Stack"])
def test_expert_reaches_the_success_floor_on_20_seeded_episodes(task):
    successes = [ep["episode_success"] for ep in collect_demos(task, 20, noise=0.0, seed=0)]
    assert np.mean(successes) >= SUCCESS_FLOOR, f"{task}: {sum(successes)}/20"


def test_demo_layout_matches_the_episode_store_contract():
    (ep,) = list(collect_demos("Lift", 1, noise=0.0, seed=3))
    T = len(ep["action"])
    assert ep["action"].shape == (T, 7) and ep["action"].dtype == np.float32
    assert ep["obs.robot0_eef_pos"].shape == (T, 3) and ep["obs.object"].shape == (T, 10)
    for key in ("terminated", "truncated", "success"):
        assert ep[key].shape == (T,) and ep[key].dtype == bool
    # sparse reward: 1 exactly on the success step, which ends the episode (end_on_success)
    assert ep["success"][-1] and ep["terminated"][-1] and not ep["success"][:-1].any()
    np.testing.assert_array_equal(ep["reward"], ep["success"].astype(np.float32))
    assert ep["seed"] == 3 and ep["episode_success"] is True
    assert np.all(np.abs(ep["action"]) <= 1.0)


def test_noise_makes_different_but_reproducible_demos():
    clean = next(collect_demos("Lift", 1, noise=0.0, seed=5))
    noisy = next(collect_demos("Lift", 1, noise=0.8, seed=5))
    noisy_again = next(collect_demos("Lift", 1, noise=0.8, seed=5))
    np.testing.assert_array_equal(noisy["action"], noisy_again["action"])
    n = min(len(clean["action"]), len(noisy["action"]))
    # position dims get std 0.3 * 0.8 = 0.24 noise: the mean absolute difference is far above zero
    assert np.abs(clean["action"][:n, :3] - noisy["action"][:n, :3]).mean() > 0.05
    # same seed -> same scene for both
    np.testing.assert_array_equal(clean["obs.object"][0], noisy["obs.object"][0])


def test_unknown_expert_and_bad_noise_are_refused():
    with pytest.raises(
        ValueError, match="no scripted expert for task 'Square'; known: " + ", ".join(sorted(PLANS))
    ):
        ScriptedExpert("Square")
    with pytest.raises(ValueError, match="noise must be in"):
        ScriptedExpert("Lift", noise=1.5)
