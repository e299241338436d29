"""Tests for :mod:`gipo_robot.objectives`, with every expected number derived by hand in the comments.

Conventions used throughout:

- ``r = logp - logp_behavior`` is the log-ratio, ``ρ = exp(r)``, ``A`` the advantage, ``N`` the number of
  unmasked entries. Every loss is a mean to *minimise*, so a sample with effective weight ``w`` gets the
  gradient ``∂loss/∂logp = -w·A/N``.
- Hand checks run in float64 so the literal constants (7+ significant digits) can be compared tightly.
- Logs used below: ln 2 = 0.6931472, ln 1.1 = 0.0953102, ln 1.5 = 0.4054651, ln 3 = 1.0986123.
"""

from __future__ import annotations

import math
from typing import Literal

import pytest
import torch
from torch.testing import assert_close

from gipo_robot.objectives import (
    OBJECTIVES,
    at_level,
    check_objective_params,
    cispo,
    get_objective,
    gipo,
    gipo_peak_weight,
    gipo_trust_weight,
    no_clip,
    objective_params,
    ppo_clip,
    sapo,
)

F64 = torch.float64
LN2 = math.log(2.0)

# One entry per objective and per non-default option that changes the gradient's form.
CONFIGS: list[tuple[str, dict]] = [
    ("gipo", {}),
    ("gipo", {"sigma": 0.5, "sigma_neg": 0.25, "kl_coef": 0.1}),
    ("ppo_clip", {}),
    ("ppo_clip", {"eps": 0.2, "eps_high": 0.28}),
    ("sapo", {}),
    ("no_clip", {}),
    ("no_clip", {"truncate": 1.0}),
    ("cispo", {}),
    ("cispo", {"eps_low": 0.2, "eps_high": 0.28}),
]


def _config_id(config: tuple[str, dict]) -> str:
    name, kwargs = config
    return "-".join([name, *(f"{k}={v}" for k, v in kwargs.items())])


CONFIG_IDS = [_config_id(c) for c in CONFIGS]


def run(fn, log_ratio, advantages, mask=None, *, dtype=F64, behavior=None, **kwargs):
    """Evaluate ``fn`` at the given log-ratios; return ``(loss, ∂loss/∂logp, stats)``.

    The behaviour log-probs default to a non-trivial constant (-1.25, exact in binary) so the tests do not
    depend on ``logp_behavior`` being zero.
    """
    log_ratio = torch.as_tensor(log_ratio, dtype=dtype)
    lb = torch.full_like(log_ratio, -1.25) if behavior is None else torch.as_tensor(behavior, dtype=dtype)
    logp = (lb + log_ratio).detach().requires_grad_(True)
    adv = torch.as_tensor(advantages, dtype=dtype)
    loss, stats = fn(logp, lb, adv, mask, **kwargs)
    (grad,) = torch.autograd.grad(loss, logp, allow_unused=False)
    return loss.detach(), grad, stats


def scalar(x: float, dtype=F64) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


# ----------------------------------------------------------------------------------------------------------
# Ratio 1: every objective is the on-policy policy gradient
# ----------------------------------------------------------------------------------------------------------

# At r = 0 (ρ = 1), A = [1, -2, 0.5], N = 3:
#   gradient for every objective: -A/N = [-1/3, 2/3, -1/6].
#   gipo:     -mean(ρ·ω·A) = -mean(A) = -(1 - 2 + 0.5)/3 = 0.5/3 = 1/6   (k3 KL term (ρ-1)-log ρ = 0)
#   ppo_clip: min(ρA, clip(ρ)A) = A            → 1/6
#   sapo:     -(4/τ)·sigmoid(0)·A = -(2/τ)·A; τ = 1 for A > 0, 2 for A < 0:
#             per sample [-2·1, -(2/2)·(-2), -2·0.5] = [-2, 2, -1] → mean -1/3
#   no_clip:  plain -mean(ρA) = 1/6; truncated surrogate -sg[w]·r·A = 0 at r = 0
#   cispo:    -sg[w]·r·A = 0 at r = 0
ON_POLICY_LOSS = {
    "gipo": 1 / 6,
    "gipo-sigma=0.5-sigma_neg=0.25-kl_coef=0.1": 1 / 6,
    "ppo_clip": 1 / 6,
    "ppo_clip-eps=0.2-eps_high=0.28": 1 / 6,
    "sapo": -1 / 3,
    "no_clip": 1 / 6,
    "no_clip-truncate=1.0": 0.0,
    "cispo": 0.0,
    "cispo-eps_low=0.2-eps_high=0.28": 0.0,
}


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_ratio_one_is_on_policy_gradient(name, kwargs):
    loss, grad, stats = run(get_objective(name), [0.0, 0.0, 0.0], [1.0, -2.0, 0.5], **kwargs)
    assert_close(grad, torch.tensor([-1 / 3, 2 / 3, -1 / 6], dtype=F64))
    assert_close(loss, scalar(ON_POLICY_LOSS[_config_id((name, kwargs))]))
    # Effective weight 1 everywhere, no sample dead, all importance weights equal (ESS 1), KL 0.
    assert_close(stats["weight_mean"], scalar(1.0))
    assert_close(stats["frac_weight_below_1e-3"], scalar(0.0))
    assert_close(stats["ratio_mean"], scalar(1.0))
    assert_close(stats["approx_kl"], scalar(0.0))
    assert_close(stats["ess"], scalar(1.0))


# ----------------------------------------------------------------------------------------------------------
# PPO-Clip band vs GIPO at the same points
# ----------------------------------------------------------------------------------------------------------

# Seven samples, ε = 0.2 (band [0.8, 1.2]), N = 7:
#   0: ρ = 1.1,  A = +1  inside the band
#   1: ρ = 1.5,  A = +1  above the band, clipped side  (ρ > 1+ε, A > 0)
#   2: ρ = 0.5,  A = -1  below the band, clipped side  (ρ < 1-ε, A < 0)
#   3: ρ = 1.5,  A = -1  above the band, unclipped side
#   4: ρ = 0.5,  A = +1  below the band, unclipped side
#   5: ρ = e^4,  A = +1  far above, clipped side
#   6: ρ = e^-2, A = -1  far below, clipped side
BAND_LOG_RATIOS = [math.log(1.1), math.log(1.5), math.log(0.5), math.log(1.5), math.log(0.5), 4.0, -2.0]
BAND_ADVANTAGES = [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0]
CLIPPED_SIDE = [False, True, True, False, False, True, True]


