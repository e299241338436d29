"""The analytic bias–variance study: GridWorld dynamics, exact Q-values, and estimator properties."""

import numpy as np
import pytest

from gipo_robot.bias_variance import (
    GOAL,
    N_ACTIONS,
    AuthorsStudyConfig,
    PairBatch,
    StudyConfig,
    authors_pairs,
    bias_variance,
    dominated,
    effective_coefficients,
    frontier_variance,
    logit_bias_variance,
    q_values,
    run_authors_study,
    run_study,
    sample_pairs,
    transition_table,
)

UP, DOWN, LEFT, RIGHT = range(4)


def test_transitions_respect_walls():
    # Cells: 0=(0,0) 1=(0,1) 2=(1,0) 3=(1,1).
    nxt = transition_table()
    assert nxt[0, UP] == 0 and nxt[0, LEFT] == 0  # walls
    assert nxt[0, RIGHT] == 1 and nxt[0, DOWN] == 2
    assert nxt[1, DOWN] == GOAL and nxt[2, RIGHT] == GOAL


def test_q_values_of_a_deterministic_policy_by_hand():
    # Policy: right at 0, down at 1, right at 2 -> the goal is one or two steps away. γ = 0.9.
    # V(1) = V(2) = 1 (reward 1 on entering the goal); V(0) = γ·V(1) = 0.9.
    # Q(0, right) = γ·V(1) = 0.9; Q(0, down) = γ·V(2) = 0.9; Q(0, up) = γ·V(0) = 0.81; Q(1, down) = 1.
    policy = np.zeros((4, N_ACTIONS))
    policy[0, RIGHT] = policy[1, DOWN] = policy[2, RIGHT] = 1.0
    policy[GOAL, UP] = 1.0
    q = q_values(policy, gamma=0.9)
    assert q[0, RIGHT] == pytest.approx(0.9)
    assert q[0, DOWN] == pytest.approx(0.9)
    assert q[0, UP] == pytest.approx(0.81)
    assert q[0, LEFT] == pytest.approx(0.81)
    assert q[1, DOWN] == pytest.approx(1.0)
    assert q[1, UP] == pytest.approx(0.9)  # the wall keeps it in cell 1, whose value is 1
    assert q[1, LEFT] == pytest.approx(0.81)  # back to cell 0, whose value is 0.9
    np.testing.assert_allclose(q[GOAL], 0.0)


@pytest.fixture(scope="module")
def stale_batch():
    return sample_pairs(200, delta=2.0, gamma=0.9, rng=np.random.default_rng(1))


def test_plain_importance_sampling_is_unbiased(stale_batch):
    # E_μ[ρ A ∇log π] = Σ_a π(a) A(a) ∇log π(a) = g*, exactly, however stale μ is.
    bias2, var = bias_variance("no_clip", {}, stale_batch)
    assert bias2 < 1e-20
    assert var > 1.0  # ...and it pays for it in variance


def test_on_policy_data_every_objective_is_the_on_policy_estimator():
    # μ = π: ρ = 1 everywhere, every objective's weight is 1, so c(a) = A(a) and the bias is 0.
    rng = np.random.default_rng(0)
    batch = sample_pairs(50, delta=0.0, gamma=0.9, rng=rng)
    ref = bias_variance("no_clip", {}, batch)
    for name, params in [("gipo", {"sigma": 0.3}), ("ppo_clip", {}), ("sapo", {}), ("cispo", {})]:
        np.testing.assert_allclose(
            effective_coefficients(name, params, batch), batch.adv, rtol=1e-12, atol=1e-12
        )
        assert bias_variance(name, params, batch) == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_coefficients_are_the_objectives_weights_times_advantage():
    # One pair, action 0 with ρ = π/μ = 0.5/0.25 = 2, A = 1:
    # GIPO σ=1: ρ·exp(-(ln 2)²/2) = 2·0.78656 = 1.57311. PPO ε=0.2, A>0, ρ>1.2: clipped -> 0.
    batch = PairBatch(
        pi=np.array([[0.5, 0.25, 0.125, 0.125]]),
        mu=np.array([[0.25, 0.25, 0.25, 0.25]]),
        adv=np.array([[1.0, 0.0, -1.0, 0.0]]),
        kl=np.zeros(1),
    )
    c_gipo = effective_coefficients("gipo", {"sigma": 1.0}, batch)
    c_ppo = effective_coefficients("ppo_clip", {"eps": 0.2}, batch)
    assert c_gipo[0, 0] == pytest.approx(2 * np.exp(-(np.log(2) ** 2) / 2))
    assert c_ppo[0, 0] == 0.0
    # Action 2: ρ = 0.5, A = -1. PPO: ρ < 0.8 with A < 0 is the clipped side -> 0.
    # GIPO: -0.5·exp(-(ln 0.5)²/2) = -0.39328 (symmetric in log space: same ω as ρ = 2).
    assert c_ppo[0, 2] == 0.0
    assert c_gipo[0, 2] == pytest.approx(-0.5 * np.exp(-(np.log(2) ** 2) / 2))


def test_gipo_sigma_trades_bias_for_variance(stale_batch):
    # Wider σ -> closer to plain IS: less bias, more variance (monotone along the sweep).
    points = [bias_variance("gipo", {"sigma": s}, stale_batch) for s in (0.3, 1.0, 3.0)]
    biases, variances = zip(*points, strict=True)
    assert biases[0] > biases[1] > biases[2]
    assert variances[0] < variances[1] < variances[2]


