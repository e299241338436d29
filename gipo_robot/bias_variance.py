"""Exact bias and variance of off-policy gradient estimators on a 2×2 GridWorld, in two setups.

At one state ``s0`` of a tiny deterministic GridWorld, a *target* policy π (the one being improved) and a
*behaviour* policy μ (the stale one that produced the data) are tabular softmax policies. The quantity every
objective tries to estimate is the on-policy policy gradient at ``s0`` with respect to π's logits there::

    g* = Σ_a π(a) · A^π(a) · ∇_θ log π(a),          ∇_θ log π(a) = e_a − π       (softmax)

An objective turns one action ``a ~ μ`` into the single-sample estimate ``ĝ(a) = c(a) · ∇_θ log π(a)``,
where ``c(a)`` is the objective's effective weight times ``A^π(a)``. ``c`` is read off the real objectives in
:mod:`gipo_robot.objectives` by autograd (``c_i = −N ∂L/∂logp_i``; all objectives are means of per-sample
terms), so this study measures the code the trainer runs. With only four actions the expectation over μ is
an exact sum, no sampling:

    bias     = ‖Σ_a μ(a) ĝ(a) − g*‖²                 (squared, relative to ‖g*‖²)
    variance = Σ_a μ(a) ‖ĝ(a) − E_μ ĝ‖²              (trace of the covariance, relative to ‖g*‖²)
    MSE(N)   = bias + variance / N                   (a minibatch of N i.i.d. samples)

Two setups share this machinery:

- **ours** (:class:`StudyConfig`, :func:`run_study`; the default): random pairs (π, μ) of increasing
  divergence, drawn as ``logits_μ = logits_π + δ·z`` with ``z ~ N(0, I)`` at ``s0`` (π and μ agree
  elsewhere), for a grid of δ; each level averages over many random pairs; the full gradient (all four
  logits); MSE reported at N = 1, 16, 256 (N = 16 in the summaries). It is modelled on the GIPO paper's
  study, not a copy of it.
- **authors** (:class:`AuthorsStudyConfig`, :func:`run_authors_study`): the layout of the GIPO paper's
  own study (arXiv 2603.03955): 3 hand-set target policies × 7 behaviour policies, the gradient with
  respect to one logit, one sample per estimate (N = 1). The paper's exact numbers were not available
  here, so the policies, the logit and the sweeps are ours (see the config).

Shapes: ``P`` pairs, ``K`` = 4 actions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from gipo_robot.objectives import get_objective

N_STATES = 4  # cells (row, col): 0=(0,0) 1=(0,1) 2=(1,0) 3=(1,1); 3 is the goal (absorbing)
N_ACTIONS = 4  # up, down, left, right
GOAL = 3
START = 0
_MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def _next_state(s: int, a: int) -> int:
    r, c = divmod(s, 2)
    dr, dc = _MOVES[a]
    nr, nc = r + dr, c + dc
    if not (0 <= nr < 2 and 0 <= nc < 2):
        return s  # bumping into the wall leaves the agent in place
    return nr * 2 + nc


def transition_table() -> np.ndarray:
    """``next_state[s, a]`` of the 2×2 GridWorld (walls keep the agent in place)."""
    return np.array([[_next_state(s, a) for a in range(N_ACTIONS)] for s in range(N_STATES)])


def q_values(policy: np.ndarray, gamma: float) -> np.ndarray:
    """Exact Q^π(s, a) by solving the Bellman equations; reward 1 on entering the goal, which then absorbs.

    Args:
        policy: action probabilities, ``(N_STATES, K)``; the goal's row is ignored.
        gamma: discount factor in (0, 1).

    Returns:
        ``(N_STATES, K)`` Q-values; the goal row is 0.
    """
    nxt = transition_table()
    reward = (nxt == GOAL).astype(float)
    reward[GOAL] = 0.0
    # V = r_π + γ P_π V on non-goal states, V(goal) = 0.
    p_pi = np.zeros((N_STATES, N_STATES))
    r_pi = np.zeros(N_STATES)
    for s in range(N_STATES):
        if s == GOAL:
            continue
        for a in range(N_ACTIONS):
            r_pi[s] += policy[s, a] * reward[s, a]
            if nxt[s, a] != GOAL:
                p_pi[s, nxt[s, a]] += policy[s, a]
    v = np.linalg.solve(np.eye(N_STATES) - gamma * p_pi, r_pi)
    q = reward + gamma * np.where(nxt == GOAL, 0.0, v[nxt])
    q[GOAL] = 0.0
    return q


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass
class PairBatch:
    """``P`` target/behaviour pairs at the start state.

    Attributes:
        pi: target action probabilities at ``s0``, ``(P, K)``.
        mu: behaviour action probabilities at ``s0``, ``(P, K)``.
        adv: exact advantages A^π(s0, a), ``(P, K)``.
        kl: KL(μ‖π) at ``s0`` per pair, ``(P,)``.
    """

    pi: np.ndarray
    mu: np.ndarray
    adv: np.ndarray
    kl: np.ndarray


def sample_pairs(n_pairs: int, delta: float, gamma: float, rng: np.random.Generator) -> PairBatch:
    """Draw ``n_pairs`` random (π, μ) pairs whose logits at ``s0`` differ by ``delta · N(0, I)``."""
    pis, mus, advs = [], [], []
    for _ in range(n_pairs):
        logits = rng.normal(size=(N_STATES, N_ACTIONS))
        policy = _softmax(logits)
        q = q_values(policy, gamma)
        v0 = policy[START] @ q[START]
        pis.append(policy[START])
        mus.append(_softmax(logits[START] + delta * rng.normal(size=N_ACTIONS)))
        advs.append(q[START] - v0)
    pi, mu, adv = np.array(pis), np.array(mus), np.array(advs)
    kl = (mu * (np.log(mu) - np.log(pi))).sum(axis=1)
    return PairBatch(pi=pi, mu=mu, adv=adv, kl=kl)


def effective_coefficients(objective: str, params: dict, batch: PairBatch) -> np.ndarray:
    """``c(a)`` for every pair and action: the estimate is ``ĝ(a) = c(a)·(e_a − π)``. Shape ``(P, K)``.

    Evaluates the real objective once on all ``P·K`` (pair, action) samples in float64 and reads the
    per-sample gradient with respect to ``logp`` by autograd.
    """
    logp = torch.tensor(np.log(batch.pi), dtype=torch.float64).flatten().requires_grad_(True)
    logp_b = torch.tensor(np.log(batch.mu), dtype=torch.float64).flatten()
    adv = torch.tensor(batch.adv, dtype=torch.float64).flatten()
    loss, _ = get_objective(objective)(logp, logp_b, adv, **params)
    (grad,) = torch.autograd.grad(loss, logp)
    return (-grad * logp.numel()).reshape(batch.pi.shape).numpy()


def bias_variance(objective: str, params: dict, batch: PairBatch) -> tuple[float, float]:
    """Mean over pairs of the relative squared bias and relative variance of ``objective``'s estimator."""
    c = effective_coefficients(objective, params, batch)  # (P, K)
    eye = np.eye(N_ACTIONS)
    score = eye[None, :, :] - batch.pi[:, None, :]  # (P, K action taken, K logit): ∇θ log π(a)
    g_hat = c[:, :, None] * score  # (P, K, K)
    g_true = ((batch.pi * batch.adv)[:, :, None] * score).sum(axis=1)  # (P, K)
    g_mean = (batch.mu[:, :, None] * g_hat).sum(axis=1)  # (P, K)
    bias2 = ((g_mean - g_true) ** 2).sum(axis=1)
    var = (batch.mu * ((g_hat - g_mean[:, None, :]) ** 2).sum(axis=2)).sum(axis=1)
    norm2 = (g_true**2).sum(axis=1)
    keep = norm2 > 1e-12  # a pair whose true gradient vanishes has no relative scale
    return float((bias2[keep] / norm2[keep]).mean()), float((var[keep] / norm2[keep]).mean())


