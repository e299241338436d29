"""GaussianPolicy: exact log-probs against torch.distributions, sampling, clipping, gradients, encoders."""

import math

import pytest
import torch

from gipo_robot.policies import Critic, GaussianPolicy, PolicyConfig

LOW_DIM = {"eef_pos": [3], "object": [10]}


def make_obs(batch: int, images: dict | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = {name: torch.randn(batch, *shape, generator=g) for name, shape in LOW_DIM.items()}
    for name, shape in (images or {}).items():
        obs[name] = torch.randint(0, 256, (batch, *shape), generator=g, dtype=torch.uint8)
    return obs


@pytest.fixture
def policy() -> GaussianPolicy:
    torch.manual_seed(0)
    p = GaussianPolicy(PolicyConfig(low_dim=LOW_DIM, action_dim=7, chunk=4, hidden=[32, 32]))
    # Non-trivial normalisation so the Jacobian term of the action map matters.
    p.set_action_bounds(torch.linspace(-2.0, -0.5, 7), torch.linspace(0.5, 3.0, 7))
    p.encoder.set_obs_stats(
        {k: torch.full(s, 0.3) for k, s in LOW_DIM.items()},
        {k: torch.full(s, 2.0) for k, s in LOW_DIM.items()},
    )
    with torch.no_grad():
        p.mean_head.weight.normal_(std=0.5)  # means that depend on the observation
        p.raw_log_std.normal_(std=0.3)
    return p


def test_log_prob_matches_torch_distributions(policy):
    obs = make_obs(16)
    actions = torch.randn(16, 4, 7) * 2
    dist = policy.distribution(obs)
    expected_per_dim = dist.log_prob(actions)
    torch.testing.assert_close(policy.log_prob_per_dim(obs, actions), expected_per_dim, rtol=1e-5, atol=1e-5)
    # The chunk's log-prob is the sum over steps and dimensions.
    torch.testing.assert_close(
        policy.log_prob(obs, actions), expected_per_dim.sum(dim=(1, 2)), rtol=1e-5, atol=1e-4
    )


def test_entropy_matches_torch_distributions(policy):
    obs = make_obs(5)
    torch.testing.assert_close(policy.entropy(obs), policy.distribution(obs).entropy().sum(dim=(1, 2)))


def test_sample_log_prob_is_the_log_prob_of_the_raw_sample(policy):
    obs = make_obs(64)
    actions, logp = policy.sample(obs, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(logp, policy.log_prob(obs, actions), rtol=1e-5, atol=1e-4)


def test_clipping_leaves_log_prob_on_the_raw_sample(policy):
    # Widen the std so many samples leave the bounds; the robot gets clip(a), the log-prob scores a.
    with torch.no_grad():
        policy.raw_log_std.fill_(2.0)
    obs = make_obs(256)
    actions, logp = policy.sample(obs, generator=torch.Generator().manual_seed(0))
    sent = policy.clip(actions)
    outside = (actions < policy.action_low) | (actions > policy.action_high)
    assert outside.float().mean() > 0.1
    assert torch.equal(sent[~outside], actions[~outside])
    assert (sent >= policy.action_low).all() and (sent <= policy.action_high).all()
    # log_prob of the clipped action differs (it sits on the bound), the stored raw one matches exactly.
    torch.testing.assert_close(logp, policy.log_prob(obs, actions), rtol=1e-5, atol=1e-4)
    assert not torch.allclose(logp, policy.log_prob(obs, sent))


def test_samples_follow_the_distribution(policy):
    obs = {k: v[:1].expand(20000, *v.shape[1:]) for k, v in make_obs(1).items()}
    actions, _ = policy.sample(obs, generator=torch.Generator().manual_seed(1))
    dist = policy.distribution({k: v[:1] for k, v in obs.items()})
    torch.testing.assert_close(actions.mean(0), dist.mean[0], atol=0.05 * dist.stddev.max().item(), rtol=0)
    torch.testing.assert_close(actions.std(0), dist.stddev[0], rtol=0.05, atol=0)


def test_mode_is_the_clipped_mean(policy):
    obs = make_obs(8)
    torch.testing.assert_close(policy.mode(obs), policy.clip(policy.distribution(obs).mean))


def test_gradients_reach_every_parameter(policy):
    obs = make_obs(8)
    actions = torch.randn(8, 4, 7)
    policy.log_prob(obs, actions).sum().backward()
    for name, param in policy.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_log_std_is_bounded_and_keeps_its_gradient():
    config = PolicyConfig(low_dim=LOW_DIM, action_dim=2, log_std_min=-3.0, log_std_max=0.5)
    p = GaussianPolicy(config)
    with torch.no_grad():
        p.raw_log_std.fill_(50.0)  # far beyond the upper bound
    _, log_std = p.distribution_params(make_obs(2))
    assert (log_std <= 0.5).all() and (log_std > 0.49).all()
    with torch.no_grad():
        p.raw_log_std.fill_(1.0)
    _, log_std = p.distribution_params(make_obs(2))
    log_std.sum().backward()
    assert p.raw_log_std.grad.abs().min() > 0


def test_initial_log_std_is_the_configured_one():
    p = GaussianPolicy(PolicyConfig(low_dim=LOW_DIM, action_dim=3, log_std_init=-1.5))
    _, log_std = p.distribution_params(make_obs(1))
    torch.testing.assert_close(log_std, torch.full_like(log_std, -1.5))


def test_state_dependent_std_varies_with_the_observation():
    torch.manual_seed(0)
    p = GaussianPolicy(PolicyConfig(low_dim=LOW_DIM, action_dim=3, state_dependent_std=True, hidden=[16]))
    with torch.no_grad():
        p.log_std_head.weight.normal_()
    _, log_std = p.distribution_params(make_obs(4))
    assert log_std.std(dim=0).max() > 1e-3


def test_image_policy_fuses_cameras_with_low_dim():
    images = {"agentview": [3, 32, 32]}
    p = GaussianPolicy(PolicyConfig(low_dim=LOW_DIM, images=images, action_dim=7, chunk=2, hidden=[32]))
    obs = make_obs(3, images)
    actions, logp = p.sample(obs)
    assert actions.shape == (3, 2, 7) and logp.shape == (3,)
    p.log_prob(obs, actions).sum().backward()
    assert p.encoder.cameras["agentview"].convs[0].weight.grad.abs().sum() > 0
    # The image changes the output.
    other = dict(obs, agentview=torch.zeros_like(obs["agentview"]))
    assert not torch.allclose(p.distribution(obs).mean, p.distribution(other).mean)


def test_observation_normalisation_is_applied(policy):
    # Shifting an input by k·std with mean shifted by k·std gives the same output.
    obs = make_obs(4)
    mean_before = policy.distribution(obs).mean
    policy.encoder.obs_mean += 2.0 * policy.encoder.obs_std
    shifted = {k: v + 2.0 * 2.0 for k, v in obs.items()}  # std is 2.0 for every feature
    torch.testing.assert_close(policy.distribution(shifted).mean, mean_before, rtol=1e-4, atol=1e-5)


def test_log_prob_includes_the_action_scale_jacobian():
    # With bounds [-2, 2] (scale 2), the density in env units is the normalised one divided by 2 per dim:
    # log p_env(a) = log p_norm(a/2) - log 2, so for A = 3 dims the chunk log-prob drops by 3·ln 2.
    torch.manual_seed(0)
    p = GaussianPolicy(PolicyConfig(low_dim=LOW_DIM, action_dim=3))
    obs = make_obs(2)
    a = torch.zeros(2, 1, 3)
    unit = p.log_prob(obs, a)
    p.set_action_bounds(torch.full((3,), -2.0), torch.full((3,), 2.0))
    torch.testing.assert_close(p.log_prob(obs, a * 2), unit - 3 * math.log(2))


def test_bad_inputs_name_the_problem(policy):
    obs = make_obs(2)
    with pytest.raises(ValueError, match=r"\(B, H, A\)"):
        policy.log_prob(obs, torch.zeros(2, 7))
    with pytest.raises(KeyError, match="object"):
        policy.distribution({"eef_pos": obs["eef_pos"]})
    with pytest.raises(ValueError, match="eef_pos"):
        policy.distribution(dict(obs, eef_pos=torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="action_dim"):
        PolicyConfig(low_dim=LOW_DIM, action_dim=0)
    with pytest.raises(ValueError, match="log_std"):
        PolicyConfig(low_dim=LOW_DIM, action_dim=2, log_std_init=3.0)
    with pytest.raises(ValueError, match="high > low"):
        policy.set_action_bounds(torch.ones(7), torch.ones(7))


def test_critic_outputs_one_value_per_observation():
    critic = Critic(PolicyConfig(low_dim=LOW_DIM, action_dim=7, hidden=[16]))
    values = critic(make_obs(5))
    assert values.shape == (5,)
    values.sum().backward()
    assert critic.head.weight.grad is not None


def test_standardised_observations_are_clipped():
    # A feature with std 0.01: an input 1.0 away is 100 std out; with obs_clip = 5 it acts like 5 std.
    torch.manual_seed(0)
    p = GaussianPolicy(PolicyConfig(low_dim={"x": [1]}, action_dim=1, hidden=[8], obs_clip=5.0))
    p.encoder.set_obs_stats({"x": torch.zeros(1)}, {"x": torch.full((1,), 0.01)})
    with torch.no_grad():
        p.mean_head.weight.normal_()
    far, edge, inside = (p.distribution({"x": torch.tensor([[v]])}).mean for v in (1.0, 0.05, 0.03))
    torch.testing.assert_close(far, edge)
    assert not torch.allclose(edge, inside)
    unclipped = GaussianPolicy(PolicyConfig(low_dim={"x": [1]}, action_dim=1, hidden=[8], obs_clip=None))
    unclipped.load_state_dict(p.state_dict())
    assert not torch.allclose(unclipped.distribution({"x": torch.tensor([[1.0]])}).mean, far)


def test_spatial_softmax_finds_where_the_feature_map_is_hot():
    from gipo_robot.policies.gaussian import SpatialSoftmax

    pool = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():  # the keypoint map is the feature map itself, and a cold temperature
        pool.maps.weight.fill_(1.0)
        pool.maps.bias.zero_()
        pool.log_temperature.fill_(-5.0)
    features = torch.zeros(1, 1, 5, 9)
    features[0, 0, 4, 2] = 1.0  # row 4 of 0..4 -> y = +1; column 2 of 0..8 -> x = -1 + 2 * 2/8 = -0.5
    torch.testing.assert_close(pool(features), torch.tensor([[-0.5, 1.0]]), atol=1e-4, rtol=0)


def test_a_camera_policy_saved_before_image_pool_loads_with_mean_pooling(tmp_path):
    import json

    from gipo_robot.policies.checkpoint import load_policy, save_policy

    images = {"cam_image": [3, 16, 16]}
    policy = GaussianPolicy(PolicyConfig(low_dim={"q": [2]}, action_dim=2, images=images, image_pool="mean"))
    save_policy(tmp_path / "p", policy)
    meta = json.loads((tmp_path / "p" / "config.json").read_text())
    del meta["policy"]["image_pool"], meta["policy"]["image_keypoints"]  # as written before the field existed
    (tmp_path / "p" / "config.json").write_text(json.dumps(meta))
    loaded = load_policy(tmp_path / "p")
    assert loaded.config.image_pool == "mean"
    torch.testing.assert_close(
        loaded.encoder.cameras["cam_image"].proj.weight, policy.encoder.cameras["cam_image"].proj.weight
    )
    assert PolicyConfig(low_dim={"q": [2]}, action_dim=2, images=images).image_pool == "spatial_softmax"