def test_ppo_clip_gradient_inside_band_zero_on_clipped_side_rho_on_unclipped_side():
    loss, grad, stats = run(ppo_clip, BAND_LOG_RATIOS, BAND_ADVANTAGES, eps=0.2)
    # Gradient -w·A/7 with w = ρ inside or on the unclipped side, w = 0 on the clipped side:
    #   0: -1.1/7 = -0.1571429   1: 0   2: 0   3: -1.5·(-1)/7 = 0.2142857   4: -0.5/7 = -0.0714286
    #   5: 0   6: 0
    expected = torch.tensor([-1.1 / 7, 0.0, 0.0, 1.5 / 7, -0.5 / 7, 0.0, 0.0], dtype=F64)
    assert_close(grad, expected)
    # Exactly zero, not merely small, on the clipped side.
    assert torch.all(grad[torch.tensor(CLIPPED_SIDE)] == 0)
    assert torch.all(grad[~torch.tensor(CLIPPED_SIDE)] != 0)
    # Surrogate min(ρA, clip(ρ, 0.8, 1.2)A) per sample:
    #   0: 1.1   1: min(1.5, 1.2) = 1.2   2: min(-0.5, -0.8) = -0.8   3: min(-1.5, -1.2) = -1.5
    #   4: min(0.5, 0.8) = 0.5   5: min(e^4, 1.2) = 1.2   6: min(-e^-2, -0.8) = -0.8
    #   sum = 1.1 + 1.2 - 0.8 - 1.5 + 0.5 + 1.2 - 0.8 = 0.9 → loss = -0.9/7 = -0.1285714
    assert_close(loss, scalar(-0.9 / 7))
    # 4 of 7 on the clipped side: clip_frac = 4/7 and the same 4 have weight 0 (< 1e-3).
    assert_close(stats["clip_frac"], scalar(4 / 7))
    assert_close(stats["frac_weight_below_1e-3"], scalar(4 / 7))
    # weight_mean = (1.1 + 1.5 + 0.5)/7 = 3.1/7
    assert_close(stats["weight_mean"], scalar(3.1 / 7))


def test_ppo_clip_eps_high_moves_only_the_upper_edge():
    # ε = 0.2, ε_high = 0.6 (band [0.8, 1.6]): sample 1 (ρ = 1.5, A = +1) is now inside, gradient -1.5/7;
    # sample 5 (ρ = e^4 ≫ 1.6) and the lower-edge samples 2, 6 stay clipped.
    _, grad, stats = run(ppo_clip, BAND_LOG_RATIOS, BAND_ADVANTAGES, eps=0.2, eps_high=0.6)
    expected = torch.tensor([-1.1 / 7, -1.5 / 7, 0.0, 1.5 / 7, -0.5 / 7, 0.0, 0.0], dtype=F64)
    assert_close(grad, expected)
    assert_close(stats["clip_frac"], scalar(3 / 7))


def test_gipo_gradient_small_but_nonzero_where_ppo_is_dead():
    loss, grad, stats = run(gipo, BAND_LOG_RATIOS, BAND_ADVANTAGES, sigma=1.0)
    # σ = 1: ω = exp(-r²/2), effective weight ρ·ω = exp(r - r²/2).
    #   ρ = 1.1:  r = 0.0953102, r²/2 = 0.0045420, ω = 0.9954683, ρω = 1.0950151
    #   ρ = 1.5:  r = 0.4054651, r²/2 = 0.0822010, ω = 0.9210868, ρω = 1.3816302
    #   ρ = 0.5:  r = -0.6931472, r²/2 = 0.2402265, ω = 0.7864497, ρω = 0.3932249
    #   ρ = e^4:  exp(4 - 8) = e^-4 = 0.0183156      ρ = e^-2: exp(-2 - 2) = e^-4 = 0.0183156
    # Gradient -ρω·A/7:
    weights = torch.tensor(
        [1.0950151, 1.3816302, 0.3932249, 1.3816302, 0.3932249, 0.0183156, 0.0183156], dtype=F64
    )
    adv = torch.tensor(BAND_ADVANTAGES, dtype=F64)
    assert_close(grad, -weights * adv / 7, rtol=1e-6, atol=1e-8)
    # Where PPO's gradient is exactly zero GIPO's is not; the far samples (5, 6) carry only e^-4 ≈ 1.8% of
    # the on-policy weight.
    assert torch.all(grad != 0)
    assert torch.all(grad[5:].abs() * 7 < 0.02)
    # Loss -mean(ρωA): samples 1/3, 2/4 and 5/6 cancel pairwise, leaving -1.0950151/7 = -0.1564307.
    assert_close(loss, scalar(-0.1564307), rtol=1e-6, atol=1e-8)
    assert_close(stats["weight_mean"], weights.mean(), rtol=1e-6, atol=1e-8)
    # No weight below 1e-3 (the smallest is e^-4 = 0.018).
    assert_close(stats["frac_weight_below_1e-3"], scalar(0.0))


# ----------------------------------------------------------------------------------------------------------
# GIPO weight shape
# ----------------------------------------------------------------------------------------------------------


def test_gipo_trust_weight_hand_values_and_log_space_symmetry():
    # r = ln 2, σ = 1 → ω = exp(-(ln 2)²/2) = exp(-0.2402265) = 0.7864497; ρ·ω = 2·0.7864497 = 1.5728994.
    assert_close(gipo_trust_weight(scalar(LN2)), scalar(0.7864497), rtol=1e-6, atol=0)
    # σ = 0.5 → ω = exp(-(ln 2)²/(2·0.25)) = exp(-0.9609060) = 0.3825461.
    assert_close(gipo_trust_weight(scalar(LN2), 0.5), scalar(0.3825461), rtol=1e-6, atol=0)
    assert_close(gipo_trust_weight(scalar(0.0)), scalar(1.0))
    # ω(ρ) = ω(1/ρ): the weight is a Gaussian in log ρ, not in ρ (a Gaussian in ρ - 1 would fail this).
    r = torch.linspace(0.01, 5.0, 500, dtype=F64)
    for sigma in (0.3, 1.0, 2.0):
        assert_close(gipo_trust_weight(r, sigma), gipo_trust_weight(-r, sigma), rtol=0, atol=0)
        assert torch.all(gipo_trust_weight(r, sigma) < 1)


