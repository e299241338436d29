"""GAE and V-trace against values computed on paper (γ = λ = 0.5 keeps the arithmetic exact)."""

import math

import pytest
import torch
from torch.testing import assert_close

from gipo_robot.advantages import gae, normalize, vtrace

F = torch.float64
REWARDS = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=F)
VALUES = torch.tensor([1.0, 2.0, 1.0, 0.0], dtype=F)
NEXT_VALUES = torch.tensor([2.0, 1.0, 0.0, 3.0], dtype=F)
NO = torch.zeros(4, dtype=torch.bool)


def at(t: int) -> torch.Tensor:
    flag = torch.zeros(4, dtype=torch.bool)
    flag[t] = True
    return flag


def test_gae_four_steps_by_hand():
    # δ_t = r_t + γ V(s_{t+1}) - V(s_t), γ = 0.5:
    #   δ0 = 1 + 1 - 1 = 1;  δ1 = 0 + 0.5 - 2 = -1.5;  δ2 = 2 + 0 - 1 = 1;  δ3 = 1 + 1.5 - 0 = 2.5
    # A_t = δ_t + γλ A_{t+1}, γλ = 0.25:
    #   A3 = 2.5;  A2 = 1 + 0.625 = 1.625;  A1 = -1.5 + 0.40625 = -1.09375;  A0 = 1 - 0.2734375 = 0.7265625
    adv, ret = gae(REWARDS, VALUES, NEXT_VALUES, NO, NO, gamma=0.5, lam=0.5)
    assert_close(adv, torch.tensor([0.7265625, -1.09375, 1.625, 2.5], dtype=F))
    assert_close(ret, adv + VALUES)


def test_gae_termination_does_not_bootstrap_and_stops_the_trace():
    # s2 is terminal after step 1: δ1 = 0 + 0 - 2 = -2 and A1 = δ1 (nothing flows back from step 2);
    # A0 = 1 + 0.25·(-2) = 0.5; steps 2 and 3 (the next episode) are unchanged.
    adv, _ = gae(REWARDS, VALUES, NEXT_VALUES, at(1), NO, gamma=0.5, lam=0.5)
    assert_close(adv, torch.tensor([0.5, -2.0, 1.625, 2.5], dtype=F))


def test_gae_truncation_bootstraps_but_stops_the_trace():
    # Cut by a time limit after step 1: δ1 keeps γV(s2) = 0.5, so A1 = -1.5; A0 = 1 + 0.25·(-1.5) = 0.625.
    adv, _ = gae(REWARDS, VALUES, NEXT_VALUES, NO, at(1), gamma=0.5, lam=0.5)
    assert_close(adv, torch.tensor([0.625, -1.5, 1.625, 2.5], dtype=F))


def test_gae_batches_independent_environments():
    # Two envs side by side (T, N) give the same as each alone.
    r = torch.stack([REWARDS, REWARDS.flip(0)], dim=1)
    v = torch.stack([VALUES, VALUES.flip(0)], dim=1)
    nv = torch.stack([NEXT_VALUES, NEXT_VALUES.flip(0)], dim=1)
    term = torch.stack([at(1), NO], dim=1)
    adv, _ = gae(r, v, nv, term, torch.zeros_like(term), gamma=0.5, lam=0.5)
    alone, _ = gae(REWARDS.flip(0), VALUES.flip(0), NEXT_VALUES.flip(0), NO, NO, gamma=0.5, lam=0.5)
    assert_close(adv[:, 0], torch.tensor([0.5, -2.0, 1.625, 2.5], dtype=F))
    assert_close(adv[:, 1], alone)


def test_vtrace_two_steps_by_hand():
    # γ = 0.5, λ = 1, ρ̄ = c̄ = 1, π/μ = [2, 0.5] -> ρ = [1, 0.5], c = [1, 0.5].
    # δ0 = 1·(1 + 0.5·0 - 0) = 1;  δ1 = 0.5·(1 + 0.5·2 - 0) = 1
    # v1 = V1 + δ1 = 1;  v0 = V0 + δ0 + γ c0 (v1 - V1) = 0 + 1 + 0.5 = 1.5
    # A0 = ρ0 (r0 + γ v1 - V0) = 1 + 0.5 = 1.5;  A1 = ρ1 (r1 + γ V(s2) - V1) = 0.5·(1 + 1) = 1
    log_rhos = torch.tensor([math.log(2.0), math.log(0.5)], dtype=F)
    z = torch.zeros(2, dtype=torch.bool)
    adv, targets = vtrace(
        log_rhos,
        torch.tensor([1.0, 1.0], dtype=F),
        torch.tensor([0.0, 0.0], dtype=F),
        torch.tensor([0.0, 2.0], dtype=F),
        z,
        z,
        gamma=0.5,
    )
    assert_close(targets, torch.tensor([1.5, 1.0], dtype=F))
    assert_close(adv, torch.tensor([1.5, 1.0], dtype=F))
    # For a surrogate that applies π/μ itself: A1 = r1 + γ V(s2) - V1 = 2, without ρ1; the targets stay.
    unweighted, same_targets = vtrace(
        log_rhos, *(torch.tensor(v, dtype=F) for v in ([1.0, 1.0], [0.0, 0.0], [0.0, 2.0])), z, z, gamma=0.5,
        weight_advantages=False,
    )  # fmt: skip
    assert_close(unweighted, torch.tensor([1.5, 2.0], dtype=F))
    assert_close(same_targets, targets)


@pytest.mark.parametrize(("terminated", "truncated"), [(NO, NO), (at(1), NO), (NO, at(2))])
def test_vtrace_on_policy_targets_are_gae_returns(terminated, truncated):
    # π = μ: ρ = 1, c = λ, so v_t - V(s_t) follows GAE's recursion exactly.
    _, targets = vtrace(
        torch.zeros(4, dtype=F), REWARDS, VALUES, NEXT_VALUES, terminated, truncated, gamma=0.5, lam=0.5
    )
    _, returns = gae(REWARDS, VALUES, NEXT_VALUES, terminated, truncated, gamma=0.5, lam=0.5)
    assert_close(targets, returns)


def test_vtrace_truncation_bootstraps_the_advantage():
    # Truncated after step 1: A1 = r1 + γ V(s2) - V1 = 0 + 0.5·1 - 2 = -1.5 (V(s2) = next_values[1] = 1),
    # not r1 + γ v2 (v2 belongs to the next episode).
    adv, _ = vtrace(torch.zeros(4, dtype=F), REWARDS, VALUES, NEXT_VALUES, NO, at(1), gamma=0.5, lam=0.5)
    assert adv[1].item() == pytest.approx(-1.5)


def test_normalize_with_mask():
    adv = torch.tensor([1.0, 3.0, 100.0], dtype=F)
    out = normalize(adv, torch.tensor([True, True, False]))
    # Mean 2, std 1 over the two unmasked entries: [-1, 1]; the masked entry is 0.
    assert_close(out, torch.tensor([-1.0, 1.0, 0.0], dtype=F), atol=1e-6, rtol=0)
    assert_close(
        normalize(torch.tensor([1.0, 3.0], dtype=F)), torch.tensor([-1.0, 1.0], dtype=F), atol=1e-6, rtol=0
    )


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="time-first"):
        gae(REWARDS, VALUES[:3], NEXT_VALUES, NO, NO)
