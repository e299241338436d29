"""Learning curves of fine-tuning runs: success rate against environment steps, one line per run."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["plot_runs", "read_metrics"]


def read_metrics(run: str | Path) -> list[dict[str, float]]:
    """A run's ``metrics.csv`` as a list of numeric records (non-numeric cells dropped).

    Raises:
        FileNotFoundError: naming the missing file.
    """
    path = Path(run) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run} a fine-tuning run directory?")
    out = []
    with path.open() as f:
        for row in csv.DictReader(f):
            rec = {}
            for k, v in row.items():
                try:
                    rec[k] = float(v)
                except (TypeError, ValueError):
                    continue
            out.append(rec)
    return out


def plot_runs(
    runs: list[str | Path],
    path: str | Path,
    labels: list[str] | None = None,
    references: dict[str, float] | None = None,
) -> Path:
    """Evaluation success (solid) and rollout success (faint) vs env steps for each run, as a PNG.

    Args:
        runs: fine-tuning run directories (each with ``metrics.csv``).
        path: the PNG to write.
        labels: legend names (default: the directory names).
        references: horizontal lines to draw, label -> success rate (e.g. the BC start).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or [Path(r).name for r in runs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        color = f"C{i % 10}"
        rows = read_metrics(run)
        ev = [(r["env_steps"], r["eval_success"]) for r in rows if "eval_success" in r]
        ro = [
            (r["env_steps"], r["rollout_success"])
            for r in rows
            if r.get("rollout_success") == r.get("rollout_success")
        ]
        if ev:
            ax.plot(*zip(*ev, strict=True), "o-", color=color, label=f"{label} (eval)")
        if ro:
            ax.plot(*zip(*ro, strict=True), "-", color=color, alpha=0.3, label=f"{label} (rollouts)")
    for j, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color="gray", linestyle=["--", ":", "-."][j % 3], label=label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run may have logged nothing plottable yet
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