@pytest.mark.parametrize(
    ("sigma", "peak"),
    # Effective weight ρω = exp(r - r²/(2σ²)); d/dr = 0 at r = σ², value exp(σ² - σ²/2) = exp(σ²/2):
    #   σ = 0.5: r* = 0.25, exp(0.125) = 1.1331485;  σ = 1: r* = 1, exp(0.5) = 1.6487213;
    #   σ = 1.5: r* = 2.25, exp(1.125) = 3.0802168.
    [(0.5, 1.1331485), (1.0, 1.6487213), (1.5, 3.0802168)],
)
def test_gipo_effective_weight_peaks_at_exp_half_sigma_squared(sigma, peak):
    assert gipo_peak_weight(sigma) == pytest.approx(peak, rel=1e-7)
    # Dense grid of log-ratios r ∈ [-5, 5], step 1e-4, A = 1: gradient = -ρω/N, so ρω = -N·grad.
    r = torch.linspace(-5.0, 5.0, 100_001, dtype=F64)
    n = r.numel()
    _, grad, stats = run(gipo, r, torch.ones(n, dtype=F64), sigma=sigma)
    weight = -grad * n
    i = int(weight.argmax())
    assert r[i].item() == pytest.approx(sigma**2, abs=1e-4)
    assert weight[i].item() == pytest.approx(peak, rel=1e-7)
    assert weight.max().item() <= gipo_peak_weight(sigma) * (1 + 1e-12)
    assert stats["weight_mean"].item() == pytest.approx(weight.mean().item(), rel=1e-12)


def test_gipo_sigma_neg_applies_only_to_negative_advantages():
    # r = ln 2 for both samples, A = [+1, -1], N = 2, σ = 1, σ_neg = 0.5:
    #   A > 0 uses σ = 1:    ρω = 2·exp(-(ln 2)²/2) = 1.5728994    → grad -1.5728994/2 = -0.7864497
    #   A < 0 uses σ = 0.5:  ρω = 2·exp(-2(ln 2)²) = 2·0.3825461 = 0.7650923 → grad +0.7650923/2 = 0.3825461
    _, grad, stats = run(gipo, [LN2, LN2], [1.0, -1.0], sigma=1.0, sigma_neg=0.5)
    assert_close(grad, torch.tensor([-0.7864497, 0.3825461], dtype=F64), rtol=1e-6, atol=0)
    # trust_weight_mean = (0.7864497 + 0.3825461)/2 = 0.5844979
    assert_close(stats["trust_weight_mean"], scalar(0.5844979), rtol=1e-6, atol=0)
    # Without σ_neg both samples use σ = 1: the positive one is unchanged, the negative one is not.
    _, grad_sym, _ = run(gipo, [LN2, LN2], [1.0, -1.0], sigma=1.0)
    assert_close(grad_sym, torch.tensor([-0.7864497, 0.7864497], dtype=F64), rtol=1e-6, atol=0)
    assert grad_sym[0] == grad[0]


def test_gipo_one_sided_damps_only_ratios_above_one():
    # r = [-ln 2, +ln 2], A = [+1, +1], N = 2, σ = 1:
    #   ρ = 1/2, one-sided: ω = 1, weight ρ = 0.5                      → grad -0.5/2 = -0.25
    #            symmetric: ρω = 0.5·exp(-(ln 2)²/2) = 0.3932249        → grad -0.1966124
    #   ρ = 2, both forms:  ρω = 2·exp(-(ln 2)²/2) = 1.5728994          → grad -0.7864497
    _, grad, stats = run(gipo, [-LN2, LN2], [1.0, 1.0], sigma=1.0, one_sided=True)
    assert_close(grad, torch.tensor([-0.25, -0.7864497], dtype=F64), rtol=1e-6, atol=0)
    # trust_weight_mean = (1 + exp(-(ln 2)²/2)) / 2 = (1 + 0.7864497) / 2 = 0.8932249
    assert_close(stats["trust_weight_mean"], scalar(0.8932249), rtol=1e-6, atol=0)
    _, grad_sym, _ = run(gipo, [-LN2, LN2], [1.0, 1.0], sigma=1.0)
    assert_close(grad_sym, torch.tensor([-0.1966124, -0.7864497], dtype=F64), rtol=1e-6, atol=0)
    assert grad_sym[1] == grad[1]
    # far below ρ = 1 the one-sided weight is plain IS (ρ = e^-30), not the Gaussian's e^-480
    _, grad_far, _ = run(gipo, [-30.0], [1.0], sigma=1.0, one_sided=True)
    assert_close(grad_far, torch.tensor([-math.exp(-30.0)], dtype=F64), rtol=1e-9, atol=0)


def test_gipo_kl_term_vanishes_at_ratio_one_and_acts_away_from_it():
    # At ρ = 1 the k3 term (ρ-1) - log ρ = 0 and its derivative ρ - 1 = 0: loss and gradient identical.
    loss0, grad0, _ = run(gipo, [0.0, 0.0], [1.0, -0.5], kl_coef=0.0)
    loss1, grad1, _ = run(gipo, [0.0, 0.0], [1.0, -0.5], kl_coef=0.5)
    assert_close(loss1, loss0, rtol=0, atol=0)
    assert_close(grad1, grad0, rtol=0, atol=0)
    # At r = ln 2, A = 1, N = 1, σ = 1:
    #   without KL: loss = -ρω = -1.5728994, grad = -1.5728994
    #   k3 = (2 - 1) - ln 2 = 0.3068528; 0.5·k3 = 0.1534264 → loss = -1.5728994 + 0.1534264 = -1.4194730
    #   d(0.5·k3)/dr = 0.5·(ρ - 1) = 0.5 → grad = -1.5728994 + 0.5 = -1.0728994
    loss0, grad0, _ = run(gipo, [LN2], [1.0], kl_coef=0.0)
    loss1, grad1, _ = run(gipo, [LN2], [1.0], kl_coef=0.5)
    assert_close(loss0, scalar(-1.5728994), rtol=1e-6, atol=0)
    assert_close(grad0, torch.tensor([-1.5728994], dtype=F64), rtol=1e-6, atol=0)
    assert_close(loss1, scalar(-1.4194730), rtol=1e-6, atol=0)
    assert_close(grad1, torch.tensor([-1.0728994], dtype=F64), rtol=1e-6, atol=0)