@dataclass
class StudyConfig:
    """The bias–variance study's settings (saved next to its result).

    Attributes:
        deltas: logit perturbation scales, one divergence level each (larger = staler behaviour data).
        n_pairs: random (π, μ) pairs averaged per level.
        gamma: GridWorld discount.
        batch_sizes: minibatch sizes N for which MSE = bias + variance/N is reported.
        seed: RNG seed for the pairs.
        families: objective name -> list of parameter settings swept (the frontier of that family).
    """

    deltas: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 3.0])
    n_pairs: int = 500
    gamma: float = 0.9
    batch_sizes: list[int] = field(default_factory=lambda: [1, 16, 256])
    seed: int = 0
    families: dict[str, dict] = field(
        default_factory=lambda: {
            "gipo": {
                "objective": "gipo",
                "params": [{"sigma": s} for s in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3)],
            },
            "ppo_clip": {
                "objective": "ppo_clip",
                "params": [{"eps": e} for e in (0.05, 0.1, 0.2, 0.3, 0.5, 1, 2)],
            },
            "sapo": {
                "objective": "sapo",
                "params": [
                    {"tau_pos": 1.0, "tau_neg": 2.0},
                    {"tau_pos": 1.0, "tau_neg": 1.05},
                    {"tau_pos": 0.5, "tau_neg": 1.0},
                    {"tau_pos": 2.0, "tau_neg": 4.0},
                ],
            },
            "no_clip": {"objective": "no_clip", "params": [{}]},
            "truncated_is": {"objective": "no_clip", "params": [{"truncate": c} for c in (1.0, 2.0, 5.0)]},
            "cispo": {"objective": "cispo", "params": [{"eps_high": e} for e in (0.2, 0.5, 1.0)]},
        }
    )
    """Family label -> ``{"objective": name in OBJECTIVES, "params": [settings swept]}``."""


