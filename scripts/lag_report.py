"""The controlled-lag benchmark's report (``bench_lag.py report``, issue 25): markdown tables and one PNG per
task, with the statistics of ``gipo_robot.stats`` (rliable's IQM, stratified bootstrap CIs, probability of
improvement; paired per-seed differences).

Tables, in order:

1. tuning (``lag_tune.json``): per task, arm and policy lr at L = 0, the mean final success, AUC and approx-KL
   over the tuning seeds, and the lr ``bench_lag.tuned_lr`` picks;
2. per task, arm and lag: IQM final success and IQM AUC with stratified-bootstrap 95% CIs, and the staleness
   the learner measured (means over runs of approx-KL(μ‖π), normalised ESS, the fraction of samples with
   weight < 1e-3, GIPO's mean trust weight, the mean batch lag in policy versions);
3. per task and lag, each arm minus PPO-Clip on the seeds both ran (seed s of every arm starts from the same
   BC policy and env seeds): the mean paired difference with a bootstrap 95% CI, ahead / tied / behind, and
   the probability of improvement P(arm > PPO-Clip) with its CI; an asynchronous arm (``gipo_async``) is
   compared with asynchronous PPO-Clip (``ppo_clip_async``), and then with its own objective collected in
   lockstep at L = 0 (what the natural lag costs);
4. the primary metric: per task and arm, ``(arm - PPO-Clip at the highest lag) - (arm - PPO-Clip at L = 0)``
   seed by seed, over the seeds present in all four cells. "tie" where its CI contains 0.

An arm run at more than one policy lr in the grid is split by lr (``gipo@lr3e-05``) so that runs at
different lrs never pool, and then every arm of that task is labelled with its lr; every label is compared
with every PPO-Clip label of the task.

The PNG ``<png_prefix>_<task>.png`` plots against the *measured* staleness: final success vs approx-KL, the
dead fraction vs approx-KL (one point per run, colour per arm, marker per lag), and the mean eval curves per
arm and lag.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np

from gipo_robot.stats import (
    interaction,
    iqm,
    paired_difference,
    probability_of_improvement,
    stratified_bootstrap_ci,
)

REFERENCE = "ppo_clip"
ORDER = ("gipo", "gipo_dim", "ppo_clip", "no_clip", "sapo", "gipo_async", "ppo_clip_async")
#: (run field, column title, format) of the measured staleness, means over the runs of a cell.
STALENESS = (
    ("approx_kl", "approx-KL", ".3g"),
    ("ess", "ESS", ".2f"),
    ("dead_fraction", "weights < 1e-3", ".3f"),
    ("mean_trust_weight", "trust weight", ".3f"),
    ("mean_batch_lag", "batch lag", ".1f"),
)

Cells = dict[tuple[str, str, int], dict[int, dict]]  # (task, arm label, lag) -> seed -> run


def arm_labels(runs: list[dict]) -> list[str]:
    """Each run's arm label: its objective, with ``@lr<lr>`` on every arm of a task whose grid runs some arm
    at more than one policy lr (so that every label of that task says its lr)."""
    lrs: dict[tuple[str, str], set[float]] = {}
    for r in runs:
        lrs.setdefault((r["task"], r["objective"]), set()).add(r["policy_lr"])
    several = {task for (task, _), seen in lrs.items() if len(seen) > 1}
    return [
        f"{r['objective']}@lr{r['policy_lr']:g}" if r["task"] in several else r["objective"] for r in runs
    ]


def cells_of(runs: list[dict]) -> Cells:
    cells: Cells = {}
    for label, r in zip(arm_labels(runs), runs, strict=True):
        cells.setdefault((r["task"], label, r["lag"]), {})[r["seed"]] = r
    return cells


def _base(label: str) -> str:
    return label.split("@")[0]


def _arm_key(label: str) -> tuple:
    base = _base(label)
    return (ORDER.index(base) if base in ORDER else len(ORDER), label)


def _fmt(value: float | None, fmt: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, fmt)


def _ci(point: float, lo: float, hi: float, fmt: str = ".2f") -> str:
    interval = "—" if math.isnan(lo) else f"{lo:{fmt}}, {hi:{fmt}}"
    return f"{_fmt(point, fmt)} [{interval}]"


def _verdict(lo: float, hi: float, above: str, below: str) -> str:
    if math.isnan(lo):
        return "n < 2"
    return "tie" if lo <= 0 <= hi else (above if lo > 0 else below)


def _mean_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.mean(values) if values else None


def tuning_table(tune_runs: list[dict]) -> list[str]:
    """Per task, arm and lr of the L = 0 tuning runs: seeds and means; ``← tuned`` on ``tuned_lr``'s pick."""
    from bench_lag import tuned_lr  # lazily: it imports the fine-tuning stack

    groups: dict[tuple[str, str, float], list[dict]] = {}
    for r in tune_runs:
        if r["lag"] == 0:
            groups.setdefault((r["task"], r["objective"], r["policy_lr"]), []).append(r)
    if not groups:
        return []
    picked = {(t, a): tuned_lr(tune_runs, t, a) for t, a, _ in groups}
    lines = [
        "| task | arm | policy lr | seeds | final success mean | AUC mean | approx-KL mean | tuned |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, arm, lr in sorted(groups, key=lambda g: (g[0], _arm_key(g[1]), g[2])):
        rs = groups[task, arm, lr]
        mark = "← tuned" if picked[task, arm] == lr else ""
        lines.append(
            f"| {task} | {arm} | {lr:g} | {len(rs)} | {_mean_of(rs, 'final_success'):.2f} "
            f"| {_mean_of(rs, 'auc'):.3f} | {_fmt(_mean_of(rs, 'approx_kl'), '.3g')} | {mark} |"
        )
    return lines


def cells_table(cells: Cells) -> list[str]:
    """Per task, arm and lag: IQM (stratified bootstrap 95% CI) and mean of the scores, measured staleness."""
    lines = [
        "| task | arm | L | seeds | BC start mean | IQM final success [95% CI] | mean final success "
        "| IQM AUC [95% CI] | " + " | ".join(title for _, title, _ in STALENESS) + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(STALENESS),
    ]
    for task, arm, lag in sorted(cells, key=lambda c: (c[0], _arm_key(c[1]), c[2])):
        rs = [cells[task, arm, lag][s] for s in sorted(cells[task, arm, lag])]
        final = stratified_bootstrap_ci({task: [r["final_success"] for r in rs]}, iqm)
        auc = stratified_bootstrap_ci({task: [r["auc"] for r in rs]}, iqm)
        staleness = " | ".join(_fmt(_mean_of(rs, key), fmt) for key, _, fmt in STALENESS)
        start = _fmt(_mean_of(rs, "start_success"), ".2f")
        lines.append(
            f"| {task} | {arm} | {lag} | {len(rs)} | {start} | {_ci(*final)} "
            f"| {statistics.mean(r['final_success'] for r in rs):.2f} | {_ci(*auc, '.3f')} | {staleness} |"
        )
    return lines


def _is_reference(label: str) -> bool:
    return _base(label) in (REFERENCE, REFERENCE + "_async")


def _compared(arm: str, ref: str) -> bool:
    """Whether ``arm`` is compared with the PPO-Clip label ``ref``: asynchronous arms with asynchronous
    PPO-Clip, lockstep arms with lockstep PPO-Clip."""
    return not _is_reference(arm) and _base(arm).endswith("_async") == _base(ref).endswith("_async")


def _pairs(cells: Cells, task: str, lag: int, arm: str, ref: str) -> list[int]:
    return sorted(set(cells.get((task, arm, lag), {})) & set(cells.get((task, ref, lag), {})))


def _diff_cells(d: dict, fmt: str, arm: str, ref: str) -> str:
    verdict = _verdict(d["lo"], d["hi"], f"{arm} ahead", f"{ref} ahead")
    counts = f"{d['ahead']} / {d['tied']} / {d['behind']}"
    return f"{_ci(d['mean'], d['lo'], d['hi'], '+' + fmt)} {verdict} | {counts}"


def paired_table(cells: Cells) -> list[str]:
    """Per task and lag, every arm minus each PPO-Clip label on the seeds both ran (others are dropped)."""
    lines = [
        "| task | L | arm − ref | pairs | Δ final success [95% CI] | ahead / tied / behind | Δ AUC [95% CI] "
        "| ahead / tied / behind | P(arm > ref) final success [95% CI] | P(arm > ref) AUC [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, lag in sorted({(t, g) for t, _, g in cells}):
        arms = sorted({a for t, a, g in cells if (t, g) == (task, lag)}, key=_arm_key)
        for ref in filter(_is_reference, arms):
            for arm in (a for a in arms if _compared(a, ref)):
                seeds = _pairs(cells, task, lag, arm, ref)
                if not seeds:
                    continue
                x, y = cells[task, arm, lag], cells[task, ref, lag]
                row = [f"{task} | {lag} | {arm} − {ref} | {len(seeds)}"]
                for key, fmt in (("final_success", ".2f"), ("auc", ".3f")):
                    xs, ys = [x[s][key] for s in seeds], [y[s][key] for s in seeds]
                    row.append(_diff_cells(paired_difference(xs, ys), fmt, arm, ref))
                for key in ("final_success", "auc"):
                    xs, ys = [x[s][key] for s in seeds], [y[s][key] for s in seeds]
                    row.append(_ci(*probability_of_improvement({task: xs}, {task: ys})))
                lines.append("| " + " | ".join(row) + " |")
    return lines if len(lines) > 2 else []


def async_table(cells: Cells) -> list[str]:
    """Per task, each asynchronous arm minus the same objective collected in lockstep on-policy (L = 0), on
    the seeds both ran: what the asynchronous path's natural lag costs."""
    lines = [
        "| task | async − lockstep | pairs | batch lag (async) | Δ final success [95% CI] "
        "| ahead / tied / behind | Δ AUC [95% CI] | ahead / tied / behind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, arm, lag in sorted(cells, key=lambda c: (c[0], _arm_key(c[1]), c[2])):
        base = _base(arm)
        lockstep = base.removesuffix("_async") + arm[len(base) :]
        if lag != 0 or not base.endswith("_async") or (task, lockstep, 0) not in cells:
            continue
        seeds = _pairs(cells, task, 0, arm, lockstep)
        if not seeds:
            continue
        x, y = cells[task, arm, 0], cells[task, lockstep, 0]
        batch_lag = _fmt(_mean_of([x[s] for s in seeds], "mean_batch_lag"), ".2f")
        row = [f"{task} | {arm} − {lockstep} | {len(seeds)} | {batch_lag}"]
        for key, fmt in (("final_success", ".2f"), ("auc", ".3f")):
            xs, ys = [x[s][key] for s in seeds], [y[s][key] for s in seeds]
            row.append(_diff_cells(paired_difference(xs, ys), fmt, arm, lockstep))
        lines.append("| " + " | ".join(row) + " |")
    return lines if len(lines) > 2 else []


def interaction_table(cells: Cells) -> list[str]:
    """The primary metric: per task, arm and PPO-Clip label, ``(arm - ref at the highest lag) - (arm - ref at
    L = 0)`` seed by seed over the seeds in all four cells, on final success and on AUC."""
    lines = [
        "| task | arm vs ref | lags | seeds | interaction, final success [95% CI] | ahead / tied / behind "
        "| interaction, AUC [95% CI] | ahead / tied / behind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in sorted({t for t, _, _ in cells}):
        lags = sorted({g for t, _, g in cells if t == task})
        if 0 not in lags or lags[-1] == 0:
            continue
        high = lags[-1]
        arms = sorted({a for t, a, _ in cells if t == task}, key=_arm_key)
        for ref in filter(_is_reference, arms):
            for arm in (a for a in arms if _compared(a, ref)):
                four = [cells.get((task, a, g), {}) for g in (high, 0) for a in (arm, ref)]
                seeds = sorted(set.intersection(*(set(c) for c in four)))
                if not seeds:
                    continue
                row = [f"{task} | {arm} vs {ref} | L={high} vs L=0 | {len(seeds)}"]
                for key, fmt in (("final_success", ".2f"), ("auc", ".3f")):
                    a_high, b_high, a_low, b_low = ([c[s][key] for s in seeds] for c in four)
                    d = interaction(a_high, b_high, a_low, b_low)
                    verdict = _verdict(d["lo"], d["hi"], "edge grows with lag", "edge shrinks with lag")
                    row.append(f"{_ci(d['mean'], d['lo'], d['hi'], '+' + fmt)} {verdict} "
                               f"| {d['ahead']} / {d['tied']} / {d['behind']}")  # fmt: skip
                lines.append("| " + " | ".join(row) + " |")
    return lines if len(lines) > 2 else []


def _curve(run: dict) -> list[tuple[float, float]]:
    """The run's eval curve, from its BC start's success at 0 env steps where the run recorded it."""
    start = [(0, run["start_success"])] if run.get("start_success") is not None else []
    return [*start, *((x, y) for x, y in run["curve"])]


def _mean_curve(runs: list[dict]) -> tuple[np.ndarray, np.ndarray, int]:
    """Env steps and the mean eval success over the runs whose curve has the first run's env steps."""
    xs = [x for x, _ in _curve(runs[0])]
    ys = [[y for _, y in _curve(r)] for r in runs if [x for x, _ in _curve(r)] == xs]
    return np.array(xs), np.mean(ys, axis=0), len(ys)


def plot_task(cells: Cells, task: str, path: Path) -> Path:
    """Final success and dead fraction vs measured approx-KL (one point per run; colour per arm, marker per
    lag) and the mean eval curves per arm (colour) and lag (line style), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    keys = sorted((c for c in cells if c[0] == task), key=lambda c: (_arm_key(c[1]), c[2]))
    arms = sorted({a for _, a, _ in keys}, key=_arm_key)
    lags = sorted({g for _, _, g in keys})
    colors = {a: plt.cm.tab10.colors[i % 10] for i, a in enumerate(arms)}
    markers = {g: "os^Dvp*XPh"[i % 10] for i, g in enumerate(lags)}
    styles = {g: ("-", "--", ":", "-.")[i % 4] for i, g in enumerate(lags)}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    kls = []
    for _, arm, lag in keys:
        runs = [cells[task, arm, lag][s] for s in sorted(cells[task, arm, lag])]
        style = {"color": colors[arm], "marker": markers[lag], "alpha": 0.75, "edgecolors": "none"}
        for ax, key in zip(axes[:2], ("final_success", "dead_fraction"), strict=True):
            points = [(r["approx_kl"], r[key]) for r in runs if None not in (r.get("approx_kl"), r.get(key))]
            if points:
                ax.scatter(*zip(*points, strict=True), **style)
                kls += [k for k, _ in points]
        if any(r.get("curve") for r in runs):
            xs, ys, n = _mean_curve([r for r in runs if r.get("curve")])
            axes[2].plot(xs, ys, color=colors[arm], linestyle=styles[lag], label=f"{arm} L={lag} (n={n})")
    for ax, ylabel in zip(axes[:2], ("final success", "weights < 1e-3 (dead fraction)"), strict=True):
        ax.set_xlabel("measured approx-KL(μ‖π), mean over updates")
        ax.set_ylabel(ylabel)
        if kls and min(kls) > 0:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide over a narrow range
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(handles=[Line2D([], [], color=colors[a], marker="o", linestyle="", label=a) for a in arms],
                   fontsize=7, title="arm", title_fontsize=7)  # fmt: skip
    axes[1].legend(handles=[Line2D([], [], color="0.3", marker=markers[g], linestyle="", label=f"L={g}")
                            for g in lags], fontsize=7, title="policy lag", title_fontsize=7)  # fmt: skip
    axes[2].set(xlabel="env steps", ylabel="eval success (mean over seeds)", ylim=(-0.02, 1.02))
    axes[2].grid(alpha=0.3)
    if axes[2].lines:
        axes[2].legend(fontsize=6, loc="best")
    fig.suptitle(f"{task}: success and dead samples against the measured staleness")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(runs: list[dict], tune_runs: list[dict], png_prefix: Path = Path("benchmarks/lag")) -> str:
    """The markdown report of the grid ``runs`` and the tuning ``tune_runs`` (tables 1-4 of the module
    docstring); writes ``<png_prefix>_<task>.png`` per task of ``runs`` and says where."""
    lines = []
    tuning = tuning_table(tune_runs)
    if tuning:
        lines += ["Tuning at L = 0 (mean over the tuning seeds):", "", *tuning, ""]
    if not runs:
        return "\n".join([*lines, "No grid runs yet."])
    cells = cells_of(runs)
    lines += ["Per arm and lag (IQM with stratified-bootstrap 95% CIs; staleness as measured):", ""]
    lines += [*cells_table(cells), ""]
    paired = paired_table(cells)
    if paired:
        lines += [f"Each arm minus {REFERENCE}, paired by seed (bootstrap 95% CIs):", "", *paired, ""]
    asynchronous = async_table(cells)
    if asynchronous:
        lines += [
            "Asynchronous collection minus lockstep on-policy collection, paired by seed:",
            "",
            *asynchronous,
            "",
        ]
    primary = interaction_table(cells)
    if primary:
        lines += [
            f"Primary metric, (arm − {REFERENCE} at the highest lag) − (arm − {REFERENCE} at L = 0) per seed "
            "(positive: the arm's edge grows with lag):",
            "",
            *primary,
            "",
        ]
    for task in sorted({r["task"] for r in runs}):
        path = plot_task(cells, task, Path(f"{png_prefix}_{task}.png"))
        lines.append(f"- plot: `{path}`")
    lines.append(f"- runs: {len(runs)}; CPU: {', '.join(sorted({str(r.get('cpu')) for r in runs}))}; "
                 f"commits: {', '.join(sorted({str(r.get('commit'))[:12] for r in runs}))}")  # fmt: skip
    return "\n".join(lines)