def test_gipo_trust_weight_is_a_stop_gradient():
    # GIPO's ω is evaluated on sg[ρ]: the gradient is ρω·(-A), not d/dr of the loss value.
    # r = ln 2, A = 1, σ = 1: autograd gradient -ρω = -1.5728994, while the loss value -exp(r - r²/2) has
    # derivative -(1 - r)·exp(r - r²/2) = -(1 - 0.6931472)·1.5728994 = -0.4826486.
    _, grad, _ = run(gipo, [LN2], [1.0])
    assert_close(grad, torch.tensor([-1.5728994], dtype=F64), rtol=1e-6, atol=0)
    h = 1e-6
    up, _, _ = run(gipo, [LN2 + h], [1.0])
    down, _, _ = run(gipo, [LN2 - h], [1.0])
    assert ((up - down) / (2 * h)).item() == pytest.approx(-0.4826486, rel=1e-6)


# ----------------------------------------------------------------------------------------------------------
# SAPO, No-Clip, CISPO
# ----------------------------------------------------------------------------------------------------------


def test_sapo_weight_off_policy_for_both_signs():
    # ρ = 1.5 for both, A = [+1, -1], N = 2; weight 4·s·(1-s)·ρ with s = sigmoid(τ(ρ - 1)):
    #   A > 0, τ₊ = 1: s = sigmoid(0.5) = 0.6224593, 4s(1-s) = 0.9400148, weight = 1.5·0.9400148 = 1.4100223
    #   A < 0, τ₋ = 2: s = sigmoid(1.0) = 0.7310586, 4s(1-s) = 0.7864477, weight = 1.5·0.7864477 = 1.1796716
    # Gradient -weight·A/2 = [-0.7050111, 0.5898358].
    loss, grad, stats = run(sapo, [math.log(1.5)] * 2, [1.0, -1.0], tau_pos=1.0, tau_neg=2.0)
    assert_close(grad, torch.tensor([-0.7050111, 0.5898358], dtype=F64), rtol=1e-6, atol=0)
    assert_close(stats["weight_mean"], scalar((1.4100223 + 1.1796716) / 2), rtol=1e-6, atol=0)
    # Loss -(4/τ)·s·A: [-4·0.6224593, +2·0.7310586] = [-2.4898373, 1.4621172] → mean -0.5138601.
    assert_close(loss, scalar(-0.5138601), rtol=1e-6, atol=0)
    assert_close(stats["gate_mean"], scalar((0.6224593 + 0.7310586) / 2), rtol=1e-6, atol=0)


def test_no_clip_plain_and_truncated_gradients():
    # ρ = [2, 0.5, 3], A = [1, -1, 2], N = 3.
    log_ratios, adv = [LN2, -LN2, math.log(3.0)], [1.0, -1.0, 2.0]
    # Plain IS: gradient -ρA/N = -[2, -0.5, 6]/3 = [-2/3, 1/6, -2]; loss -(2 - 0.5 + 6)/3 = -2.5.
    loss, grad, _ = run(no_clip, log_ratios, adv)
    assert_close(grad, torch.tensor([-2 / 3, 1 / 6, -2.0], dtype=F64))
    assert_close(loss, scalar(-2.5))
    # Truncated at c = 1: min(ρ, 1) = [1, 0.5, 1] → gradient -[1, -0.5, 2]/3 = [-1/3, 1/6, -2/3].
    # Surrogate value -mean(w·r·A) = -(ln 2 + 0.5·ln 2 + 2·ln 3)/3 = -(1.0397208 + 2.1972246)/3 = -1.0789818.
    loss, grad, stats = run(no_clip, log_ratios, adv, truncate=1.0)
    assert_close(grad, torch.tensor([-1 / 3, 1 / 6, -2 / 3], dtype=F64))
    assert_close(loss, scalar(-1.0789818), rtol=1e-6, atol=0)
    assert_close(stats["weight_mean"], scalar(2.5 / 3))


def test_cispo_clips_the_weight_but_never_kills_a_sample():
    # ρ = [1.1, 2, 0.5, 2], A = [1, 1, -1, -1], N = 4, ε_high = 0.2, no lower bound:
    #   weights clip(ρ, 0, 1.2) = [1.1, 1.2, 0.5, 1.2] → gradient -wA/4 = [-0.275, -0.3, 0.125, 0.3].
    # Both ρ = 2 samples (> 1 + ε_high) keep weight 1.2, whatever the sign of A (PPO kills the A > 0 one).
    log_ratios, adv = [math.log(1.1), LN2, -LN2, LN2], [1.0, 1.0, -1.0, -1.0]
    _, grad, stats = run(cispo, log_ratios, adv, eps_high=0.2)
    assert_close(grad, torch.tensor([-0.275, -0.3, 0.125, 0.3], dtype=F64))
    assert torch.all(grad != 0)
    assert_close(stats["clip_frac"], scalar(0.5))
    # With ε_low = 0.2 the ρ = 0.5 weight is raised to 0.8: gradient 0.8/4 = 0.2.
    _, grad, _ = run(cispo, log_ratios, adv, eps_low=0.2, eps_high=0.2)
    assert_close(grad, torch.tensor([-0.275, -0.3, 0.2, 0.3], dtype=F64))


