"""The shared Gaussian head: setting and flooring the log-std through its public methods, and the two units
the density can be evaluated in (normalised with the Jacobian term, or environment units) agreeing."""

import math

import pytest
import torch

from gipo_robot.policies import GaussianHead, GaussianPolicy, PolicyConfig

LOW_DIM = {"eef_pos": [3], "object": [4]}


def make_obs(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(batch, *shape, generator=g) for name, shape in LOW_DIM.items()}


def make_policy(**overrides) -> GaussianPolicy:
    torch.manual_seed(0)
    config = dict(low_dim=LOW_DIM, action_dim=3, chunk=2, hidden=[16], log_std_min=-5.0, log_std_max=1.0)
    return GaussianPolicy(PolicyConfig(**{**config, **overrides}))


def log_std_of(policy: GaussianPolicy) -> torch.Tensor:
    return policy.distribution_params(make_obs(1))[1][0]  # (H, A)


def test_gaussian_policy_is_a_gaussian_head():
    assert issubclass(GaussianPolicy, GaussianHead) and GaussianPolicy.policy_type == "gaussian"


def test_set_log_std_sets_every_step_and_dimension():
    policy = make_policy()
    policy.set_log_std(-2.5)
    # raw = atanh(2(-2.5 + 5)/6 - 1) = atanh(-1/6); the soft bound maps it back to -2.5 (up to rounding).
    torch.testing.assert_close(policy.raw_log_std, torch.full((2, 3), math.atanh(-1 / 6)))
    torch.testing.assert_close(log_std_of(policy), torch.full((2, 3), -2.5), rtol=0, atol=1e-6)
    assert policy.raw_log_std.requires_grad  # still the trainable parameter, set in place


@pytest.mark.parametrize("value", [-5.0, 1.0, -7.0, 2.0])
def test_set_log_std_outside_the_bounds_names_them(value):
    with pytest.raises(ValueError, match=r"strictly between log_std_min=-5\.0 and log_std_max=1\.0"):
        make_policy().set_log_std(value)


def test_floor_log_std_raises_only_what_is_below_the_floor():
    policy = make_policy()
    policy.set_log_std(-4.0)
    with torch.no_grad():
        policy.raw_log_std[0].fill_(math.atanh(2 * (-2.0 + 5) / 6 - 1))  # step 0 at log-std -2, step 1 at -4
    policy.floor_log_std(-3.0)
    # step 0: -2 >= -3, untouched; step 1: -4 < -3, raised to the floor.
    torch.testing.assert_close(log_std_of(policy), torch.tensor([[-2.0] * 3, [-3.0] * 3]), rtol=0, atol=1e-6)
    before = policy.raw_log_std.clone()
    policy.floor_log_std(-5.0)  # at log_std_min: nothing is below it
    policy.floor_log_std(-9.0)
    assert torch.equal(policy.raw_log_std, before)
    policy.floor_log_std(3.0)  # above log_std_max: held just below the bound, 1 - 1e-6
    torch.testing.assert_close(log_std_of(policy), torch.full((2, 3), 1.0 - 1e-6), rtol=0, atol=1e-6)
    assert torch.isfinite(policy.raw_log_std).all()


def test_state_dependent_std_cannot_be_set_or_floored():
    policy = make_policy(state_dependent_std=True)
    for method, arg in ((policy.set_log_std, -2.0), (policy.floor_log_std, -3.0)):
        with pytest.raises(ValueError, match=r"needs a state-independent log-std.*state_dependent_std=True"):
            method(arg)


class EnvUnitsPolicy(GaussianPolicy):
    """The same policy with its density evaluated in environment units (as LeRobotGaussianPolicy does)."""

    density_units = "env"


def test_normalized_and_env_units_are_the_same_density():
    torch.manual_seed(0)
    config = PolicyConfig(low_dim=LOW_DIM, action_dim=3, chunk=2, hidden=[16])
    norm, env = GaussianPolicy(config), EnvUnitsPolicy(config)
    env.load_state_dict(norm.state_dict())
    for p in (norm, env):
        p.set_action_bounds(torch.tensor([-2.0, -1.0, 0.0]), torch.tensor([2.0, 3.0, 0.5]))
    obs, actions = make_obs(16), torch.randn(16, 2, 3)
    torch.testing.assert_close(env.log_prob_per_dim(obs, actions), norm.log_prob_per_dim(obs, actions))
    torch.testing.assert_close(env.log_prob_per_dim(obs, actions), norm.distribution(obs).log_prob(actions))
    a_env, logp_env = env.sample(obs, torch.Generator().manual_seed(1))
    a_norm, logp_norm = norm.sample(obs, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a_env, a_norm)
    torch.testing.assert_close(logp_env, logp_norm)
    torch.testing.assert_close(logp_env, env.log_prob(obs, a_env), rtol=1e-5, atol=1e-4)
    assert torch.equal(env.entropy(obs), norm.entropy(obs)) and torch.equal(env.mode(obs), norm.mode(obs))


def test_sampling_from_computed_params_is_sample_and_its_density_is_log_prob():
    policy = make_policy()
    policy.set_action_bounds(torch.tensor([-2.0, -1.0, 0.0]), torch.tensor([2.0, 3.0, 0.5]))
    obs = make_obs(8)
    actions, logp = policy.sample(obs, torch.Generator().manual_seed(3))
    mean, log_std = policy.distribution_params(obs)
    again, logp_again = policy.sample_from_params(mean, log_std, torch.Generator().manual_seed(3))
    assert torch.equal(again, actions) and torch.equal(logp_again, logp)
    # what the collector stores: the exact density of the draw from the same params, no second forward pass
    assert torch.equal(
        policy.log_prob_from_params(mean, log_std, actions), policy.log_prob_per_dim(obs, actions)
    )