def test_frontier_helpers():
    front = [(0.01, 10.0), (0.1, 1.0)]
    assert dominated((0.2, 2.0), front)
    assert not dominated((0.05, 0.5), front)
    # Log-log interpolation halfway (in log bias) between the two points: variance √(10·1) = 3.162.
    assert frontier_variance(np.sqrt(0.01 * 0.1), front) == pytest.approx(np.sqrt(10.0))
    assert frontier_variance(0.001, front) == float("inf")  # less biased than the sweep reaches
    assert frontier_variance(1.0, front) == pytest.approx(1.0)


def test_run_study_is_reproducible_and_complete():
    config = StudyConfig(deltas=[0.5, 2.0], n_pairs=30)
    a, b = run_study(config), run_study(config)
    assert a == b
    n_points = sum(len(f["params"]) for f in config.families.values())
    for level in a["levels"]:
        assert len(level["points"]) == n_points
        assert set(level["best_mse"]["16"]) == set(config.families)
    assert a["levels"][1]["kl_mean"] > a["levels"][0]["kl_mean"]


# --- The authors' layout: 3 hand-set targets × 7 behaviours, one logit, N = 1 ---


def test_authors_setup_is_three_targets_by_seven_behaviours_and_deterministic():
    config = AuthorsStudyConfig()
    result = run_authors_study(config)
    assert result["setup"] == "authors"
    assert set(config.families) == {"gipo", "ppo_clip", "sapo", "no_clip"}  # the paper's four objectives
    assert len(result["levels"]) == 3 * 7
    assert [(lv["target"], lv["delta"]) for lv in result["levels"][:7]] == [
        ("uniform", d) for d in config.behaviour_shifts
    ]
    n_points = sum(len(f["params"]) for f in config.families.values())
    for level in result["levels"]:
        assert len(level["points"]) == n_points
        assert set(level["best_mse"]) == {"1"}
    for target in config.targets:  # each target's behaviours are ordered by staleness
        kls = [lv["kl_mean"] for lv in result["levels"] if lv["target"] == target]
        assert np.all(np.diff(kls) > 0)
    assert run_authors_study(config) == result  # hand-set policies: nothing random


def test_one_logit_on_policy_by_hand():
    # π uniform at every cell: the grid's diagonal symmetry makes A = (−a, a, −a, a) (up, down, left, right).
    # For the "right" logit k, ĝ(a) = A(a)(1[a=k] − 1/4): right 3a/4, down −a/4, up and left +a/4.
    # g* = π_k A_k = a/4; E[ĝ²] = (9 + 1 + 1 + 1)a²/64 = 3a²/16, so Var = 3a²/16 − a²/16 = a²/8 = 2·g*²:
    # one on-policy sample has relative variance 2 and no bias, whatever the objective.
    config = AuthorsStudyConfig(targets={"uniform": [0.0] * 4}, behaviour_shifts=[0.0])
    batch, labels = authors_pairs(config)
    assert labels == [("uniform", 0.0)]
    a = batch.adv[0, 3]
    np.testing.assert_allclose(batch.adv[0], [-a, a, -a, a], rtol=1e-12)
    for name, params in [("no_clip", {}), ("gipo", {"sigma": 0.3}), ("ppo_clip", {}), ("sapo", {})]:
        bias2, var, g_true = logit_bias_variance(name, params, batch, logit=3)
        assert g_true[0] == pytest.approx(a / 4)
        assert bias2[0] == pytest.approx(0.0, abs=1e-20)
        assert var[0] / g_true[0] ** 2 == pytest.approx(2.0)


def test_authors_no_clip_is_unbiased_at_every_pair():
    # E_μ[ρ A ∂log π/∂θ_k] = g*_k exactly, for every target and behaviour (relative bias² ~ rounding only).
    for level in run_authors_study(AuthorsStudyConfig())["levels"]:
        (point,) = [p for p in level["points"] if p["family"] == "no_clip"]
        assert point["bias2"] < 1e-20
        assert point["variance"] > 0.5


def test_ppo_clip_kills_every_sample_once_the_behaviour_is_stale_enough():
    # Uniform target, behaviour logits + δ·(1, 0, 1, −1). At δ = 0.5: μ ∝ (e^½, 1, e^½, e^−½) = (0.336, 0.204,
    # 0.336, 0.124), so ρ = (0.74, 1.23, 0.74, 2.02). With ε = 0.2, up/left (A < 0, ρ < 0.8) and down/right
    # (A > 0, ρ > 1.2) are all on the clipped side: every sample's gradient is 0, so the estimate is 0
    # (relative bias² exactly 1, variance 0). At δ = 0.25, ρ = (0.85, 1.09, 0.85, 1.40): only "right" is
    # clipped, so PPO keeps some gradient (bias² < 1). GIPO never zeroes a sample: variance > 0 throughout.
    config = AuthorsStudyConfig(targets={"uniform": [0.0] * 4}, behaviour_shifts=[0.25, 0.5, 1.0, 3.0])
    batch, _ = authors_pairs(config)
    np.testing.assert_allclose(batch.pi[1] / batch.mu[1], [0.744, 1.226, 0.744, 2.022], atol=1e-3)
    bias2, var, g_true = logit_bias_variance("ppo_clip", {"eps": 0.2}, batch, logit=3)
    rel_bias2 = bias2 / g_true**2
    assert rel_bias2[0] < 1.0
    np.testing.assert_allclose(rel_bias2[1:], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(var[1:], 0.0)
    g_bias2, g_var, _ = logit_bias_variance("gipo", {"sigma": 1.0}, batch, logit=3)
    assert np.all(g_var > 0)
    assert np.all(g_bias2 / g_true**2 < 1.0)


def test_authors_config_names_the_bad_field():
    with pytest.raises(ValueError, match="logit"):
        AuthorsStudyConfig(logit=N_ACTIONS)
    with pytest.raises(ValueError, match="targets"):
        AuthorsStudyConfig(targets={"short": [0.0, 1.0]})