# ----------------------------------------------------------------------------------------------------------
# Numerics: extreme log-ratios, gradcheck
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_extreme_log_ratios_are_finite_in_float32(name, kwargs):
    r = [50.0, -50.0, 50.0, -50.0, 0.0]
    loss, grad, stats = run(
        get_objective(name), r, [1.0, 1.0, -1.0, -1.0, 0.5], dtype=torch.float32, **kwargs
    )
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()
    for key, value in stats.items():
        assert torch.isfinite(value), key
    # ESS of ρ = [e^50, e^-50, e^50, e^-50, 1]: (2e^50)² / (5·2e^100) = 4/10 = 0.4 (other terms negligible).
    assert stats["ess"].item() == pytest.approx(0.4, rel=1e-5)


def test_gipo_is_finite_for_log_ratios_of_1000():
    # ρω = exp(r - r²/2) = exp(±1000 - 500000) underflows to exactly 0: loss 0, gradient 0, no NaN.
    loss, grad, stats = run(gipo, [1000.0, -1000.0], [1.0, -1.0], dtype=torch.float32)
    assert loss.item() == 0.0
    assert torch.all(grad == 0)
    for key in ("weight_mean", "trust_weight_mean", "ess", "frac_weight_below_1e-3"):
        assert torch.isfinite(stats[key]), key
    assert stats["frac_weight_below_1e-3"].item() == 1.0


# Log-ratios in (-1, 1), away from the clip edges ln 0.8 = -0.2231 and ln 1.2 = 0.1823.
GRADCHECK_LOG_RATIOS = [0.9, -0.8, 0.5, -0.45, 0.1, -0.15, 0.35, -0.6]
GRADCHECK_ADVANTAGES = [1.3, -0.7, -1.1, 0.4, 2.0, -0.2, 0.9, 1.5]


def _gradcheck(fn, log_ratios, **kwargs) -> bool:
    gen = torch.Generator().manual_seed(0)
    lb = torch.randn(len(log_ratios), generator=gen, dtype=F64)
    logp = (lb + torch.tensor(log_ratios, dtype=F64)).requires_grad_(True)
    adv = torch.tensor(GRADCHECK_ADVANTAGES[: len(log_ratios)], dtype=F64)
    return torch.autograd.gradcheck(lambda x: fn(x, lb, adv, **kwargs)[0], (logp,))


@pytest.mark.parametrize("fn", [ppo_clip, sapo, no_clip], ids=lambda f: f.__name__)
def test_gradcheck_objectives_whose_loss_value_is_the_function_differentiated(fn):
    assert _gradcheck(fn, GRADCHECK_LOG_RATIOS)


@pytest.mark.parametrize(
    ("fn", "log_ratios", "kwargs"),
    [
        # GIPO's ω(sg[ρ]) is stationary at ρ = 1 (dω/dr = -r/σ² ω = 0), so only there the value's
        # derivative equals the stop-gradient gradient (off-policy, see
        # test_gipo_trust_weight_is_a_stop_gradient).
        (gipo, [0.0] * 8, {}),
        (gipo, [0.0] * 8, {"kl_coef": 0.1}),
        # CISPO's sg weight is constant where it is clipped: ρ > 1.2 (and ρ < 0.8 with ε_low = 0.2).
        (cispo, [0.9, 0.5, 0.25, 0.7], {}),
        (cispo, [0.9, -0.8, 0.5, -0.45, 0.35, -0.6], {"eps_low": 0.2}),
        # Truncated IS: weight constant (= c = 1) where ρ > c.
        (no_clip, [0.9, 0.5, 0.1, 0.35], {"truncate": 1.0}),
    ],
    ids=["gipo", "gipo-kl", "cispo", "cispo-eps_low", "no_clip-truncate"],
)
def test_gradcheck_stop_gradient_objectives_where_their_weight_is_locally_constant(fn, log_ratios, kwargs):
    assert _gradcheck(fn, log_ratios, **kwargs)


# ----------------------------------------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------------------------------------

MASK = [True, True, False, True, False]
KEPT = [0, 1, 3]
MASK_LOG_RATIOS = [0.3, -0.4, 0.7, 0.1, -0.9]
MASK_ADVANTAGES = [1.0, -0.5, 2.0, 0.8, -1.5]


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_masked_entries_change_neither_loss_nor_gradient(name, kwargs):
    fn = get_objective(name)
    sub_r = [MASK_LOG_RATIOS[i] for i in KEPT]
    sub_a = [MASK_ADVANTAGES[i] for i in KEPT]
    loss_sub, grad_sub, stats_sub = run(fn, sub_r, sub_a, **kwargs)

    mask = torch.tensor(MASK)
    loss, grad, stats = run(fn, MASK_LOG_RATIOS, MASK_ADVANTAGES, mask, **kwargs)
    assert_close(loss, loss_sub)
    assert_close(grad[KEPT], grad_sub)
    assert torch.all(grad[~mask] == 0)
    for key in stats:
        assert_close(stats[key], stats_sub[key], msg=key)

    # A float 0/1 mask gives the same result as the bool one.
    loss_f, grad_f, stats_f = run(fn, MASK_LOG_RATIOS, MASK_ADVANTAGES, mask.to(F64), **kwargs)
    assert_close(loss_f, loss)
    assert_close(grad_f, grad)
    for key in stats:
        assert_close(stats_f[key], stats[key], msg=key)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_inf_and_nan_in_masked_entries_do_not_leak(name, kwargs):
    fn = get_objective(name)
    sub_r = [MASK_LOG_RATIOS[i] for i in KEPT]
    sub_a = [MASK_ADVANTAGES[i] for i in KEPT]
    loss_sub, grad_sub, _ = run(fn, sub_r, sub_a, **kwargs)

    mask = torch.tensor(MASK)
    lb = torch.tensor([-1.25, -1.25, float("nan"), -1.25, -1.25], dtype=F64)
    logp = torch.tensor([-0.95, -1.65, 0.0, -1.15, float("inf")], dtype=F64, requires_grad=True)
    adv = torch.tensor([1.0, -0.5, float("inf"), 0.8, float("nan")], dtype=F64)
    loss, stats = fn(logp, lb, adv, mask, **kwargs)
    (grad,) = torch.autograd.grad(loss, logp)
    assert_close(loss, loss_sub)
    assert_close(grad[KEPT], grad_sub)
    assert torch.all(grad[~mask] == 0)
    for key, value in stats.items():
        assert torch.isfinite(value), key


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_all_masked_batch_gives_zero_loss(name, kwargs):
    mask = torch.zeros(3, dtype=torch.bool)
    loss, grad, stats = run(
        get_objective(name), [0.5, float("nan"), -0.3], [1.0, 2.0, float("inf")], mask, **kwargs
    )
    assert loss.item() == 0.0
    assert torch.all(grad == 0)
    for key, value in stats.items():
        assert torch.isfinite(value), key


