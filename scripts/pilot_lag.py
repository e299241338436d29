"""Pilot of the controlled-lag benchmark (issue 25 item 2): which heavy-reuse setting makes lag matter?

    .venv/bin/python scripts/pilot_lag.py [--settings A B] [--objectives gipo ppo_clip] [--lags 0 16]
        [--seeds 0] [--env-steps 10000] [--only CELL] [--list] [--report]

The staleness grid (``bench_staleness.py``) never reached the regime GIPO is about: the policy moved so little
per iteration that at K = 16 PPO-Clip zeroed 6% of its samples and GIPO's mean trust weight stayed at 0.98.
This pilot moves the policy much further per env step (few env steps per iteration, many gradient steps per
env step, a higher learning rate) and makes the staleness a controlled variable: every batch is collected by
the policy of L versions ago (``FinetuneConfig.policy_lag``) and the learner trains on that batch alone
(``replay_size=1``), so the data quantity is the same at every L. The question per setting: at the high
lag, does PPO-Clip zero >= 30% of its samples and is GIPO's mean trust weight <= 0.7 (the issue's bar for a
setting worth a grid), and does the L = 0 run still learn?

One *cell* is one run (setting, objective, lag, seed), appended to ``benchmarks/lag_pilot.json`` when done and
skipped next time. Cells share the BC start of ``bench_staleness.py`` (10 scripted Lift demos, cached under
``runs/staleness/``). ``--report`` prints the table: per cell the final success (``--final-episodes``
held-out episodes), the means over the run's policy updates of PPO's clip fraction (samples whose gradient
the clip zeroes), GIPO's trust weight, the fraction of near-zero weights, approx-KL(μ‖π) and the normalised
effective sample size, and the measured mean batch lag.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from _common import provenance
from bench_staleness import VARIANTS, append_run, bc_start, final_evaluation, offpolicy, read_runs, summarise

from gipo_robot.train.finetune import FinetuneConfig, finetune

OUT = Path("benchmarks/lag_pilot.json")
RUNS = Path("runs/lag_pilot")
BC_RUNS = Path("runs/staleness")  # the staleness grid's BC starts

#: Heavy-reuse settings: 2 envs x steps_per_env env steps per iteration, ``epochs`` passes' worth of
#: minibatch steps over them (the update-to-data ratio), policy learning rate.
SETTINGS = {
    "A": {"steps_per_env": 100, "epochs": 8, "policy_lr": 1e-4},
    "B": {"steps_per_env": 100, "epochs": 32, "policy_lr": 3e-4},
    "C": {"steps_per_env": 250, "epochs": 8, "policy_lr": 3e-5},
    # A at lower learning rates: A's lr 1e-4 collapses GIPO even on fresh data (BENCHMARKS.md lag_pilot)
    "A3": {"steps_per_env": 100, "epochs": 8, "policy_lr": 3e-5},
    "A1": {"steps_per_env": 100, "epochs": 8, "policy_lr": 1e-5},
}


def run_cell(setting: str, variant: str, lag: int, seed: int, args: argparse.Namespace) -> dict:
    objective, params = VARIANTS[variant]
    start = time.perf_counter()
    base = bc_start("Lift", seed, 10, BC_RUNS)
    config = FinetuneConfig(
        task="Lift", objective=objective, objective_params=params, replay_size=1, policy_lag=lag,
        env_steps=args.env_steps, num_envs=2, minibatch_size=256, init_log_std=-2.5,
        eval_every=10_000, eval_episodes=args.eval_episodes, seed=seed, **SETTINGS[setting],
    )  # fmt: skip
    run_dir = RUNS / f"{setting}_{variant}_L{lag}_s{seed}_{args.env_steps // 1000}k"
    resume = any((run_dir / name).exists() for name in ("checkpoint", "checkpoint.prev"))
    history = finetune(config, base, run_dir, resume=resume)
    record = {"setting": setting, "objective": variant, "lag": lag, "seed": seed, **summarise(history)}
    record["final_success"] = final_evaluation(run_dir, "Lift", args.final_episodes)
    lags = [r.get("batch_lag", 0) for r in history]  # logged where policy_lag > 0
    record.update(final_episodes=args.final_episodes, offpolicy=offpolicy(history),
                  mean_batch_lag=sum(lags) / len(lags), config=asdict(config),
                  wall_s=time.perf_counter() - start, **provenance())  # fmt: skip
    return record


def report(runs: list[dict]) -> str:
    rows = [
        "| setting | objective | L | seed | final success | PPO clip frac | GIPO trust w | w < 1e-3 | "
        "approx-KL | ESS | mean lag | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["setting"], r["objective"], r["lag"], r["seed"])):
        off = r["offpolicy"]

        def cell(key: str, fmt: str = ".3f", off=off) -> str:
            return format(off[key], fmt) if key in off else "-"

        rows.append(
            f"| {r['setting']} | {r['objective']} | {r['lag']} | {r['seed']} | {r['final_success']:.2f} | "
            f"{cell('clip_frac')} | {cell('trust_weight_mean')} | {cell('frac_weight_below_1e-3')} | "
            f"{cell('approx_kl', '.4f')} | {cell('ess')} | {r['mean_batch_lag']:.1f} | {r['wall_s']:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--objectives", nargs="+", default=["gipo", "ppo_clip"])
    parser.add_argument("--lags", nargs="+", type=int, default=[0, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--env-steps", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--final-episodes", type=int, default=50)
    parser.add_argument("--only", help="one cell, SETTING:OBJECTIVE:LAG:SEED")
    parser.add_argument("--list", action="store_true", help="print the cells still to run and exit")
    parser.add_argument("--report", action="store_true", help="print the table from the results; run nothing")
    args = parser.parse_args()
    runs = read_runs(OUT, missing_ok=True)
    if args.report:
        print(report(runs))
        return
    done = {(r["setting"], r["objective"], r["lag"], r["seed"], r["config"]["env_steps"]) for r in runs}
    cells = [(s, o, lag, seed) for s in args.settings for o in args.objectives for lag in args.lags
             for seed in args.seeds]  # fmt: skip
    if args.only:
        s, o, lag, seed = args.only.split(":")
        cells = [(s, o, int(lag), int(seed))]
    todo = [c for c in cells if (*c, args.env_steps) not in done]
    if args.list:
        print("\n".join(":".join(map(str, c)) for c in todo))
        return
    for cell in todo:
        append_run(OUT, run_cell(*cell, args))


if __name__ == "__main__":
    main()
