"""Does GIPO learn more from stale replay? Objectives x replay sizes x seeds, from a scarce-data BC policy.

    .venv/bin/python scripts/bench_staleness.py [--tasks Lift Can]
        [--objectives gipo gipo_s0.5 ppo_clip sapo no_clip] [--replay-sizes 1 4 16] [--seeds 0 1 2]
        [--env-steps 300000] [--demos 10] [--final-episodes 50] [--only CELL] [--list]
        [--report [--also JSON ...]] [--policy-lr LR --out JSON --runs DIR]

One *cell* is one fine-tuning run (task, objective variant, replay size, seed). Cells are independent and
resumable: a finished cell is appended to ``benchmarks/staleness.json`` (``{"runs": [{"task", "objective",
"replay_size", "seed", "final_success", "auc", "steps_to_80", "env_steps", "commit", ...}]}``) and skipped
next time (a cell is keyed by its env-step budget too), so the grid can be completed over several sittings
and by several queues at once (appends take a file lock) (``--only Lift:gipo:4:0`` runs one cell,
``--list`` prints the cells still to run). Every cell uses the same env-step budget and the same
update-to-data ratio (the loop's updates per iteration do not depend on the replay size). The BC start
for (task, seed) is trained once from ``--demos`` scripted demos and cached under ``runs/staleness/``.

``--report`` runs nothing: it reads ``staleness.json`` (and the result files given to ``--also``) and
writes the summary tables (markdown, printed) and one PNG per task and budget,
``benchmarks/staleness_<task>_<k>k.png`` (named after ``--out``): mean evaluation success vs env steps per
objective (band: min..max over seeds), one panel per replay size. A run at a policy learning rate other
than the grid's is reported under its own label, ``gipo@lr3e-06``.

Metrics per run: ``final_success`` (the final policy on ``--final-episodes`` held-out episodes, the first
``--eval-episodes`` of which are the run's own last evaluation; ``--final-episodes 0`` keeps that last
evaluation, as the first 30k cells did), ``auc`` (mean evaluation success over the run, trapezoid over env
steps, in [0, 1]) and ``steps_to_80`` (first env-step count whose evaluation reached 80%, or null).
``offpolicy`` says how stale the replayed data really was: means over the run's policy updates of
approx-KL(μ‖π), the normalised effective sample size, the fraction of near-zero weights, PPO's clip
fraction or GIPO's trust weight, and the mean age of the replayed data in policy versions.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import statistics
import time
from dataclasses import asdict
from pathlib import Path

from _common import provenance

from gipo_robot.train.finetune import FinetuneConfig, finetune

POLICY_LR = 1e-5  # every cell in benchmarks/staleness.json ran at this policy learning rate
DEFAULT_OUT = Path("benchmarks/staleness.json")
DEFAULT_RUNS = Path("runs/staleness")

# Objective variants: name -> (objective, params). "gipo" is the paper's σ = 1; the others sweep σ.
VARIANTS: dict[str, tuple[str, dict]] = {
    "gipo": ("gipo", {"sigma": 1.0}),
    "gipo_s0.5": ("gipo", {"sigma": 0.5}),
    "gipo_s2": ("gipo", {"sigma": 2.0}),
    "gipo_1s": ("gipo", {"sigma": 1.0, "one_sided": True}),
    # The authors' trainer adds a KL(μ‖π_θ) penalty of 0.1 to GIPO σ = 1; the library keeps it off by default.
    "gipo_kl": ("gipo", {"sigma": 1.0, "kl_coef": 0.1}),
    "ppo_clip": ("ppo_clip", {"eps": 0.2}),
    "sapo": ("sapo", {}),
    "no_clip": ("no_clip", {}),
    "cispo": ("cispo", {}),
}


def bc_start(task: str, seed: int, demos: int, root: Path) -> Path:
    """Train (once) and return the scarce-data BC policy for (task, seed)."""
    from gipo_robot.policies.bc import BCConfig, train_bc
    from gipo_robot.sim.experts import record_demos

    path = root / f"bc_{task}_{demos}_{seed}"
    if (path / "config.json").exists():
        return path
    store = record_demos(path.with_suffix(".zarr"), task, demos, 0.3, seed=10_000 * seed, overwrite=True)
    train_bc(store, BCConfig(chunk=1, steps=1500, seed=seed), out=path, progress=False)
    return path


def summarise(history: list[dict]) -> dict:
    """final_success, auc, steps_to_80 and the curve from a run's per-iteration records."""
    evals = [(r["env_steps"], r["eval_success"]) for r in history if "eval_success" in r]
    xs, ys = [x for x, _ in evals], [y for _, y in evals]
    auc = 0.0
    for i in range(1, len(xs)):
        auc += (xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) / 2
    auc = auc / (xs[-1] - xs[0]) if len(xs) > 1 else (ys[0] if ys else 0.0)
    reached = [x for x, y in evals if y >= 0.8]
    return {
        "final_success": ys[-1] if ys else None,
        "auc": auc,
        "steps_to_80": reached[0] if reached else None,
        "env_steps": history[-1]["env_steps"] if history else 0,
        "curve": evals,
    }