def test_mask_of_wrong_shape_raises():
    x = torch.zeros(3, dtype=F64)
    with pytest.raises(ValueError, match=r"mask must have the shape of logp \(3,\), got \(2,\)"):
        gipo(x, x, x, torch.ones(2, dtype=torch.bool))


# ----------------------------------------------------------------------------------------------------------
# at_level: arranging (B, H, A) log-probs
# ----------------------------------------------------------------------------------------------------------

# B = 2 chunks, H = 3 steps, A = 2 action dims; behaviour log-probs 0, so log-ratios = logp.
AT_LEVEL_LOGP = [
    [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
    [[-0.1, -0.2], [-0.3, -0.4], [-0.5, -0.6]],
]


def _at_level_inputs():
    logp = torch.tensor(AT_LEVEL_LOGP, dtype=F64)
    return logp, torch.zeros_like(logp), torch.tensor([1.0, -2.0], dtype=F64)


def test_at_level_sums_over_the_right_axes_and_broadcasts_advantages():
    logp, lb, adv = _at_level_inputs()
    # chunk: sum over H and A: 0.1+0.2+0.3+0.4+0.5+0.6 = 2.1 and -2.1.
    lp, lpb, a, m = at_level(logp, lb, adv, level="chunk")
    assert_close(lp, torch.tensor([2.1, -2.1], dtype=F64))
    assert_close(lpb, torch.zeros(2, dtype=F64))
    assert_close(a, adv)
    assert m is None
    # step: sum over A: [0.3, 0.7, 1.1] and the negatives; A repeated over H.
    lp, lpb, a, m = at_level(logp, lb, adv, level="step")
    assert_close(lp, torch.tensor([[0.3, 0.7, 1.1], [-0.3, -0.7, -1.1]], dtype=F64))
    assert lpb.shape == (2, 3)
    assert_close(a, torch.tensor([[1.0, 1.0, 1.0], [-2.0, -2.0, -2.0]], dtype=F64))
    assert m is None
    # dim: unchanged, A repeated over H and A.
    lp, lpb, a, m = at_level(logp, lb, adv, level="dim")
    assert_close(lp, logp)
    assert lpb.shape == (2, 3, 2)
    assert_close(a, torch.tensor([[[1.0] * 2] * 3, [[-2.0] * 2] * 3], dtype=F64))
    assert m is None


def test_at_level_step_mask_excludes_padded_steps():
    logp, lb, adv = _at_level_inputs()
    # Padded steps hold inf/NaN: they must not reach any sum.
    logp[0, 2] = float("inf")
    lb[1, 1:] = float("nan")
    mask = torch.tensor([[True, True, False], [True, False, False]])
    # chunk: 0.1+0.2+0.3+0.4 = 1.0 and -0.1-0.2 = -0.3; each chunk has a valid step, so both count.
    lp, lpb, _, m = at_level(logp, lb, adv, mask, level="chunk")
    assert_close(lp, torch.tensor([1.0, -0.3], dtype=F64))
    assert_close(lpb, torch.zeros(2, dtype=F64))
    assert m.tolist() == [True, True]
    # step: the mask passes through unchanged; dim: it is repeated over A.
    _, _, _, m = at_level(logp, lb, adv, mask, level="step")
    assert m.tolist() == mask.tolist()
    _, _, _, m = at_level(logp, lb, adv, mask, level="dim")
    assert m.tolist() == [[[v, v] for v in row] for row in mask.tolist()]
    # A chunk whose steps are all padded is masked out at chunk level; a float mask works too.
    _, _, _, m = at_level(logp, lb, adv, torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), level="chunk")
    assert m.tolist() == [False, True]