def dominated(point: tuple[float, float], frontier: list[tuple[float, float]], tol: float = 1e-9) -> bool:
    """Whether some frontier point has bias and variance both no larger than ``point``'s (within tol)."""
    b, v = point
    return any(fb <= b * (1 + tol) + tol and fv <= v * (1 + tol) + tol for fb, fv in frontier)


def frontier_variance(bias2: float, frontier: list[tuple[float, float]]) -> float:
    """Variance of a frontier at a given bias², interpolated linearly in log-log space.

    ``frontier`` is a family's (bias², variance) sweep. Below the frontier's smallest bias it returns inf (the
    family cannot be that unbiased within its sweep); above its largest bias it returns the variance at that
    end (an upper bound: a stronger setting would only lower it).
    """
    pts = sorted(frontier)
    xs = np.log([max(b, 1e-300) for b, _ in pts])
    ys = np.log([v for _, v in pts])
    x = np.log(max(bias2, 1e-300))
    if x < xs[0] - 1e-9:
        return float("inf")
    return float(np.exp(np.interp(x, xs, ys)))


def _point(family: str, spec: dict, params: dict, bias2: float, var: float, batch_sizes: list[int]) -> dict:
    """One estimator's entry in a level: its bias², variance and MSE at each minibatch size."""
    return {
        "family": family,
        "objective": spec["objective"],
        "params": params,
        "bias2": bias2,
        "variance": var,
        "mse": {str(n): bias2 + var / n for n in batch_sizes},
    }


def _frontier_summary(points: list[dict], families: list[str], batch_sizes: list[int]) -> dict:
    """Marks each baseline point against GIPO's frontier (in place) and returns the level's summary."""
    gipo_front = [(p["bias2"], p["variance"]) for p in points if p["family"] == "gipo"]
    baseline_points = [p for p in points if p["family"] != "gipo"]
    for p in baseline_points:
        p["dominated_by_gipo"] = dominated((p["bias2"], p["variance"]), gipo_front)
        # < 1: GIPO's frontier passes below this point (same bias, less variance). A zero-variance point
        # (every sample's weight zero, as PPO-Clip can give for one logit) cannot be beaten: inf.
        front_var = frontier_variance(p["bias2"], gipo_front)
        p["gipo_variance_ratio"] = front_var / p["variance"] if p["variance"] > 0 else float("inf")
    best_mse = {
        str(n): {name: min(p["mse"][str(n)] for p in points if p["family"] == name) for name in families}
        for n in batch_sizes
    }
    return {
        "frac_baselines_dominated": float(np.mean([p["dominated_by_gipo"] for p in baseline_points])),
        "frac_baselines_above_gipo_frontier": float(
            np.mean([p["gipo_variance_ratio"] < 1 for p in baseline_points])
        ),
        "best_mse": best_mse,
    }


