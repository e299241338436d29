"""Where do scarce-data BC policies start? Success of BC on 10/20/50 scripted demos (noise 0.3), Lift and Can.

    .venv/bin/python scripts/bench_bc.py [--tasks Lift Can] [--demos 10 20 50] [--seeds 0 1 2]
        [--episodes 50] [--chunk 1] [--only TASK:DEMOS:SEED]

Resumable: every finished cell (task, demos, seed) is stored in ``benchmarks/bc.json`` with its config,
commit and wall time, and is skipped on the next invocation; ``--only`` runs one cell. Each cell collects
its demos with the seed (so seeds differ in demonstrations and in BC initialisation), trains BC, and
evaluates on ``--episodes`` held-out seeds executing one action per decision (as fine-tuning does). The
file also records the policy's inference latency for one observation (batch 1) on this CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import provenance

from gipo_robot.loops.evaluate import evaluate
from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim import make_env
from gipo_robot.sim.experts import record_demos


def run_cell(task: str, demos: int, seed: int, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    env = make_env(task)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = record_demos(
                Path(tmp) / "demos.zarr", task, demos, args.noise, seed=10_000 * seed, env=env
            )
            result = train_bc(
                store, BCConfig(chunk=args.chunk, steps=args.bc_steps, seed=seed), progress=False
            )
        ev = evaluate(result.policy, env, args.episodes, execute_steps=1, progress=False)
        latency = inference_latency(result.policy)
    finally:
        env.close()
    return {
        "task": task,
        "demos": demos,
        "seed": seed,
        "success_rate": ev.success_rate,
        "success_ci95": list(ev.success_ci95),
        "mean_length": ev.mean_length,
        "best_step": result.best_step,
        "inference_ms_batch1": latency,
        "config": {
            "noise": args.noise,
            "chunk": args.chunk,
            "bc_steps": args.bc_steps,
            "episodes": args.episodes,
        },
        "wall_s": time.perf_counter() - start,
        **provenance(),
    }


@torch.no_grad()
def inference_latency(policy, repeats: int = 200) -> float:
    """Median milliseconds for ``mode`` on one observation."""
    obs = {k: torch.zeros(1, *shape) for k, shape in policy.config.low_dim.items()}
    for _ in range(10):
        policy.mode(obs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        policy.mode(obs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["Lift", "Can"])
    parser.add_argument("--demos", nargs="+", type=int, default=[10, 20, 50])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--chunk", type=int, default=1)
    parser.add_argument("--bc-steps", type=int, default=1500)
    parser.add_argument("--only", help="run one cell, TASK:DEMOS:SEED")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/bc.json"))
    args = parser.parse_args()

    results = json.loads(args.out.read_text()) if args.out.exists() else {"cells": []}
    done = {(c["task"], c["demos"], c["seed"]) for c in results["cells"]}
    cells = [(t, d, s) for t in args.tasks for d in args.demos for s in args.seeds]
    if args.only:
        task, demos, seed = args.only.split(":")
        cells = [(task, int(demos), int(seed))]
    for cell in cells:
        if cell in done:
            continue
        print(f"cell {cell} ...", flush=True)
        results["cells"].append(run_cell(*cell, args))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))  # after every cell: resumable
    print("| task | demos | success (mean ± std over seeds) | seeds |")
    print("|---|---|---|---|")
    for task in args.tasks:
        for demos in args.demos:
            rates = [c["success_rate"] for c in results["cells"] if c["task"] == task and c["demos"] == demos]
            if rates:
                std = statistics.stdev(rates) if len(rates) > 1 else 0.0
                print(f"| {task} | {demos} | {statistics.mean(rates):.2f} ± {std:.2f} | {len(rates)} |")


if __name__ == "__main__":
    main()
