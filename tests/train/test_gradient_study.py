"""The gradient study (issue 25 item 5) on a tiny Gaussian policy and synthetic data: no simulator.

π is a 2-input, 1-action Gaussian policy with σ = 1 (log-std 0, normalised units) and a mean near 0; the
behaviour policy μ is π with its mean shifted by δ (the mean head's bias), so KL(μ‖π) = δ²/2 exactly and
ρ = π(a)/μ(a) is known in closed form. The advantage of an action is the action itself (not normalised),
so the on-policy gradient has a closed form too: for the mean-head bias b, E_π[a · ∂log π/∂b] =
E_π[a (a − m)] / σ² = 1.
"""

import copy

import pytest
import torch

from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
from gipo_robot.train.gradient_study import (
    ON_POLICY,
    Estimator,
    Moments,
    Samples,
    bias_variance,
    gradient_moments,
    minibatch_gradients,
    on_policy,
    samples_from_batches,
    staleness,
)

ESTIMATORS = [
    Estimator("gipo", "gipo", {"sigma": 1.0}),
    Estimator("gipo_dim", "gipo", {"sigma": 1.0}, "dim"),
    Estimator("ppo_clip", "ppo_clip", {"eps": 0.2}),
    Estimator("no_clip", "no_clip"),
    Estimator("sapo", "sapo"),
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is ~30x faster than two on a machine whose cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_policy(action_dim: int = 1) -> GaussianPolicy:
    torch.manual_seed(0)
    return GaussianPolicy(
        PolicyConfig(low_dim={"x": [2]}, action_dim=action_dim, hidden=[8], log_std_init=0.0)
    )


def shifted(policy: GaussianPolicy, delta: float) -> GaussianPolicy:
    """``policy`` with its mean moved by ``delta`` (σ = 1, so by δσ)."""
    mu = copy.deepcopy(policy)
    with torch.no_grad():
        mu.mean_head.bias += delta
    return mu


def pool(behaviour: GaussianPolicy, n: int, seed: int) -> Samples:
    """``n`` samples of ``behaviour`` on random states; advantage = the action."""
    gen = torch.Generator().manual_seed(seed)
    obs = {"x": torch.randn(n, 2, generator=gen)}
    actions, _ = behaviour.sample(obs, gen)
    with torch.no_grad():
        logp_b = behaviour.log_prob_per_dim(obs, actions)
    return Samples(obs, actions, logp_b, torch.ones(n, 1, dtype=torch.bool), actions[:, 0, 0].clone())


def moments(policy, samples, seed, estimators=(*ESTIMATORS, ON_POLICY), draws=64, batch=512):
    gen = torch.Generator().manual_seed(seed)
    return gradient_moments(policy, samples, estimators, batch_size=batch, draws=draws, generator=gen,
                            normalize_advantages=False)  # fmt: skip


def test_on_fresh_data_every_estimator_is_the_on_policy_gradient_on_the_same_minibatch():
    # μ = π: ρ = 1 on every sample, where each objective's effective weight is 1 (objectives.py docstring)
    pi = tiny_policy()
    grads = minibatch_gradients(pi, pool(pi, 256, seed=1), [*ESTIMATORS, ON_POLICY])
    reference = grads["on_policy"][0]
    assert reference.norm() > 0
    for est in ESTIMATORS:
        torch.testing.assert_close(grads[est.name][0], reference, rtol=1e-5, atol=1e-9)
        assert grads[est.name][1]["frac_weight_below_1e-3"] == 0.0


def test_a_per_dimension_ratio_is_measured_against_the_on_policy_gradient_of_its_own_level():
    # at ρ = 1 the per-dimension objective averages −Â log π(a_i|s) over the A = 3 dimensions: its gradient is
    # the per-step one (which sums them) divided by A, and it equals the on-policy gradient at level "dim"
    pi = tiny_policy(action_dim=3)
    samples = pool(pi, 256, seed=1)
    gipo_dim = Estimator("gipo_dim", "gipo", {"sigma": 1.0}, "dim")
    grads = minibatch_gradients(pi, samples, [gipo_dim, on_policy("dim"), ON_POLICY])
    torch.testing.assert_close(grads["gipo_dim"][0], grads["on_policy_dim"][0], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(grads["on_policy_dim"][0] * 3, grads["on_policy"][0], rtol=1e-5, atol=1e-9)


def test_at_lag_zero_the_bias_is_zero_up_to_sampling_noise():
    pi = tiny_policy()
    a, b = moments(pi, pool(pi, 4096, seed=1), 10), moments(pi, pool(pi, 4096, seed=2), 11)
    ra, rb = moments(pi, pool(pi, 4096, seed=3), 12), moments(pi, pool(pi, 4096, seed=4), 13)
    for est in ESTIMATORS:
        result = bias_variance([a[est.name], b[est.name]], [ra["on_policy"].mean, rb["on_policy"].mean])
        # each pool's mean is off by noise of squared size ~ variance · B/M (pool_noise: both pools'); the
        # cross product cancels it in expectation, leaving a bias² within a few times that noise of zero
        assert abs(result["bias2"]) < 3 * result["pool_noise"], (est.name, result)
        assert abs(result["bias2_rel"]) < 0.03
        assert result["cosine"] > 0.99
        # on the same pools every objective's draws are the on-policy draws, so is the bias: zero
        same = bias_variance([a[est.name], b[est.name]], [a["on_policy"].mean, b["on_policy"].mean])
        assert abs(same["bias2_rel"]) < 1e-8


def test_the_on_policy_gradient_matches_its_closed_form():
    # ∂L/∂b = −E_π[a (a − m)] / σ² = −1 with L = −mean(Â log π), Â = a, σ = 1 (module docstring)
    pi = tiny_policy()
    got = moments(pi, pool(pi, 8192, seed=5), 14, [ON_POLICY], draws=16, batch=8192)["on_policy"]
    names = [n for n, p in pi.named_parameters() if p.requires_grad]
    sizes = [p.numel() for p in pi.parameters() if p.requires_grad]
    bias_grad = dict(zip(names, got.mean.split(sizes), strict=True))["mean_head.bias"]
    assert bias_grad.item() == pytest.approx(-1.0, abs=0.05)


def test_no_clip_is_unbiased_off_policy_while_ppo_clip_is_biased_once_ratios_leave_its_band():
    # μ's mean 1 below π's: log ρ = a + 1/2 for a ~ μ = N(−1, 1). PPO-Clip zeroes the samples with ρ < 0.8
    # and Â = a < 0 (a < −0.72: 61%) and those with ρ > 1.2 and a > 0 (16%); No-Clip's ρÂ∇log π has the
    # on-policy expectation exactly
    pi = tiny_policy()
    mu = shifted(pi, -1.0)
    a, b = (
        moments(pi, pool(mu, 8192, seed=1), 10, draws=128),
        moments(pi, pool(mu, 8192, seed=2), 11, draws=128),
    )
    ra, rb = (
        moments(pi, pool(pi, 8192, seed=3), 12, draws=128),
        moments(pi, pool(pi, 8192, seed=4), 13, draws=128),
    )
    result = {n: bias_variance([a[n], b[n]], [ra["on_policy"].mean, rb["on_policy"].mean]) for n in a}
    assert abs(result["no_clip"]["bias2_rel"]) < 0.05
    assert result["no_clip"]["cosine"] > 0.98
    assert a["ppo_clip"].stats["frac_weight_below_1e-3"] == pytest.approx(0.77, abs=0.03)  # its dead samples
    assert result["ppo_clip"]["bias2_rel"] > 0.5
    # without any correction (ρ taken as 1) the stale data's gradient is far off: what the ratio repairs
    assert result["on_policy"]["bias2_rel"] > 5
    # the trust-weighted estimators trade bias for variance: biased, but far less variable than No-Clip
    for name in ("gipo", "sapo"):
        assert result[name]["bias2_rel"] > 0.1
        assert result[name]["variance"] < 0.1 * result["no_clip"]["variance"]


def test_common_random_numbers_shrink_the_noise_of_the_bias_not_the_bias():
    # pools A and R1 from the same seed: the same states and the same action noise, the actions 1 apart; the
    # pair (A, R1) stays independent of (B, R2), so bias² is still unbiased, and the paired difference is
    # far less noisy than one of independent pools
    pi = tiny_policy()
    mu = shifted(pi, -1.0)

    def result(seeds):
        a, b = moments(pi, pool(mu, 4096, seeds[0]), 10), moments(pi, pool(mu, 4096, seeds[1]), 11)
        ra, rb = moments(pi, pool(pi, 4096, seeds[2]), 10), moments(pi, pool(pi, 4096, seeds[3]), 11)
        return {n: bias_variance([a[n], b[n]], [ra["on_policy"].mean, rb["on_policy"].mean]) for n in a}

    paired, independent = result((1, 2, 1, 2)), result((1, 2, 3, 4))
    assert paired["no_clip"]["pool_noise"] < 0.3 * independent["no_clip"]["pool_noise"]
    assert abs(paired["no_clip"]["bias2_rel"]) < 0.05
    assert paired["ppo_clip"]["bias2_rel"] == pytest.approx(independent["ppo_clip"]["bias2_rel"], rel=0.1)


def test_no_clip_variance_grows_with_the_measured_kl():
    pi = tiny_policy()
    kls, variances = [], []
    for delta in (0.0, 0.75, 1.5):
        samples = pool(shifted(pi, delta), 8192, seed=1)
        kls.append(staleness(pi, samples)["kl"])
        variances.append(moments(pi, samples, 10, [Estimator("no_clip", "no_clip")])["no_clip"].variance)
        # KL(μ‖π) of two unit-variance Gaussians δ apart is δ²/2
        assert kls[-1] == pytest.approx(delta**2 / 2, abs=0.05)
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 3 * variances[0]


def test_staleness_ess_is_one_on_fresh_data_and_falls_with_the_shift():
    pi = tiny_policy()
    fresh = staleness(pi, pool(pi, 4096, seed=1))
    assert fresh["ess"] == pytest.approx(1.0, abs=1e-6) and abs(fresh["kl"]) < 1e-5
    # with log ρ ~ N(−δ²/2, δ²) under μ, E_μ[ρ²] = exp(δ²), so the normalised ESS is exp(−δ²)
    stale = staleness(pi, pool(shifted(pi, 1.0), 20000, seed=2))
    assert stale["ess"] == pytest.approx(torch.tensor(-1.0).exp().item(), abs=0.05)


def test_moments_are_the_sample_mean_and_variance_of_the_draws():
    pi = tiny_policy()
    samples = pool(shifted(pi, 0.5), 300, seed=1)
    got = moments(pi, samples, 7, [ESTIMATORS[0], ON_POLICY], draws=5, batch=64)
    gen = torch.Generator().manual_seed(7)  # the same minibatches, by hand
    draws = {"gipo": [], "on_policy": []}
    for _ in range(5):
        idx = torch.randperm(300, generator=gen)[:64]
        grads = minibatch_gradients(pi, samples.subset(idx), [ESTIMATORS[0], ON_POLICY],
                                    normalize_advantages=False)  # fmt: skip
        for name, (g, _) in grads.items():
            draws[name].append(g)
    for name, gs in draws.items():
        stack = torch.stack(gs)
        torch.testing.assert_close(got[name].mean, stack.mean(0))
        expected = (stack - stack.mean(0)).square().sum(1).sum() / 4  # unbiased: R − 1 = 4
        assert got[name].variance == pytest.approx(expected.item(), rel=1e-9)
        assert got[name].draws == 5


def test_the_cross_products_remove_the_pools_noise_from_the_bias_and_the_jackknife_sizes_what_is_left():
    # E g = ref + d; each pool's mean is that plus noise. The naive ‖ḡ − g*‖² is inflated by the noise
    # (by 50 · 0.3² = 4.5, ten times ‖d‖² = 0.5); the mean of the cross products over K = 4 independent pairs
    # is not (on average over many trials); its jackknife SE does not understate its spread over the trials
    # (a U-statistic's jackknife is conservative: here ~1.4x, ~1.6x at zero bias, ~1x when bias dominates)
    gen = torch.Generator().manual_seed(0)
    d, ref, noise = torch.full((50,), 0.1, dtype=torch.float64), torch.ones(50, dtype=torch.float64), 0.3
    bias2, se, naive = [], [], []
    for _ in range(1000):
        means = [ref + d + noise * torch.randn(50, generator=gen, dtype=torch.float64) for _ in range(4)]
        result = bias_variance([Moments(m, 0.0, 2, {}, 0.0) for m in means], [ref] * 4)
        bias2.append(result["bias2"])
        se.append(result["bias2_se"])
        naive.append(float((means[0] - ref).square().sum()))
        assert result["pool_noise"] == pytest.approx(50 * noise**2, rel=0.5)
    spread = torch.tensor(bias2).std().item()
    assert sum(bias2) / len(bias2) == pytest.approx(float(d @ d), rel=0.1)
    assert sum(naive) / len(naive) == pytest.approx(float(d @ d) + 50 * noise**2, rel=0.1)
    assert spread <= sum(se) / len(se) <= 1.7 * spread


def test_pooled_samples_carry_the_advantages_the_learner_gives_each_batch():
    from gipo_robot.policies.critic import Critic
    from gipo_robot.train.config import FinetuneConfig
    from gipo_robot.train.learner import advantages
    from gipo_robot.train.replay import RolloutBatch

    pi = tiny_policy()
    critic = Critic(pi.config)
    gen = torch.Generator().manual_seed(0)

    def batch(t: int, n: int) -> RolloutBatch:
        obs = {"x": torch.randn(t, n, 2, generator=gen)}
        actions = torch.randn(t, n, 1, 1, generator=gen)
        done = torch.zeros(t, n, dtype=torch.bool)
        done[-1] = True  # cut at the iteration's end
        return RolloutBatch(obs, {"x": torch.randn(t, n, 2, generator=gen)}, actions, -actions.abs(),
                            torch.ones(t, n, 1, dtype=torch.bool), torch.randn(t, n, generator=gen),
                            torch.zeros(t, n, dtype=torch.bool), done, version=0)  # fmt: skip

    batches, config = [batch(4, 2), batch(3, 2)], FinetuneConfig()
    samples = samples_from_batches(batches, pi, critic, config)
    assert len(samples) == 14
    expected = torch.cat([advantages(b, pi, critic, config)[0].reshape(-1) for b in batches])
    torch.testing.assert_close(samples.advantages, expected)
    # flattened (T, N) -> M in the same order as every other field
    torch.testing.assert_close(samples.obs["x"][8:], batches[1].flat("obs")["x"])
    torch.testing.assert_close(samples.logp_behavior, -samples.actions.abs())


def test_projection_and_snr_do_not_reward_an_estimator_for_shrinking_its_gradient():
    # g = ref + noise (unbiased) against the same estimator halved: halving cuts the variance to a quarter
    # and moves the bias from 0 to ‖g*‖²/4, so its MSE falls when the noise is large; its projection on g*
    # halves (0.5 = "half the on-policy step") and its signal-to-noise ratio stays what it was
    gen = torch.Generator().manual_seed(0)
    ref = torch.ones(20, dtype=torch.float64)
    means = [ref + 0.1 * torch.randn(20, generator=gen, dtype=torch.float64) for _ in range(4)]
    full = bias_variance([Moments(m, 100.0, 2, {}, 0.0) for m in means], [ref] * 4)
    half = bias_variance([Moments(m / 2, 25.0, 2, {}, 0.0) for m in means], [ref] * 4)
    assert half["mse"] < full["mse"]
    assert full["projection"] == pytest.approx(1.0, abs=0.05)
    assert half["projection"] == pytest.approx(full["projection"] / 2)
    assert half["snr"] == pytest.approx(full["snr"])
    assert full["snr"] == pytest.approx(20 / 100, rel=0.1)  # ‖g*‖² / variance


def test_an_estimator_names_what_is_wrong_with_it():
    one = Moments(torch.zeros(3, dtype=torch.float64), 0.0, 2, {}, 0.0)
    with pytest.raises(ValueError, match="K >= 2"):
        bias_variance([one], [one.mean])
    with pytest.raises(KeyError, match="unknown objective"):
        Estimator("x", "ppo")
    with pytest.raises(ValueError, match="sigma"):
        Estimator("x", "gipo", {"sigma": 0})
    with pytest.raises(ValueError, match="ratio_level"):
        Estimator("x", "gipo", ratio_level="token")