def run_study(config: StudyConfig, progress=None) -> dict:
    """Run the whole study; returns a JSON-ready dict (see ``scripts/reproduce_bias_variance.py``).

    Args:
        config: the study settings.
        progress: optional callable taking the number of finished levels (for a progress bar).
    """
    rng = np.random.default_rng(config.seed)
    levels = []
    for delta in config.deltas:
        batch = sample_pairs(config.n_pairs, delta, config.gamma, rng)
        points = []
        for family, spec in config.families.items():
            for params in spec["params"]:
                bias2, var = bias_variance(spec["objective"], params, batch)
                points.append(_point(family, spec, params, bias2, var, config.batch_sizes))
        levels.append(
            {
                "delta": delta,
                "kl_mean": float(batch.kl.mean()),
                "kl_median": float(np.median(batch.kl)),
                "points": points,
                **_frontier_summary(points, list(config.families), config.batch_sizes),
            }
        )
        if progress is not None:
            progress(len(levels))
    return {"setup": "ours", "config": asdict(config), "levels": levels}


# --- The authors' setup ----------------------------------------------------------------------------------


def _paper_families() -> dict[str, dict]:
    """The study's sweeps restricted to the paper's four objectives (GIPO, PPO-Clip, SAPO, No-Clip)."""
    return {k: v for k, v in StudyConfig().families.items() if k in ("gipo", "ppo_clip", "sapo", "no_clip")}