@pytest.mark.parametrize("level", ["chunk", "step", "dim"])
def test_at_level_then_objective_gives_padded_steps_zero_gradient(level):
    logp, lb, adv = _at_level_inputs()
    logp[0, 2] = float("inf")
    logp.requires_grad_(True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, stats = gipo(*at_level(logp, lb, adv, mask, level=level))
    (grad,) = torch.autograd.grad(loss, logp)
    assert torch.isfinite(loss)
    assert torch.all(grad[~mask] == 0)
    assert torch.all(grad[mask] != 0)
    assert all(torch.isfinite(v) for v in stats.values())


def test_chunk_ratio_is_exp_of_summed_per_dim_log_ratios():
    # 1×2×2 chunk with per-dim ratios [[2, 3], [0.5, 1]] on non-zero behaviour log-probs:
    #   chunk ratio = 2·3·0.5·1 = 3 = exp(ln 2 + ln 3 - ln 2 + 0);  step ratios [6, 0.5];
    #   dim ratios as given.
    # No-Clip with A = 1 returns loss -mean(ρ), ratio_mean = mean(ρ), ratio_max = max(ρ).
    lb = torch.tensor([[[-1.0, -2.0], [-0.5, -1.5]]], dtype=F64)
    logp = lb + torch.tensor([[[LN2, math.log(3.0)], [-LN2, 0.0]]], dtype=F64)
    adv = torch.tensor([1.0], dtype=F64)
    loss, stats = no_clip(*at_level(logp, lb, adv, level="chunk"))
    assert_close(loss, scalar(-3.0))
    assert_close(stats["ratio_mean"], scalar(3.0))
    # step: mean(6, 0.5) = 3.25, max 6.
    loss, stats = no_clip(*at_level(logp, lb, adv, level="step"))
    assert_close(loss, scalar(-3.25))
    assert_close(stats["ratio_max"], scalar(6.0))
    # dim: mean(2, 3, 0.5, 1) = 1.625, max 3.
    loss, stats = no_clip(*at_level(logp, lb, adv, level="dim"))
    assert_close(loss, scalar(-1.625))
    assert_close(stats["ratio_max"], scalar(3.0))


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((2, 3), (2, 3), (2,), None), r"expects logp and logp_behavior of shape \(B, H, A\), got \(2, 3\)"),
        (((2, 3, 2), (2, 3, 1), (2,), None), r"got \(2, 3, 2\) and \(2, 3, 1\)"),
        (((2, 3, 2), (2, 3, 2), (2, 3), None), r"advantages must have shape \(B,\) = \(2,\), got \(2, 3\)"),
        (((2, 3, 2), (2, 3, 2), (2,), (2,)), r"mask must have shape \(B, H\) = \(2, 3\), got \(2,\)"),
    ],
)
def test_at_level_rejects_bad_shapes(shapes, match):
    lp, lb, a, m = (None if s is None else torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        at_level(lp, lb, a, m)


def test_at_level_rejects_unknown_level():
    logp, lb, adv = _at_level_inputs()
    with pytest.raises(ValueError, match=r"unknown ratio level 'token'; known: 'chunk', 'step', 'dim'"):
        at_level(logp, lb, adv, level="token")


# ----------------------------------------------------------------------------------------------------------
# Stats
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_common_stats_hand_values_and_detached(name, kwargs):
    fn = get_objective(name)
    # approx_kl = mean((ρ-1) - ln ρ): ρ = [2, 0.5] → [(1 - ln 2), (-0.5 + ln 2)] → mean (1 - 0.5)/2 = 0.25.
    _, _, stats = run(fn, [LN2, -LN2], [1.0, -1.0], **kwargs)
    assert_close(stats["approx_kl"], scalar(0.25))
    # ratio_mean (2 + 0.5)/2 = 1.25, ratio_max 2.
    assert_close(stats["ratio_mean"], scalar(1.25))
    assert_close(stats["ratio_max"], scalar(2.0))
    # ESS = (Σρ)²/(N Σρ²): ρ = [1, 3] → 16/(2·10) = 0.8.
    _, _, stats = run(fn, [0.0, math.log(3.0)], [1.0, -1.0], **kwargs)
    assert_close(stats["ess"], scalar(0.8))
    # Stats are detached 0-d tensors even though logp requires grad.
    for key, value in stats.items():
        assert value.dim() == 0, key
        assert not value.requires_grad, key


def test_frac_weight_below_threshold_counts_nearly_dead_gipo_samples():
    # GIPO, σ = 1, effective weight exp(r - r²/2):
    #   r = -3:   exp(-3 - 4.5)     = e^-7.5   = 0.000553 < 1e-3  → counted (small, but not zero)
    #   r = -2.5: exp(-2.5 - 3.125) = e^-5.625 = 0.00361  ≥ 1e-3  → not counted
    #   r = 0:    1                                                → not counted
    # frac = 1/3.
    _, grad, stats = run(gipo, [-3.0, -2.5, 0.0], [1.0, 1.0, 1.0])
    assert_close(stats["frac_weight_below_1e-3"], scalar(1 / 3))
    assert_close(grad[0] * 3, scalar(-math.exp(-7.5)))


# ----------------------------------------------------------------------------------------------------------
# Errors and registry
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_shape_mismatch_names_the_shapes(name):
    x3, x2 = torch.zeros(3), torch.zeros(2)
    match = r"logp \(3,\), logp_behavior \(2,\), advantages \(3,\)"
    with pytest.raises(ValueError, match=match):
        get_objective(name)(x3, x2, x3)


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [
        (gipo, {"sigma": 0.0}),
        (gipo, {"sigma": -1.0}),
        (gipo, {"sigma_neg": 0.0}),
        (ppo_clip, {"eps": 0.0}),
        (ppo_clip, {"eps_high": -0.1}),
        (sapo, {"tau_pos": 0.0}),
        (sapo, {"tau_neg": -1.0}),
        (no_clip, {"truncate": 0.0}),
        (cispo, {"eps_high": 0.0}),
        (cispo, {"eps_low": 0.0}),
        (cispo, {"eps_low": 1.5}),
    ],
    ids=lambda v: v.__name__ if callable(v) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_non_positive_parameters_raise(fn, kwargs):
    x = torch.zeros(2)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        fn(x, x, x, **kwargs)


def test_registry_lookup_and_unknown_name():
    for name, fn in OBJECTIVES.items():
        assert get_objective(name) is fn
    assert set(OBJECTIVES) == {"gipo", "ppo_clip", "sapo", "no_clip", "cispo"}
    with pytest.raises(
        KeyError, match=r"unknown objective 'nope'; known: cispo, gipo, no_clip, ppo_clip, sapo"
    ):
        get_objective("nope")


# ----------------------------------------------------------------------------------------------------------
# float64 inputs keep float64 per-sign hyper-parameters (regression: they were rounded to float32)
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "kwargs", "expected_grad"),
    [
        # r = 1, A = -1, N = 1, σ_neg = 0.3: grad = +ρω = exp(1 - 1/(2·0.09)) = exp(-4.5555556) = 0.0105087.
        (gipo, {"sigma_neg": 0.3}, math.exp(1.0 - 0.5 / 0.09)),
        # r = 1, A = -1, τ₋ = 1.05 (SAPO's own default): s = sigmoid(1.05(e - 1)), grad = 4s(1-s)·e.
        (sapo, {"tau_neg": 1.05}, None),
    ],
    ids=["gipo-sigma_neg", "sapo-tau_neg"],
)
def test_float64_objectives_use_float64_hyper_parameters(fn, kwargs, expected_grad):
    if expected_grad is None:
        s = 1.0 / (1.0 + math.exp(-1.05 * (math.e - 1.0)))
        expected_grad = 4.0 * s * (1.0 - s) * math.e
    _, grad, _ = run(fn, [1.0], [-1.0], **kwargs)
    assert_close(grad, torch.tensor([expected_grad], dtype=F64), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------------------------------------
# Parameters, checked before anything runs
# ----------------------------------------------------------------------------------------------------------


def test_objective_params_are_the_keyword_defaults_of_each_signature():
    # Read off the signatures in objectives.py (keyword-only parameters, in order; ``mask`` is positional).
    assert objective_params("gipo") == {"sigma": 1.0, "sigma_neg": None, "kl_coef": 0.0, "one_sided": False}
    assert list(objective_params("gipo")) == ["sigma", "sigma_neg", "kl_coef", "one_sided"]
    assert objective_params("ppo_clip") == {"eps": 0.2, "eps_high": None}
    assert objective_params("sapo") == {"tau_pos": 1.0, "tau_neg": 2.0}
    assert objective_params("no_clip") == {"truncate": None}
    assert objective_params("cispo") == {"eps_low": None, "eps_high": 0.2}
    with pytest.raises(KeyError, match=r"unknown objective 'nope'; known: cispo, gipo"):
        objective_params("nope")


def test_check_objective_params_converts_cli_strings_to_the_parameters_types():
    params = check_objective_params(
        "gipo", {"sigma": "0.5", "sigma_neg": "none", "kl_coef": "1e-1", "one_sided": "true"}
    )
    assert params == {"sigma": 0.5, "sigma_neg": None, "kl_coef": 0.1, "one_sided": True}
    assert type(params["sigma"]) is float and params["one_sided"] is True
    # Typed values pass through; an int where a float is expected becomes that float; nothing given -> {}.
    assert check_objective_params("ppo_clip", {"eps": 0.1, "eps_high": 1}) == {"eps": 0.1, "eps_high": 1.0}
    assert type(check_objective_params("ppo_clip", {"eps_high": 1})["eps_high"]) is float
    assert check_objective_params("gipo", {"one_sided": "False", "sigma_neg": " 0.25 "}) == {
        "one_sided": False,
        "sigma_neg": 0.25,
    }
    assert check_objective_params("sapo", {}) == {}


def test_checked_params_reach_the_objective():
    # GIPO at r = ln 2, A = 1, N = 1 with sigma="0.5" from a CLI flag: weight ρω = exp(r - r²/(2σ²))
    # = exp(0.6931472 - 0.4804530/0.5) = exp(-0.2677588) = 0.7650923, so ∂loss/∂logp = -0.7650923.
    params = check_objective_params("gipo", {"sigma": "0.5"})
    _, grad, _ = run(gipo, [LN2], [1.0], **params)
    assert_close(grad, torch.tensor([-0.7650923], dtype=F64), rtol=1e-6, atol=0)


def test_unknown_parameter_names_the_objective_and_its_parameters():
    with pytest.raises(ValueError) as err:
        check_objective_params("ppo_clip", {"sigma": "0.5"})
    assert str(err.value) == "objective 'ppo_clip' has no parameter 'sigma'; its parameters: eps, eps_high"
    with pytest.raises(KeyError, match=r"unknown objective 'gipo2'; known: cispo, gipo, no_clip"):
        check_objective_params("gipo2", {"sigma": 1.0})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("gipo", {"sigma": "abc"}, "objective 'gipo' parameter sigma='abc': expected a float"),
        ("gipo", {"sigma": None}, "objective 'gipo' parameter sigma=None: expected a float"),  # not None-able
        ("gipo", {"sigma": True}, "objective 'gipo' parameter sigma=True: expected a float"),  # a bool
        ("gipo", {"sigma": "nan"}, "objective 'gipo' parameter sigma='nan': expected a float"),
        ("gipo", {"one_sided": "maybe"}, "objective 'gipo' parameter one_sided='maybe': expected a bool"),
        ("gipo", {"one_sided": 1.0}, "objective 'gipo' parameter one_sided=1.0: expected a bool"),
        ("cispo", {"eps_low": "low"}, "objective 'cispo' parameter eps_low='low': expected a float"),
    ],
)
def test_bad_values_name_the_objective_the_parameter_and_the_type(name, params, message):
    with pytest.raises(ValueError) as err:
        check_objective_params(name, params)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("gipo", {"sigma": "0"}, r"objective 'gipo': sigma and sigma_neg must be positive"),
        ("ppo_clip", {"eps": "-0.2"}, r"objective 'ppo_clip': eps and eps_high must be positive"),
        ("no_clip", {"truncate": "-1"}, r"objective 'no_clip': truncate must be positive"),
        ("cispo", {"eps_low": "1.5"}, r"objective 'cispo': need eps_high > 0 and 0 < eps_low <= 1"),
    ],
)
def test_values_the_objective_rejects_fail_at_check_time(name, params, match):
    with pytest.raises(ValueError, match=match):
        check_objective_params(name, params)


