"""Statistics for paired RL benchmark results, in the spirit of rliable (Agarwal et al., "Deep Reinforcement
Learning at the Edge of the Statistical Precipice", NeurIPS 2021, arXiv 2108.13264). numpy only.

Scores are final success rates or AUCs, one per *run* (a seed). ``scores_by_task`` maps a task name to a 1-D
array of its runs' scores; tasks may have different numbers of runs. *Paired* functions take two (or four)
1-D arrays indexed by seed: element ``i`` of every array comes from the same seed (the same BC start and env
seeds), so per-seed differences cancel what the seeds share.

Confidence intervals are percentile bootstrap intervals: ``(lo, hi)`` are the ``alpha / 2`` and
``1 - alpha / 2`` quantiles of the statistic over ``reps`` resamples drawn with
``numpy.random.default_rng(seed)``, so a call is deterministic for a fixed ``seed``. Where fewer than two
values can be resampled the interval is ``(nan, nan)`` (never ``None``, never an exception): a bootstrap of
one value is that value, which would pass for certainty. Empty input gives a ``nan`` point as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = [
    "TOLERANCE",
    "interaction",
    "iqm",
    "paired_difference",
    "probability_of_improvement",
    "stratified_bootstrap_ci",
]

#: Differences within this of 0 count as tied (success rates are multiples of 1 / episodes; float noise in
#: ``(a - b) - (c - d)`` is ~1e-16).
TOLERANCE = 1e-9
NAN = float("nan")


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the scores left after sorting them and cutting ``int(0.25 * n)`` from
    each end, where ``n`` is the number of scores (all of ``x``, flattened).

    This is ``scipy.stats.trim_mean(x, 0.25, axis=None)``, which rliable's ``aggregate_iqm`` calls: at a
    fractional cut position (``n`` not a multiple of 4) it rounds the cut *down* and keeps whole scores
    (no partial weights), so it keeps slightly more than the middle 50%. Examples: 1..8 cuts 2 per end and
    averages 3..6 = 4.5; 1..5 cuts 1 per end and averages 2..4 = 3; under 4 scores it is the plain mean.

    Args:
        x: scores, any shape.

    Returns:
        The IQM; ``nan`` for no scores.
    """
    values = np.sort(np.asarray(x, dtype=float).ravel())
    if values.size == 0:
        return NAN
    cut = int(0.25 * values.size)
    return float(values[cut : values.size - cut].mean())


def _resample(rng: np.random.Generator, values: np.ndarray, reps: int) -> np.ndarray:
    """``(reps, n)``: ``reps`` draws of ``n = values.size`` values with replacement."""
    return values[rng.integers(0, values.size, size=(reps, values.size))]


