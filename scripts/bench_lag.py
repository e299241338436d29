"""Controlled policy lag in the heavy-reuse regime (issue 25): is GIPO's edge over PPO-Clip larger on stale
data?

    .venv/bin/python scripts/bench_lag.py tune [--tasks Lift] [--arms gipo ppo_clip] [--lrs 1e-5 3e-5 1e-4]
        [--seeds 100 101 102]
    .venv/bin/python scripts/bench_lag.py grid [--tasks Lift] [--arms gipo ppo_clip] [--lags 0 16]
        [--seeds 0 1 2 3 4 5 6 7] [--only TASK:ARM:LAG:SEED] [--list]
    .venv/bin/python scripts/bench_lag.py report
    (each with ``--regime episodes10``: the quickstart-scale regime, its own files, and the only one with
    ``--tasks Can``; see ``REGIMES``)

The regime (``SETTINGS``): few env steps per iteration (2 envs x 200 steps on Lift, so whole episodes fit in
an iteration), many gradient steps per env step (``epochs`` = the update-to-data ratio), and a controlled lag:
every batch is collected by the policy of L versions ago (``FinetuneConfig.policy_lag``) and the learner
trains on that batch alone (``replay_size=1``), so the data quantity is the same at every L (L = 0 is
on-policy). The ``*_async`` arms (``--lags 0`` only) collect asynchronously instead (``ASYNC``), so each batch
has the asynchronous path's natural lag, logged and reported like the controlled one.

``tune`` runs every arm at L = 0 over ``--lrs`` on tuning seeds of their own (100, 101, 102: their BC starts
and env seeds are not the grid's), into ``benchmarks/lag_tune.json``. ``grid`` then runs each arm at the
policy learning rate that was best for it on fresh data (mean final success over the tuning seeds, then AUC;
or ``--lr`` for all) at every lag, into ``benchmarks/lag.json``. One *cell* is one run, appended when it
finishes and skipped next time, so a grid completes over several sittings (appends take a file lock).

Seed s of every arm and lag starts from the same BC policy and the same env seeds, so cells pair by seed. The
BC starts (10 noisy scripted Lift demos, 1500 BC steps; ``bench_staleness.bc_start``) are shipped in
``benchmarks/lag_starts/`` (safetensors + JSON, ~330 KB each) so that cells pair across machines; a missing
one is trained and saved there.

Per run (``runs`` of the JSON): ``final_success`` on ``--final-episodes`` held-out episodes (the evaluation
seeds, played on 2 worker processes) and ``start_success``, the BC start's on the same episodes, ``auc``
(mean evaluation success along the run, trapezoid over env steps), and the staleness the learner actually
saw, as means over its policy updates: ``approx_kl`` (KL(μ‖π) estimate), ``ess`` (normalised effective
sample size), ``dead_fraction`` (samples whose weight is below 1e-3: PPO-Clip's clipped samples, whose
gradient is exactly zero), ``mean_trust_weight`` (GIPO's Gaussian weight; null for the others); plus the
CPU, library versions and commit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from dataclasses import asdict
from pathlib import Path

from _common import provenance
from bench_staleness import append_run, bc_start, offpolicy, read_runs, summarise

from gipo_robot.train.finetune import FinetuneConfig, finetune

OUT = Path("benchmarks/lag.json")
TUNE_OUT = Path("benchmarks/lag_tune.json")
STARTS = Path("benchmarks/lag_starts")
RUNS = Path("runs/lag")

#: arm -> (objective, objective parameters, ratio level). ``gipo_dim`` is the authors' per-action-dimension
#: ratio (their code weights each action token); ``gipo`` takes the ratio of the whole step's action.
ARMS: dict[str, tuple[str, dict, str]] = {
    "gipo": ("gipo", {"sigma": 1.0}, "step"),
    "gipo_dim": ("gipo", {"sigma": 1.0}, "dim"),
    # narrower trust regions: at one lr, σ = 1 moved the policy 3x further per iteration than PPO-Clip's
    # ε = 0.2 on fresh Lift data (BENCHMARKS.md lag); σ is the paper's knob for that (tune it with the lr)
    "gipo_s0.5": ("gipo", {"sigma": 0.5}, "step"),
    "gipo_s0.3": ("gipo", {"sigma": 0.3}, "step"),
    "gipo_s0.2": ("gipo", {"sigma": 0.2}, "step"),
    "ppo_clip": ("ppo_clip", {"eps": 0.2}, "step"),
    "no_clip": ("no_clip", {}, "step"),
    "sapo": ("sapo", {}, "step"),
    # the asynchronous path's natural lag instead of a controlled one (run them at L = 0; see ASYNC)
    "gipo_async": ("gipo", {"sigma": 1.0}, "step"),
    "ppo_clip_async": ("ppo_clip", {"eps": 0.2}, "step"),
}
#: Arms that collect asynchronously (``FinetuneConfig.async_collection``, Ray on loopback): 2 workers keep
#: collecting with the weights they have while the learner updates, so each batch is as old as the updates
#: made while it was collected (typically ``workers - 1`` versions; logged as ``batch_lag``). Each worker
#: steps 2 envs, so a batch (one worker's) holds the lockstep arms' 2 x ``steps_per_env`` env steps.
ASYNC = {"workers": 2, "num_envs": 4, "backend": "ray", "async_collection": True, "max_lag": 8}

#: The heavy-reuse regime per task: env steps per env per iteration, epochs (update-to-data ratio), budget,
#: evaluation every ``eval_every`` iterations on ``eval_episodes`` held-out episodes.
SETTINGS = {
    "Lift": {"steps_per_env": 200, "epochs": 8, "env_steps": 10_000, "eval_every": 5, "eval_episodes": 10},
}
#: ``--regime``: the settings per task, and where the regime's cells, tuning and runs go. ``reuse`` is the
#: heavy-reuse grid above (two episodes per iteration); ``episodes10`` is the quickstart's scale, where
#: fine-tuning lifts the BC start (2 x 1000 steps per iteration, ten episodes; 30k env steps), with the
#: update-to-data ratio still raised (4 epochs) and the lag grid's replay of one batch.
REGIMES: dict[str, dict[str, dict]] = {
    "reuse": SETTINGS,
    "episodes10": {
        "Lift": {
            "steps_per_env": 1000,
            "epochs": 4,
            "env_steps": 30_000,
            "eval_every": 3,
            "eval_episodes": 10,
        },
        # Can needs more env steps to move (BENCHMARKS.md staleness: 100k, evaluation every 10k steps)
        "Can": {
            "steps_per_env": 1000,
            "epochs": 4,
            "env_steps": 100_000,
            "eval_every": 5,
            "eval_episodes": 10,
        },
    },
}


def regime_paths(regime: str) -> tuple[Path, Path, Path]:
    """(grid results, tuning results, run directory root) of a regime; ``reuse`` keeps the first files."""
    if regime == "reuse":
        return OUT, TUNE_OUT, RUNS
    return Path(f"benchmarks/lag_{regime}.json"), Path(f"benchmarks/lag_tune_{regime}.json"), RUNS / regime


TUNE_SEEDS = (100, 101, 102)


def start(task: str, seed: int) -> Path:
    """The shipped BC start for (task, seed); trained (``bench_staleness.bc_start``) and saved if missing."""
    shipped = STARTS / f"bc_{task}_10_{seed}"
    if not (shipped / "model.safetensors").exists():
        trained = bc_start(task, seed, 10, Path("runs/staleness"))
        shipped.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(trained / name, shipped / name)
    return shipped


def success(policy_dir: Path, task: str, episodes: int) -> float:
    """Success of the policy at ``policy_dir`` on the first ``episodes`` evaluation seeds, on 2 worker
    processes (the same per-seed results as one env: ``EvalPool``)."""
    from gipo_robot.loops.eval_pool import EvalPool
    from gipo_robot.policies.checkpoint import load_policy
    from gipo_robot.sim import EnvConfig

    with EvalPool.start(EnvConfig(task=task), 2) as pool:  # make_env(task)'s config, built only in workers
        return pool.evaluate(load_policy(policy_dir), episodes, execute_steps=1).success_rate


def start_success(task: str, seed: int, episodes: int) -> float:
    """The BC start's own success on the grid's evaluation episodes (the "before"), measured once per start
    and kept beside it in ``success.json``."""
    policy_dir = start(task, seed)
    path = policy_dir / "success.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    if str(episodes) not in known:
        known[str(episodes)] = success(policy_dir, task, episodes)
        path.write_text(json.dumps(known, indent=1))
    return known[str(episodes)]


def run_cell(
    task: str, arm: str, lag: int, seed: int, lr: float, final_episodes: int, regime: str = "reuse"
) -> dict:
    objective, params, ratio_level = ARMS[arm]
    collection = ASYNC if arm.endswith("_async") else {"num_envs": 2}
    began = time.perf_counter()
    base = start(task, seed)
    config = FinetuneConfig(
        task=task, objective=objective, objective_params=params, ratio_level=ratio_level, replay_size=1,
        policy_lag=lag, minibatch_size=256, init_log_std=-2.5, policy_lr=lr, seed=seed,
        **collection, **REGIMES[regime][task],
    )  # fmt: skip
    run_dir = regime_paths(regime)[2] / f"{task}_{arm}_L{lag}_lr{lr:g}_s{seed}"
    resume = any((run_dir / name).exists() for name in ("checkpoint", "checkpoint.prev"))
    history = finetune(config, base, run_dir, resume=resume)
    summary, off = summarise(history), offpolicy(history)
    lags = [r.get("batch_lag", 0) for r in history]
    where = provenance()
    return {
        "task": task, "regime": regime, "objective": arm, "ratio_level": ratio_level, "lag": lag,
        "collection": "async" if config.async_collection else "lockstep",
        "utd": config.epochs,
        "seed": seed, "policy_lr": lr, "final_success": success(run_dir / "checkpoint", task, final_episodes),
        "final_episodes": final_episodes, "start_success": start_success(task, seed, final_episodes),
        "auc": summary["auc"], "curve": summary["curve"],
        "dead_fraction": off.get("frac_weight_below_1e-3"), "mean_trust_weight": off.get("trust_weight_mean"),
        "approx_kl": off.get("approx_kl"), "ess": off.get("ess"), "clip_frac": off.get("clip_frac"),
        "mean_batch_lag": sum(lags) / len(lags), "env_steps": summary["env_steps"], "config": asdict(config),
        "wall_s": time.perf_counter() - began, "cpu": where["machine"]["cpu"], **where,
    }  # fmt: skip


def tuned_lr(tune_runs: list[dict], task: str, arm: str, where: Path = TUNE_OUT) -> float:
    """The policy lr whose L = 0 tuning runs of ``arm`` had the best mean final success (then mean AUC)."""
    by_lr: dict[float, list[dict]] = {}
    for r in tune_runs:
        if (r["task"], r["objective"], r["lag"]) == (task, arm, 0):
            by_lr.setdefault(r["policy_lr"], []).append(r)
    if not by_lr:
        raise SystemExit(f"{where}: no tuning run of {task}:{arm} at L = 0: run `bench_lag.py tune` first")
    score = {
        lr: (statistics.mean(r["final_success"] for r in rs), statistics.mean(r["auc"] for r in rs))
        for lr, rs in by_lr.items()
    }
    return max(score, key=score.__getitem__)


def key(r: dict) -> tuple:
    return (r["task"], r["objective"], r["lag"], r["seed"], r["policy_lr"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["tune", "grid", "report"])
    parser.add_argument("--regime", default="reuse", choices=list(REGIMES), help="the settings (REGIMES)")
    tasks = sorted({task for settings in REGIMES.values() for task in settings})
    parser.add_argument("--tasks", nargs="+", default=["Lift"], choices=tasks)
    parser.add_argument("--arms", nargs="+", default=["gipo", "ppo_clip"], choices=list(ARMS))
    parser.add_argument("--lags", nargs="+", type=int, default=[0, 16])
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-5, 3e-5, 1e-4])
    parser.add_argument("--lr", type=float, help="grid: this policy lr for every arm, not the tuned")
    parser.add_argument("--final-episodes", type=int)
    parser.add_argument("--only", help="one grid cell, TASK:ARM:LAG:SEED")
    parser.add_argument("--list", action="store_true", help="print the cells still to run and exit")
    args = parser.parse_args()
    grid_out, tune_out, _ = regime_paths(args.regime)
    missing = [t for t in args.tasks if t not in REGIMES[args.regime]]
    if missing:
        parser.error(f"regime {args.regime!r} has no settings for {missing}")
    if args.command == "report":
        from lag_report import report

        prefix = grid_out.with_suffix("")  # the PNGs sit beside the regime's results: <results>_<task>.png
        print(report(read_runs(grid_out, missing_ok=True), read_runs(tune_out, missing_ok=True), prefix))
        return
    if args.command == "tune":
        out, seeds, final = tune_out, args.seeds or list(TUNE_SEEDS), args.final_episodes or 50
        cells = [(t, a, 0, s, lr) for s in seeds for t in args.tasks for a in args.arms for lr in args.lrs]
    else:
        out, seeds, final = grid_out, args.seeds or list(range(8)), args.final_episodes or 100
        tune = read_runs(tune_out, missing_ok=True)
        # an asynchronous arm takes the lr tuned for its objective's lockstep arm
        lr = {(t, a): args.lr or tuned_lr(tune, t, a.removesuffix("_async"), tune_out)
              for t in args.tasks for a in args.arms}  # fmt: skip
        cells = [(t, a, g, s, lr[t, a]) for s in seeds for t in args.tasks for g in args.lags
                 for a in args.arms]  # fmt: skip
        if args.only:
            t, a, lag, s = args.only.split(":")
            cells = [
                (t, a, int(lag), int(s), args.lr or tuned_lr(tune, t, a.removesuffix("_async"), tune_out))
            ]
        lagged_async = sorted({f"{a} at L = {g}" for _, a, g, _, _ in cells if a.endswith("_async") and g})
        if lagged_async:
            parser.error(f"{lagged_async}: an asynchronous arm has its natural lag; run it at --lags 0")
    done = {key(r) for r in read_runs(out, missing_ok=True)}
    todo = [c for c in cells if c not in done]
    if args.list:
        print("\n".join(":".join(map(str, c)) for c in todo))
        return
    for cell in todo:
        append_run(out, run_cell(*cell, final, args.regime))


if __name__ == "__main__":
    main()
