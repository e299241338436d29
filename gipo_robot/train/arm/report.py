"""What a robot run shows a user: the success curve over episodes and robot minutes, and run summaries.

Reads only the run directory (the episode store and ``metrics.csv``), so it works while the run goes on
(the learner redraws ``learning_curve.png`` every few rounds), after it, and on a copy of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.datasets import EpisodeStore

__all__ = ["episode_table", "plot_run", "rolling_success"]

WINDOW = 20
"""Episodes in the rolling success rate (the status line's and the curve's)."""


def episode_table(run: str | Path) -> dict[str, np.ndarray]:
    """Per committed episode of the run: ``success``, ``version``, ``steps``, ``robot_s`` (the actor's clock
    when it was committed) and ``interventions``; empty arrays before the first episode."""
    path = Path(run) / "episodes.zarr"
    if not path.exists():
        return {k: np.zeros(0) for k in ("success", "version", "steps", "robot_s", "interventions")}
    store = EpisodeStore.open(path)
    table = store.meta_table()
    extras = [store.episode_meta(i).extra for i in range(store.n_episodes)]
    return {
        "success": table["success"].astype(bool),
        "version": table["policy_version"].astype(int),
        "steps": table["length"].astype(int),
        "robot_s": np.array([e.get("robot_s", np.nan) for e in extras], dtype=float),
        "interventions": np.array([e.get("intervention_steps", 0) for e in extras], dtype=int),
    }


def rolling_success(success: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """``(E,)`` success rate over the last ``window`` episodes at each episode (fewer at the start)."""
    s = np.asarray(success, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(s)])
    idx = np.arange(1, len(s) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_run(run: str | Path, out: str | Path | None = None) -> Path:
    """Write ``learning_curve.png`` (or ``out``): rolling success vs episode and vs robot minutes, with the
    policy version each episode ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    out = Path(out) if out is not None else run / "learning_curve.png"
    t = episode_table(run)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if len(t["success"]):
        rate = rolling_success(t["success"])
        ep = np.arange(1, len(rate) + 1)
        axes[0].plot(ep, rate, color="C0", label=f"success (last {WINDOW})")
        twin = axes[0].twinx()
        twin.step(ep, t["version"], color="C1", alpha=0.6, where="post")
        twin.set_ylabel("policy version", color="C1")
        axes[1].plot(t["robot_s"] / 60, rate, color="C0")
    axes[0].set(xlabel="episode", ylabel="success rate", ylim=(-0.02, 1.02), title=run.name)
    axes[1].set(xlabel="robot minutes", ylabel="success rate", ylim=(-0.02, 1.02))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def summary(run: str | Path) -> dict[str, Any]:
    """The run in numbers: episodes, successes, success over the last 20, robot minutes, versions."""
    t = episode_table(run)
    n = len(t["success"])
    return {
        "episodes": n,
        "successes": int(t["success"].sum()),
        "success_last_20": float(rolling_success(t["success"])[-1]) if n else None,
        "robot_minutes": float(np.nanmax(t["robot_s"]) / 60)
        if n and np.isfinite(t["robot_s"]).any()
        else 0.0,
        "intervention_steps": int(t["interventions"].sum()),
        "last_version": int(t["version"].max()) if n else 0,
    }