OFFPOLICY_KEYS = ("approx_kl", "ess", "ratio_max", "frac_weight_below_1e-3", "clip_frac", "trust_weight_mean",
                  "gate_mean", "mean_staleness")  # fmt: skip


def offpolicy(history: list[dict]) -> dict:
    """Means over the iterations that updated the policy of the statistics in :data:`OFFPOLICY_KEYS`."""
    out = {}
    for key in OFFPOLICY_KEYS:
        values = [r[key] for r in history if key in r and "approx_kl" in r]
        if values:
            out[key] = sum(values) / len(values)
    return out


def final_evaluation(run_dir: Path, task: str, episodes: int) -> float:
    """Success of the run's final policy on ``episodes`` held-out seeds (the runs' evaluation seeds)."""
    from gipo_robot.loops.evaluate import EVAL_SEED, evaluate
    from gipo_robot.policies.checkpoint import load_policy
    from gipo_robot.sim import make_env

    env = make_env(task)
    try:
        policy = load_policy(run_dir / "checkpoint")
        result = evaluate(policy, env, episodes, seed=EVAL_SEED, execute_steps=1, progress=False)
    finally:
        env.close()
    return result.success_rate


def label(run: dict) -> str:
    """The run's objective variant, with its policy learning rate when that is not the grid's ``POLICY_LR``
    (``gipo@lr3e-06``), so runs of the learning-rate check never pool with the grid's runs."""
    lr = run.get("config", {}).get("policy_lr", POLICY_LR)
    return run["objective"] if lr == POLICY_LR else f"{run['objective']}@lr{lr:g}"