@dataclass
class AuthorsStudyConfig:
    """The GIPO paper's own GridWorld setup: hand-set targets × behaviours, one logit, N = 1.

    The paper (arXiv 2603.03955) fixes 3 hand-set target policies and 7 behaviour policies, estimates the
    gradient with respect to one logit, and scores a single sample (N = 1) (as issue 25 summarises it). The
    copy of the paper searchable here shows only its abstract and introduction, not the appendix's values
    (rewards, the policies' probabilities, which logit, the σ/ε/τ swept, what exactly is plotted), so
    those are ours, chosen as below and saved with the result: same grid as :class:`StudyConfig`, bias²
    and variance relative to g*_k² (the ranking at a pair does not depend on the scale), and the
    study's σ/ε/τ sweeps, which contain the authors' code's settings (σ = 0.5, 1; ε = 0.2; τ₊ = 1, τ₋ = 2).

    Attributes:
        targets: name -> target logits (up, down, left, right), the same at every non-goal state; hand-set:
            uniform, leaning towards the goal (down/right), and greedy for "right" (which at cell 1 bumps
            the wall, so its advantage at ``s0`` is negative).
        behaviour_shifts: the 7 behaviours per target: at ``s0``, logits_μ = logits_π + δ·direction.
        behaviour_direction: the hand-set direction of staleness (μ and π agree elsewhere): the behaviour
            is an older policy that took "up"/"left" more and "right" less.
        logit: the logit whose gradient component is estimated (3 = "right").
        batch_size: samples per estimate N; MSE = bias² + variance / N.
        gamma: GridWorld discount.
        families: as :attr:`StudyConfig.families`; the paper's four objectives with the study's sweeps.
    """

    targets: dict[str, list[float]] = field(
        default_factory=lambda: {
            "uniform": [0.0, 0.0, 0.0, 0.0],
            "goal_leaning": [0.0, 1.0, 0.0, 1.0],
            "greedy_right": [-1.0, 1.5, -1.0, 2.5],
        }
    )
    behaviour_shifts: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    behaviour_direction: list[float] = field(default_factory=lambda: [1.0, 0.0, 1.0, -1.0])
    logit: int = 3
    batch_size: int = 1
    gamma: float = 0.9
    families: dict[str, dict] = field(default_factory=_paper_families)

    def __post_init__(self) -> None:
        if not 0 <= self.logit < N_ACTIONS:
            raise ValueError(f"logit must be an action index in [0, {N_ACTIONS}), got {self.logit}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name, logits in self.targets.items():
            if len(logits) != N_ACTIONS:
                raise ValueError(f"targets[{name!r}] needs {N_ACTIONS} logits, got {len(logits)}")
        if len(self.behaviour_direction) != N_ACTIONS:
            raise ValueError(f"behaviour_direction needs {N_ACTIONS} entries, got {self.behaviour_direction}")


def authors_pairs(config: AuthorsStudyConfig) -> tuple[PairBatch, list[tuple[str, float]]]:
    """Every (target, behaviour) pair of the authors' setup, targets outer; returns the batch and labels."""
    pis, mus, advs, labels = [], [], [], []
    direction = np.asarray(config.behaviour_direction, dtype=float)
    for name, logits in config.targets.items():
        logits = np.asarray(logits, dtype=float)
        policy = _softmax(np.tile(logits, (N_STATES, 1)))
        q = q_values(policy, config.gamma)
        for delta in config.behaviour_shifts:
            pis.append(policy[START])
            mus.append(_softmax(logits + delta * direction))
            advs.append(q[START] - policy[START] @ q[START])
            labels.append((name, delta))
    pi, mu, adv = np.array(pis), np.array(mus), np.array(advs)
    kl = (mu * (np.log(mu) - np.log(pi))).sum(axis=1)
    return PairBatch(pi=pi, mu=mu, adv=adv, kl=kl), labels


def logit_bias_variance(objective: str, params: dict, batch: PairBatch, logit: int) -> tuple[np.ndarray, ...]:
    """Per pair: squared bias and variance of one sample's estimate of ∂J/∂θ_logit, and the true value.

    With ``k = logit``, ∂log π(a)/∂θ_k = 1[a = k] − π(k), so ĝ_k(a) = c(a)·(1[a = k] − π(k)) and
    g*_k = Σ_a π(a)A(a)(1[a = k] − π(k)) = π(k)A(k) (since Σ_a π(a)A(a) = 0).

    Returns:
        ``(bias2, variance, g_true)``, each ``(P,)``; bias² and variance are absolute (not relative).
    """
    c = effective_coefficients(objective, params, batch)  # (P, K)
    score = (np.arange(N_ACTIONS) == logit)[None, :] - batch.pi[:, [logit]]  # (P, K action taken)
    g_hat = c * score
    g_true = (batch.pi * batch.adv * score).sum(axis=1)
    g_mean = (batch.mu * g_hat).sum(axis=1)
    var = (batch.mu * (g_hat - g_mean[:, None]) ** 2).sum(axis=1)
    return (g_mean - g_true) ** 2, var, g_true


def run_authors_study(config: AuthorsStudyConfig) -> dict:
    """The authors' setup: one level per (target, behaviour) pair, bias² and variance relative to g*_k².

    Returns the same shape as :func:`run_study` (``levels`` with ``points`` and ``best_mse``), with
    ``setup = "authors"`` and each level naming its ``target`` and holding its true gradient ``g_true``.
    """
    batch, labels = authors_pairs(config)
    per_point = []  # (family, spec, params, relative bias² per pair, relative variance per pair)
    for family, spec in config.families.items():
        for params in spec["params"]:
            bias2, var, g_true = logit_bias_variance(spec["objective"], params, batch, config.logit)
            per_point.append((family, spec, params, bias2 / g_true**2, var / g_true**2))
    levels = []
    for i, (target, delta) in enumerate(labels):
        points = [
            _point(fam, spec, params, float(b[i]), float(v[i]), [config.batch_size])
            for fam, spec, params, b, v in per_point
        ]
        levels.append(
            {
                "target": target,
                "delta": delta,
                "kl_mean": float(batch.kl[i]),  # one pair per level: its KL(μ‖π)
                "g_true": float(g_true[i]),
                "points": points,
                **_frontier_summary(points, list(config.families), [config.batch_size]),
            }
        )
    return {"setup": "authors", "config": asdict(config), "levels": levels}


_STYLES = {
    "gipo": ("tab:red", "o-"),
    "ppo_clip": ("tab:blue", "s-"),
    "sapo": ("tab:green", "^"),
    "no_clip": ("black", "x"),
    "truncated_is": ("tab:gray", "v"),
    "cispo": ("tab:purple", "d"),
}
"""Family -> (colour, marker style) in the frontier plots."""


def _draw_frontiers(ax, level: dict, title: str, n: int | None = None, floor: float = 1e-8) -> None:
    """One panel: bias² vs variance of every family's sweep at one level (per-sample variance, or /n).

    Unbiased (or zero-variance) estimators sit at 0; they are drawn at ``floor`` on the log axes.
    """
    for name, (color, style) in _STYLES.items():
        pts = [p for p in level["points"] if p["family"] == name]
        if not pts:
            continue
        xs = [max(p["bias2"], floor) for p in pts]
        ys = [max(p["variance"] / (n or 1), floor) for p in pts]
        ax.plot(xs, ys, style, color=color, label=name, markersize=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("relative bias²")
    ax.set_ylabel("relative variance" + (f" / N (N={n})" if n else " (per sample)"))
    ax.grid(True, which="both", alpha=0.3)


def plot_frontiers(result: dict, path: str) -> None:
    """Bias² vs variance, one panel per divergence level; one line per objective family across its sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = result["levels"]
    n_cols = 3
    n_rows = (len(levels) + 1 + n_cols - 1) // n_cols
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols, 4.2 * n_rows), squeeze=False)
    flat = list(axes.flat)
    for ax, level in zip(flat, levels, strict=False):
        _draw_frontiers(ax, level, f"δ={level['delta']}  KL(μ‖π)≈{level['kl_mean']:.2f}")
    flat[0].legend(fontsize=8)
    # Last panel: the best MSE each family reaches (over its sweep) as the data grows staler.
    ax = flat[len(levels)]
    n = str(max(int(k) for k in levels[0]["best_mse"]) if "16" not in levels[0]["best_mse"] else 16)
    kls = [lv["kl_mean"] for lv in levels]
    for name, (color, _) in _STYLES.items():
        if name in levels[0]["best_mse"][n]:
            ax.plot(kls, [lv["best_mse"][n][name] for lv in levels], "o-", color=color, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("KL(μ‖π) at the state")
    ax.set_ylabel(f"best relative MSE over the sweep (N={n})")
    ax.set_title("Best achievable MSE vs staleness")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    for ax in flat[len(levels) + 1 :]:
        ax.axis("off")
    fig.suptitle("Exact bias–variance of gradient estimators, 2×2 GridWorld (lower-left is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_authors(result: dict, path: str, shown: tuple[int, ...] = (0, 3, 6)) -> None:
    """The authors' setup: per target (row), frontiers at a few behaviours and best MSE vs staleness.

    Args:
        result: :func:`run_authors_study`'s output.
        path: PNG to write.
        shown: indices into the behaviour list whose frontier panels are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = result["config"]["batch_size"]
    targets = list(result["config"]["targets"])
    fig, axes = plt.subplots(
        len(targets), len(shown) + 1, figsize=(4.4 * (len(shown) + 1), 3.9 * len(targets))
    )
    axes = np.atleast_2d(axes)
    for row, target in zip(axes, targets, strict=True):
        levels = [lv for lv in result["levels"] if lv["target"] == target]
        for ax, i in zip(row, shown, strict=False):
            lv = levels[i]
            title = f"{target}: δ={lv['delta']}  KL(μ‖π)={lv['kl_mean']:.2f}"
            _draw_frontiers(ax, lv, title, n, floor=1e-4)
        ax = row[-1]
        kls = [lv["kl_mean"] for lv in levels]
        for name, (color, _) in _STYLES.items():
            if name in levels[0]["best_mse"][str(n)]:
                ax.plot(kls, [lv["best_mse"][str(n)][name] for lv in levels], "o-", color=color, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("KL(μ‖π) at the state")
        ax.set_ylabel(f"best relative MSE over the sweep (N={n})")
        ax.set_title(f"{target}: best MSE vs staleness", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[0, -1].legend(fontsize=8)
    fig.suptitle(
        f"Authors' layout: one logit's gradient, N={n}, hand-set targets × behaviours "
        "(lower-left is better; 0 is drawn at 1e-4)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_study(result: dict, path: str) -> None:
    """Either setup's picture: :func:`plot_authors` or :func:`plot_frontiers`, by the result's ``setup``."""
    (plot_authors if result["setup"] == "authors" else plot_frontiers)(result, path)
