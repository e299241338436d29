"""The learner with ``advantage="vtrace"``: the importance weight is applied once (by the objective), not
also inside the advantage (issue 25 item 7); the critic update skips non-finite steps as the policy's does."""

from __future__ import annotations

import pytest
import torch

from gipo_robot.advantages import vtrace
from gipo_robot.policies import GaussianPolicy, PolicyConfig
from gipo_robot.policies.critic import Critic
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.learner import FinetuneError, Learner, advantages
from gipo_robot.train.replay import ReplayBuffer
from tests.train.test_replay import batch


def stale_batch(policy: GaussianPolicy, shift: float = 0.1):
    """A batch whose behaviour log-probs are ``shift`` per dimension above the current policy's (so every
    sample has π/μ = exp(-shift · H · A) < 1, inside V-trace's truncation)."""
    b = batch(0, t=5, n=2, h=2, a=3)
    with torch.no_grad():
        logp = policy.log_prob_per_dim(b.flat("obs"), b.flat("actions")).view_as(b.logp_behavior)
    b.logp_behavior = logp + shift
    return b


def test_vtrace_advantages_carry_no_importance_weight_in_the_learner():
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(low_dim={"x": [4]}, action_dim=3, chunk=2, hidden=[8]))
    critic = Critic(policy.config)
    config = FinetuneConfig(advantage="vtrace")
    b = stale_batch(policy)
    adv, targets = advantages(b, policy, critic, config)
    with torch.no_grad():
        values = critic(b.flat("obs")).view(5, 2)
        next_values = critic(b.flat("next_obs")).view(5, 2)
    log_rho = torch.full((5, 2), -0.1 * 6)
    args = (log_rho, b.rewards, values, next_values, b.terminated, b.truncated)
    kw = {"gamma": config.gamma, "lam": config.gae_lambda}
    weighted, weighted_targets = vtrace(*args, **kw)
    # The objective multiplies the advantage by the ratio π/μ = exp(-0.6); before the fix the learner
    # handed it ρ·A, so each sample was weighted by ρ twice.
    torch.testing.assert_close(adv, weighted / torch.exp(log_rho), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(targets, weighted_targets)  # the value targets keep their correction
    assert not torch.allclose(adv, weighted)


def test_non_finite_critic_updates_are_skipped_and_stop_the_run_when_they_persist():
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(low_dim={"x": [4]}, action_dim=3, chunk=2, hidden=[8]))
    critic = Critic(policy.config)
    config = FinetuneConfig(critic_warmup_iters=10, max_bad_updates=3, minibatch_size=4)
    learner = Learner(policy, critic, config)
    replay = ReplayBuffer(capacity=1)
    b = batch(0, t=5, n=2, h=2, a=3)
    b.terminated[:, :] = True  # one-step episodes: a bad reward spoils only its own value target
    b.rewards[0, 0] = float("nan")  # one corrupt reward
    replay.add(b)
    record = learner.update(replay, 0, torch.Generator().manual_seed(0), n_updates=10)
    # The minibatches holding it were skipped, the others stepped: before the guard, the first NaN step
    # turned every critic weight into NaN.
    assert all(torch.isfinite(p).all() for p in critic.parameters())
    assert record["value_loss"] == record["value_loss"]  # a finite mean over the steps taken
    b.rewards[:, :] = float("nan")  # every target corrupt: max_bad_updates skips in a row end the run
    with pytest.raises(FinetuneError, match="3 non-finite critic updates in a row at iteration 1"):
        learner.update(replay, 0, torch.Generator().manual_seed(0), n_updates=10)
    assert all(torch.isfinite(p).all() for p in critic.parameters())
