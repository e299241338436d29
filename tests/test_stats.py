"""gipo_robot.stats: IQM, stratified bootstrap CIs, probability of improvement and paired differences, with
expected numbers derived by hand."""

import math

import numpy as np
import pytest

from gipo_robot.stats import (
    interaction,
    iqm,
    paired_difference,
    probability_of_improvement,
    stratified_bootstrap_ci,
)


def test_iqm_by_hand():
    # 8 scores: cut int(0.25 * 8) = 2 from each end, mean of 3, 4, 5, 6 = 4.5.
    assert iqm(np.arange(1, 9)) == 4.5
    # The outlier 100 (and the low 0.1) are cut: mean of 0.5, 0.6, 0.6, 0.7 = 0.6 (the plain mean is 13.0).
    assert iqm([0.1, 0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 100.0]) == pytest.approx(0.6)
    # 5 scores: the cut position 1.25 rounds down to 1, mean of 2, 3, 4 = 3 (no partial weight on 1 or 100).
    assert iqm([100.0, 1.0, 3.0, 2.0, 4.0]) == 3.0
    # Under 4 scores nothing is cut.
    assert iqm([0.0, 1.0, 5.0]) == 2.0
    assert math.isnan(iqm([]))


def test_iqm_equals_scipy_trim_mean_as_rliable_calls_it():
    trim_mean = pytest.importorskip("scipy.stats").trim_mean
    rng = np.random.default_rng(1)
    for n in range(1, 23):
        x = rng.standard_normal(n) ** 3  # heavy tails: the cut matters
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25, axis=None), rel=1e-12, abs=1e-12)
    x = rng.random((5, 3))  # runs x tasks: rliable pools all of them (axis=None)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25, axis=None))


def test_stratified_ci_contains_the_point_and_narrows_with_more_runs():
    rng = np.random.default_rng(0)
    widths = []
    for runs in (5, 80):
        scores = {"Lift": rng.normal(0.6, 0.2, runs), "Can": rng.normal(0.3, 0.2, runs)}
        point, lo, hi = stratified_bootstrap_ci(scores)
        pooled = np.concatenate(list(scores.values()))
        assert point == pytest.approx(iqm(pooled))
        assert lo <= point <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # 16x the runs: about a quarter of the width


def test_stratified_bootstrap_resamples_within_each_task():
    # Task A's runs are all 0 and task B's all 1, 3 runs each: a stratified resample always holds 3 zeros and
    # 3 ones, so the pooled mean is 0.5 in every resample (a pooled bootstrap would spread it).
    point, lo, hi = stratified_bootstrap_ci({"A": [0.0, 0.0, 0.0], "B": [1.0, 1.0, 1.0]}, statistic=np.mean)
    assert (point, lo, hi) == (0.5, 0.5, 0.5)


def test_paired_ci_excludes_zero_on_a_shift_and_includes_it_on_zero_mean_noise():
    rng = np.random.default_rng(0)
    x = rng.random(8)
    shifted = paired_difference(x + 0.3 + rng.normal(0, 0.05, 8), x)
    assert shifted["lo"] > 0 and shifted["mean"] == pytest.approx(0.3, abs=0.05)
    z = rng.normal(0, 0.3, 6)
    noise = paired_difference(x[:6] + np.concatenate([z[:3], -z[:3]]), x[:6])  # differences of mean exactly 0
    assert noise["lo"] < 0 < noise["hi"]


def test_probability_of_improvement():
    # Every x beats every y: 1.0, and every resample says so too.
    assert probability_of_improvement({"Lift": [0.8, 0.9, 1.0]}, {"Lift": [0.1, 0.2, 0.7]}) == (1.0, 1.0, 1.0)
    # Identical samples: of the n^2 pairs, n tie (0.5 each) and the rest split evenly: 0.5.
    same = np.array([0.3, 0.5, 0.9, 0.1])
    point, lo, hi = probability_of_improvement({"Lift": same}, {"Lift": same.copy()})
    assert point == 0.5 and lo < 0.5 < hi
    # x = (1, 2), y = (0, 1, 3): of 6 pairs x wins 3 (1>0, 2>0, 2>1) and ties 1 (1=1): 3/6 + 0.5/6 = 7/12;
    # a second task where x always wins: the mean over tasks (7/12 + 1) / 2 = 19/24.
    mixed = probability_of_improvement({"A": [1, 2], "B": [5, 6]}, {"A": [0, 1, 3], "B": [0, 1]})
    assert mixed[0] == pytest.approx(19 / 24)