def toy(
    logp: torch.Tensor,
    logp_behavior: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    reduce: Literal["mean", "sum"] = "mean",
    k: int = 1,
    scale: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """An objective with a Literal, an int and a None-able float parameter (none of the real ones has the
    first two)."""
    return (logp - logp_behavior).sum() * advantages.sum(), {}


def test_literal_int_and_none_able_parameters(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "toy", toy)
    assert objective_params("toy") == {"reduce": "mean", "k": 1, "scale": None}
    params = check_objective_params("toy", {"reduce": "sum", "k": "3", "scale": "NONE"})
    assert params == {"reduce": "sum", "k": 3, "scale": None} and type(params["k"]) is int
    assert check_objective_params("toy", {"scale": "2"}) == {"scale": 2.0}
    with pytest.raises(
        ValueError, match=r"^objective 'toy' parameter reduce='max': expected one of 'mean', 'sum'$"
    ):
        check_objective_params("toy", {"reduce": "max"})
    with pytest.raises(ValueError, match=r"^objective 'toy' parameter k='2\.5': expected an int$"):
        check_objective_params("toy", {"k": "2.5"})
    with pytest.raises(ValueError, match=r"^objective 'toy' parameter k=2\.0: expected an int$"):
        check_objective_params("toy", {"k": 2.0})