def _groups(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Runs grouped by (task, env-step budget, labelled objective variant, replay size), seeds in order."""
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        groups.setdefault((r["task"], r["env_steps"], label(r), r["replay_size"]), []).append(r)
    return groups


def _ordered(groups: dict[tuple, list[dict]]) -> list[tuple[tuple, list[dict]]]:
    """Groups in table order: task, budget, largest replay size first, objective."""
    return sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[0][3], kv[0][2]))


def report(runs: list[dict], png_prefix: Path) -> str:
    """Markdown tables (per cell, per group) and the PNG curves ``<png_prefix>_<task>_<k>k.png``; returns
    the markdown."""
    import numpy as np

    groups = _groups(runs)
    lines = [
        "| task | budget | objective | K | seeds | final success mean ± std (episodes) | AUC mean "
        "| reached 80% |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (task, budget, variant, k), rs in _ordered(groups):
        finals = np.array([r["final_success"] for r in rs])
        std = f"{finals.std(ddof=1):.2f}" if len(finals) > 1 else "—"
        reached = sum(r["steps_to_80"] is not None for r in rs)
        episodes = "/".join(sorted({str(r.get("final_episodes", r["config"]["eval_episodes"])) for r in rs}))
        lines.append(
            f"| {task} | {budget // 1000}k | {variant} | {k} | {len(rs)} | {finals.mean():.2f} ± {std} "
            f"({episodes}) | {np.mean([r['auc'] for r in rs]):.3f} | {reached}/{len(rs)} |"
        )
    lines += ["", *retention_table(groups), "", *paired_table(groups)]
    for reference in sorted({v for _, _, v, _ in groups if v.startswith("gipo@")}):  # the lr check's GIPO too
        lines += ["", *paired_table(groups, reference)]
    lines += ["", *variants_table(groups)]
    lines += ["", *offpolicy_table(groups)]
    lines += [
        "",
        "| task | budget | objective | K | seed | eval success along the run | final | AUC | steps to 80% |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, budget, variant, k), rs in _ordered(groups):
        for r in rs:
            curve = " / ".join(f"{y:.2f}" for _, y in r["curve"])
            s80 = r["steps_to_80"] if r["steps_to_80"] is not None else "—"
            lines.append(
                f"| {task} | {budget // 1000}k | {variant} | {k} | {r['seed']} | {curve} "
                f"| {r['final_success']:.2f} | {r['auc']:.3f} | {s80} |"
            )
    for task, budget in sorted({(t, b) for t, b, _, _ in groups}):
        plot_task(groups, task, budget, Path(f"{png_prefix}_{task}_{budget // 1000}k.png"))
    return "\n".join(lines)


def retention_table(groups: dict[tuple, list[dict]]) -> list[str]:
    """Mean final success per replay size for every objective run at K = 1 and a larger K, and how much of
    its K = 1 success it keeps at the largest K (the issue's "≥ 85% of its size-1 success")."""
    sizes = sorted({k for *_, k in groups})
    lines = [
        "| task | budget | objective | " + " | ".join(f"K={k}" for k in sizes) + " | largest K / K=1 |",
        "|---|---|---|" + "---|" * len(sizes) + "---|",
    ]
    for task, budget, variant in sorted({(t, b, v) for t, b, v, _ in groups}):
        row = {k: rs for (t, b, v, k), rs in groups.items() if (t, b, v) == (task, budget, variant)}
        means = {k: sum(r["final_success"] for r in rs) / len(rs) for k, rs in row.items()}
        if 1 not in means or len(means) < 2:
            continue
        most = max(len(rs) for rs in row.values())  # a group with fewer seeds says how many it has
        cells = " | ".join(
            f"{means[k]:.2f}" + (f" (n={len(row[k])})" if len(row[k]) < most else "") if k in row else "—"
            for k in sizes
        )
        kept = means[max(means)] / means[1] if means[1] else float("nan")
        lines.append(f"| {task} | {budget // 1000}k | {variant} | {cells} | {kept:.0%} (K={max(means)}) |")
    return lines if len(lines) > 2 else []


def _paired(ref_runs: list[dict], runs: list[dict]) -> str | None:
    """``Δ mean ± s.e. (per seed) | ahead / tied / behind`` cells for ref minus runs on their shared seeds."""
    ref = {r["seed"]: r["final_success"] for r in ref_runs}
    deltas = [ref[r["seed"]] - r["final_success"] for r in runs if r["seed"] in ref]
    if not deltas:
        return None
    n, mean = len(deltas), statistics.mean(deltas)
    se = f" ± {statistics.stdev(deltas) / math.sqrt(n):.2f}" if n > 1 else ""
    per_seed = " / ".join(f"{d:+.2f}" for d in deltas)
    ahead, behind = sum(d > 1e-9 for d in deltas), sum(d < -1e-9 for d in deltas)
    return f"{n} | {mean:+.2f}{se} ({per_seed}) | {ahead} / {n - ahead - behind} / {behind}"


def paired_table(groups: dict[tuple, list[dict]], reference: str = "gipo") -> list[str]:
    """``reference`` minus each other objective, seed by seed (seed s of every objective starts from the same
    BC policy and the same env seeds, so per-seed differences are less noisy than the difference of means),
    with the standard error of their mean (sample std / √n) to read the mean against."""
    lines = [
        f"| task | budget | K | {reference} vs | seeds | Δ final success, mean ± s.e. (per seed) "
        f"| {reference} ahead / tied / behind |",
        "|---|---|---|---|---|---|---|",
    ]
    for (task, budget, variant, k), rs in _ordered(groups):
        if variant == reference:
            continue
        cells = _paired(groups.get((task, budget, reference, k), []), rs)
        if cells:
            lines.append(f"| {task} | {budget // 1000}k | {k} | {variant} | {cells} |")
    return lines if len(lines) > 2 else []


BASELINES = ("ppo_clip", "no_clip", "sapo")


def variants_table(groups: dict[tuple, list[dict]]) -> list[str]:
    """The σ sweep and the other GIPO variants (``gipo_s0.5``, ``gipo_kl``, ...) minus each baseline, seed
    by seed, like :func:`paired_table` for σ = 1 (baselines at other learning rates included)."""
    lines = [
        "| task | budget | K | GIPO variant | vs | seeds | Δ final success, mean ± s.e. (per seed) "
        "| variant ahead / tied / behind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ordered = _ordered(groups)
    for (task, budget, variant, k), ref_runs in ordered:
        if not variant.startswith("gipo_"):
            continue
        for (t, b, other, kk), rs in ordered:
            if (t, b, kk) == (task, budget, k) and other.split("@")[0] in BASELINES:
                cells = _paired(ref_runs, rs)
                if cells:
                    lines.append(f"| {task} | {budget // 1000}k | {k} | {variant} | {other} | {cells} |")
    return lines if len(lines) > 2 else []


def _mean(runs: list[dict], key: str, fmt: str = ".3f") -> str:
    values = [r["offpolicy"][key] for r in runs if key in r["offpolicy"]]
    return format(sum(values) / len(values), fmt) if values else "—"


def offpolicy_table(groups: dict[tuple, list[dict]]) -> list[str]:
    """How stale the replayed data was, per group of runs that logged it (means over seeds and updates)."""
    lines = [
        "| task | budget | objective | K | seeds | data age (versions) | approx-KL | ESS | ρ max | clip frac "
        "| trust weight | weights < 1e-3 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, budget, variant, k), rs in _ordered(groups):
        rs = [r for r in rs if r.get("offpolicy")]
        if not rs:
            continue
        lines.append(
            f"| {task} | {budget // 1000}k | {variant} | {k} | {len(rs)} "
            f"| {_mean(rs, 'mean_staleness', '.1f')} | {_mean(rs, 'approx_kl')} "
            f"| {_mean(rs, 'ess', '.2f')} | {_mean(rs, 'ratio_max', '.1f')} "
            f"| {_mean(rs, 'clip_frac')} | {_mean(rs, 'trust_weight_mean')} "
            f"| {_mean(rs, 'frac_weight_below_1e-3', '.4f')} |"
        )
    return lines if len(lines) > 2 else []


def plot_panels(variants_at: dict[int, set[str]]) -> list[tuple[int, list[str]]]:
    """Panels of the curve plot: one per replay size with the grid's learning rate, then one per replay size
    that has learning-rate variants, which shows them beside the grid-lr runs of the same objectives."""
    sizes = sorted(variants_at)
    panels = [(k, sorted(v for v in variants_at[k] if "@" not in v)) for k in sizes]
    for k in sizes:
        other = sorted(v for v in variants_at[k] if "@" in v)
        if other:
            bases = sorted({v.split("@")[0] for v in other} & variants_at[k])
            panels.append((k, bases + other))
    return [(k, vs) for k, vs in panels if vs]


def plot_task(groups: dict[tuple, list[dict]], task: str, budget: int, path: Path) -> Path:
    """Mean evaluation success vs env steps, one panel per replay size (and one per replay size for the
    learning-rate check), one line per objective: colour by objective, dashed at another learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    variants_at: dict[int, set[str]] = {}
    for t, b, v, k in groups:
        if (t, b) == (task, budget):
            variants_at.setdefault(k, set()).add(v)
    panels = plot_panels(variants_at)
    objectives = sorted({v.split("@")[0] for vs in variants_at.values() for v in vs})
    colors = dict(zip(objectives, plt.cm.tab10.colors, strict=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True, squeeze=False)
    for ax, (k, variants) in zip(axes[0], panels, strict=True):
        lr_check = any("@" in v for v in variants)
        for v in variants:
            rs = groups[(task, budget, v, k)]
            xs = np.array([x for x, _ in rs[0]["curve"]])
            ys = np.array([[y for _, y in r["curve"]] for r in rs if len(r["curve"]) == len(xs)])
            color, style = colors[v.split("@")[0]], "--" if "@" in v else "-"
            ax.plot(xs, ys.mean(0), color=color, linestyle=style, label=f"{v} (n={len(ys)})")
            if "@" in v or not lr_check:  # the grid-lr groups' bands are in their own panel already
                ax.fill_between(xs, ys.min(0), ys.max(0), color=color, alpha=0.12)
        ax.set_title(f"{task}, replay size K={k}" + (", learning rates" if lr_check else ""))
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("eval success (mean over seeds; band min..max)")
    axes[0][0].set_ylim(0, 1.02)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["Lift", "Can"])
    parser.add_argument(
        "--objectives", nargs="+", default=["gipo", "gipo_s0.5", "ppo_clip", "sapo", "no_clip"]
    )
    parser.add_argument("--replay-sizes", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=300_000)
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument(
        "--policy-lr", type=float, default=POLICY_LR,
        help=f"policy learning rate (default {POLICY_LR}); another value needs its own --out and --runs",
    )  # fmt: skip
    parser.add_argument(
        "--final-episodes", type=int, default=50,
        help="held-out episodes for final_success (0: the run's last evaluation, as the first 30k cells)",
    )  # fmt: skip
    parser.add_argument("--only", help="one cell, TASK:OBJECTIVE:REPLAY:SEED")
    parser.add_argument("--list", action="store_true", help="print the cells still to run and exit")
    parser.add_argument("--report", action="store_true", help="tables + PNGs from --out; runs nothing")
    parser.add_argument(
        "--also", nargs="+", type=Path, default=[], metavar="JSON",
        help="with --report: more result files to report beside --out's (e.g. the learning-rate check's)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    args = parser.parse_args()

    in_default_files = args.out == DEFAULT_OUT or args.runs == DEFAULT_RUNS
    if args.policy_lr != POLICY_LR and not args.report and in_default_files:
        # A cell is keyed by (task, objective, K, seed, budget), not by its learning rate: in the default
        # files a run at another lr would be skipped as done, or resume a default-lr run directory.
        raise SystemExit(
            f"--policy-lr {args.policy_lr} differs from the grid's {POLICY_LR}: give it its own --out and "
            f"--runs (not {DEFAULT_OUT}, {DEFAULT_RUNS}), e.g. "
            f"--out benchmarks/staleness_lr{args.policy_lr:g}.json --runs runs/staleness_lr{args.policy_lr:g}"
        )
    runs = read_runs(args.out, missing_ok=True)
    if args.report:
        for extra in args.also:
            runs += read_runs(extra)
        print(report(runs, args.out.with_suffix("")))
        return
    done = {(r["task"], r["objective"], r["replay_size"], r["seed"], r["env_steps"]) for r in runs}
    cells = [
        (t, o, k, s)
        for t in args.tasks
        for o in args.objectives
        for k in args.replay_sizes
        for s in args.seeds
    ]
    if args.only:
        t, o, k, s = args.only.split(":")
        cells = [(t, o, int(k), int(s))]
    todo = [c for c in cells if (*c, args.env_steps) not in done]
    if args.list:
        for c in todo:
            print(":".join(map(str, c)))
        return
    for task, variant, replay, seed in todo:
        if variant not in VARIANTS:
            raise SystemExit(f"unknown objective variant {variant!r}; known: {', '.join(VARIANTS)}")
        objective, params = VARIANTS[variant]
        start = time.perf_counter()
        base = bc_start(task, seed, args.demos, args.runs)
        config = FinetuneConfig(
            task=task, objective=objective, objective_params=params, replay_size=replay,
            env_steps=args.env_steps, steps_per_env=1000, epochs=2, policy_lr=args.policy_lr,
            init_log_std=-2.5, eval_every=args.eval_every, eval_episodes=args.eval_episodes, seed=seed,
        )  # fmt: skip
        run_dir = args.runs / f"{task}_{variant}_K{replay}_s{seed}_{args.env_steps // 1000}k"
        # a kill between the checkpoint's last two renames leaves only checkpoint.prev: still resumable
        resume = any((run_dir / name).exists() for name in ("checkpoint", "checkpoint.prev"))
        history = finetune(config, base, run_dir, resume=resume)
        record = {"task": task, "objective": variant, "replay_size": replay, "seed": seed}
        record.update(summarise(history))
        if args.final_episodes:
            record["final_success"] = final_evaluation(run_dir, task, args.final_episodes)
        record.update(final_episodes=args.final_episodes or args.eval_episodes, offpolicy=offpolicy(history))
        record.update(config=asdict(config), wall_s=time.perf_counter() - start, **provenance())
        append_run(args.out, record)


def read_runs(path: Path, missing_ok: bool = False) -> list[dict]:
    """A result file's ``runs`` (none if it does not exist yet and ``missing_ok``), or a clear error."""
    if missing_ok and not path.exists():
        return []
    try:
        return json.loads(path.read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{path}: not a result file with a 'runs' list ({e!r})") from e


def append_run(out: Path, record: dict) -> None:
    """Append one finished cell to ``out``; a lock and a fresh read let several queues share the file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = [*read_runs(out, missing_ok=True), record]
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"runs": runs}, indent=1, default=str))
        tmp.replace(out)


if __name__ == "__main__":
    main()