def test_probability_of_improvement_is_mann_whitney_u_over_nm():
    mannwhitneyu = pytest.importorskip("scipy.stats").mannwhitneyu
    x, y = [0.2, 0.5, 0.5, 0.9, 0.4], [0.5, 0.1, 0.3]
    u = mannwhitneyu(x, y, alternative="greater").statistic
    assert probability_of_improvement({"T": x}, {"T": y})[0] == pytest.approx(u / (len(x) * len(y)))


def test_paired_difference_counts_ahead_tied_behind():
    # Differences +0.1, 0, -0.2, 0: mean -0.1 / 4 = -0.025.
    d = paired_difference([0.5, 0.6, 0.7, 0.8], [0.4, 0.6, 0.9, 0.8])
    assert (d["n"], d["ahead"], d["tied"], d["behind"]) == (4, 1, 2, 1)
    assert d["mean"] == pytest.approx(-0.025)
    assert -0.2 <= d["lo"] <= d["mean"] <= d["hi"] <= 0.1  # a mean of resampled pairs stays in their range


def test_interaction_by_hand():
    # Seed by seed: (a_high - b_high) = (0.4, 0.4, 0.4), (a_low - b_low) = (0.0, 0.1, 0.2);
    # interactions 0.4, 0.3, 0.2: mean 0.3, all positive, so every resampled mean lies in [0.2, 0.4].
    out = interaction([0.6, 0.7, 0.8], [0.2, 0.3, 0.4], [0.5, 0.6, 0.7], [0.5, 0.5, 0.5])
    assert out["mean"] == pytest.approx(0.3)
    assert (out["n"], out["ahead"], out["tied"], out["behind"]) == (3, 3, 0, 0)
    assert 0.2 - 1e-12 <= out["lo"] <= 0.3 <= out["hi"] <= 0.4 + 1e-12


def test_fixed_seed_is_deterministic_and_the_seed_matters():
    rng = np.random.default_rng(3)
    x, y = rng.random(10), rng.random(10)
    assert paired_difference(x, y, seed=7) == paired_difference(x, y, seed=7)
    assert stratified_bootstrap_ci({"T": x}, seed=7) == stratified_bootstrap_ci({"T": x}, seed=7)
    assert probability_of_improvement({"T": x}, {"T": y}, seed=7) == probability_of_improvement(
        {"T": x}, {"T": y}, seed=7
    )
    assert paired_difference(x, y, seed=7)["lo"] != paired_difference(x, y, seed=8)["lo"]


def test_mismatched_lengths_name_them():
    with pytest.raises(ValueError, match=r"'x': 3, 'y': 2"):
        paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"'a_low': 1"):
        interaction([1, 2], [1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement({"Lift": [1]}, {"Can": [1]})


def test_under_two_values_the_interval_is_nan_and_nothing_raises():
    one = paired_difference([0.5], [0.2])
    assert one["mean"] == pytest.approx(0.3) and math.isnan(one["lo"]) and math.isnan(one["hi"])
    none = paired_difference([], [])
    assert none["n"] == 0 and math.isnan(none["mean"])
    point, lo, hi = stratified_bootstrap_ci({"Lift": [0.5], "Can": [0.7]})
    assert point == pytest.approx(0.6) and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in stratified_bootstrap_ci({}))
    point, lo, hi = probability_of_improvement({"Lift": [0.5]}, {"Lift": [0.2]})
    assert point == 1.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in probability_of_improvement({"Lift": []}, {"Lift": [0.2]}))