def _interval(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _by_task(scores_by_task: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {task: np.asarray(v, dtype=float).ravel() for task, v in scores_by_task.items()}


def stratified_bootstrap_ci(
    scores_by_task: Mapping[str, np.ndarray],
    statistic: Callable[[np.ndarray], float] = iqm,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``statistic`` of all runs pooled over tasks, with a stratified percentile bootstrap CI.

    Each resample draws, for every task separately, as many runs as the task has, with replacement, from
    that task's runs (the strata), pools the draws and applies ``statistic`` to the pooled 1-D array.

    Args:
        scores_by_task: task -> 1-D scores of its runs.
        statistic: pooled 1-D scores -> a number (default :func:`iqm`).
        reps: bootstrap resamples.
        alpha: the interval covers ``1 - alpha`` (0.05: a 95% CI).
        seed: seed of the resampling generator.

    Returns:
        ``(point, lo, hi)``: ``statistic`` of the pooled scores and the interval; ``(nan, nan)`` for the
        interval when no task has two runs, and ``nan`` everywhere for no runs.
    """
    scores = [v for v in _by_task(scores_by_task).values() if v.size]
    if not scores:
        return NAN, NAN, NAN
    point = float(statistic(np.concatenate(scores)))
    if max(v.size for v in scores) < 2:
        return point, NAN, NAN
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([_resample(rng, v, reps) for v in scores], axis=1)
    return (point, *_interval(np.array([statistic(row) for row in pooled]), alpha))


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``P(X > Y) + 0.5 P(X = Y)`` over every pair of an element of ``x`` (``(..., n)``) and one of ``y``
    (``(..., m)``), for every leading index ``...``."""
    greater = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    equal = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return greater + 0.5 * equal


def probability_of_improvement(
    x_by_task: Mapping[str, np.ndarray],
    y_by_task: Mapping[str, np.ndarray],
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Probability that a run of X scores above a run of Y, averaged over tasks, with a bootstrap CI.

    Per task, ``P(X > Y) + 0.5 P(X = Y)`` over every pair of an X run and a Y run, i.e. the Mann-Whitney
    ``U`` of X over Y divided by ``n m``; then the mean over tasks (rliable's ``probability_of_improvement``).
    0.5 means neither is better; 1 means every X run beat every Y run. The runs need not be paired.
    The CI resamples X's runs and Y's runs independently within each task (rliable's stratified independent
    bootstrap).

    Args:
        x_by_task, y_by_task: task -> 1-D scores; both must name the same tasks.
        reps, alpha, seed: as in :func:`stratified_bootstrap_ci`.

    Returns:
        ``(point, lo, hi)``; ``(nan, nan)`` for the interval when every task has one run of X and one of Y,
        and ``nan`` everywhere when there is no task or a task has no run of X or of Y.

    Raises:
        ValueError: the two mappings name different tasks.
    """
    xs, ys = _by_task(x_by_task), _by_task(y_by_task)
    if set(xs) != set(ys):
        raise ValueError(f"X and Y must name the same tasks, got {sorted(xs)} and {sorted(ys)}")
    if not xs or any(xs[t].size == 0 or ys[t].size == 0 for t in xs):
        return NAN, NAN, NAN
    point = float(np.mean([_improvement(xs[t], ys[t]) for t in xs]))
    if all(xs[t].size < 2 and ys[t].size < 2 for t in xs):
        return point, NAN, NAN
    rng = np.random.default_rng(seed)
    per_task = [_improvement(_resample(rng, xs[t], reps), _resample(rng, ys[t], reps)) for t in sorted(xs)]
    return (point, *_interval(np.mean(per_task, axis=0), alpha))


def _summary(diffs: np.ndarray, reps: int, alpha: float, seed: int) -> dict:
    n = int(diffs.size)
    mean = float(diffs.mean()) if n else NAN
    lo, hi = NAN, NAN
    if n >= 2:
        rng = np.random.default_rng(seed)
        lo, hi = _interval(_resample(rng, diffs, reps).mean(axis=1), alpha)
    ahead, behind = int((diffs > TOLERANCE).sum()), int((diffs < -TOLERANCE).sum())
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "ahead": ahead, "tied": n - ahead - behind,
            "behind": behind}  # fmt: skip


def _same_length(**arrays: np.ndarray) -> list[np.ndarray]:
    values = {name: np.asarray(a, dtype=float).ravel() for name, a in arrays.items()}
    lengths = {name: v.size for name, v in values.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"paired scores need one value per seed in every array, got lengths {lengths}")
    return list(values.values())


def paired_difference(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> dict:
    """Per-seed differences ``x[i] - y[i]`` summarised: their mean with a bootstrap CI over pairs.

    Args:
        x, y: 1-D scores, element ``i`` of both from seed ``i`` (same length).
        reps, alpha, seed: as in :func:`stratified_bootstrap_ci`; each resample draws ``n`` pairs with
            replacement and takes the mean of their differences.

    Returns:
        ``{"mean", "lo", "hi", "n", "ahead", "tied", "behind"}``: the mean difference, the CI (``nan`` under
        2 pairs; ``mean`` is ``nan`` for none), the number of pairs, and how many differences are above,
        within and below ``±TOLERANCE`` of 0.

    Raises:
        ValueError: ``x`` and ``y`` differ in length (the message names both lengths).
    """
    x, y = _same_length(x=x, y=y)
    return _summary(x - y, reps, alpha, seed)


def interaction(
    a_high: np.ndarray,
    b_high: np.ndarray,
    a_low: np.ndarray,
    b_low: np.ndarray,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """How much more A beats B in one condition than in another, seed by seed:
    ``(a_high[i] - b_high[i]) - (a_low[i] - b_low[i])``, summarised as in :func:`paired_difference`.

    Issue 25's primary metric: A = GIPO, B = PPO-Clip, high = the largest policy lag, low = L = 0. Positive
    means GIPO's edge over PPO-Clip grows with lag.

    Args:
        a_high, b_high, a_low, b_low: 1-D scores, element ``i`` of all four from seed ``i`` (same length).
        reps, alpha, seed: as in :func:`paired_difference`.

    Returns:
        The :func:`paired_difference` summary of the per-seed interactions.

    Raises:
        ValueError: the four arrays differ in length (the message names every length).
    """
    a_high, b_high, a_low, b_low = _same_length(a_high=a_high, b_high=b_high, a_low=a_low, b_low=b_low)
    return _summary((a_high - b_high) - (a_low - b_low), reps, alpha, seed)
