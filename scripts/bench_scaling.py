"""Rollout throughput with 1, 2, 4 workers, subprocess vs Ray backend (benchmarks/scaling.json).

Both backends step Lift (Panda, 200-step episodes, resets included) in lockstep, one env per worker, with
random actions drawn in the parent (the policy's stand-in); configurations are timed round-robin over
``--repeats`` rounds and medians reported. Alongside, the per-worker and per-update costs the 64-worker
estimate in BENCHMARKS.md is built from:

- ``env_step_s``: one env step in one worker (1 / the 1-worker subprocess rate);
- ``ray_call_overhead_s``: extra time per lockstep step of the 1-worker Ray backend over the 1-worker
  subprocess backend (task submission, object transfer, ``ray.get``);
- ``policy_step_s``: one batched ``sample`` + ``log_prob_per_dim`` of the default policy architecture
  (BC defaults: MLP 256-256, chunk 4) at batch 1 and 64: what the parent (lockstep) or a worker (async)
  spends per decision step; one torch thread, as in a Ray rollout worker (two threads on this loaded
  2-core machine measured 20x slower: the threads wait for each other);
- ``update_s``: one fine-tuning iteration's advantages + critic + policy updates with ``FinetuneConfig``
  defaults (2 envs x 1000 steps per batch, K = 4, 16 + 16 minibatch steps of 256), measured in a real
  run once the replay buffer is full (``--update-iters`` iterations; the median over the iterations with
  a full buffer is reported), also with one torch thread.

Run: ``.venv/bin/python scripts/bench_scaling.py`` (``--quick`` for a smoke run; ``--no-update`` skips the
update measurement, the slow part).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import provenance
from bench_sim import HORIZON, VectorRunner

os.environ.setdefault("MUJOCO_GL", "egl")

WORKERS = (1, 2, 4)


def policy_step_s(batch: int, repeats: int = 200) -> float:
    """Seconds per ``sample`` + ``log_prob_per_dim`` of the default policy architecture on a batch."""
    import torch

    from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
    from gipo_robot.sim.robosuite_env import make_env

    env = make_env("Lift")
    shapes = {k: list(v) for k, v in env.robot_spec.obs_shapes.items()}
    env.close()
    policy = GaussianPolicy(PolicyConfig(low_dim=shapes, action_dim=7, chunk=4, hidden=[256, 256]))
    obs = {k: torch.randn(batch, *v) for k, v in shapes.items()}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(10):
            policy.log_prob_per_dim(obs, policy.sample(obs, gen)[0])
        start = time.perf_counter()
        for _ in range(repeats):
            policy.log_prob_per_dim(obs, policy.sample(obs, gen)[0])
    return (time.perf_counter() - start) / repeats


def update_cost(iterations: int, work: Path) -> dict:
    """``update_s`` of a real fine-tuning run with FinetuneConfig defaults (evaluation kept minimal)."""
    from gipo_robot.policies.bc import BCConfig, train_bc
    from gipo_robot.sim.experts import record_demos
    from gipo_robot.train.finetune import FinetuneConfig, finetune

    store = record_demos(work / "demos.zarr", "Lift", 2, noise=0.3, seed=0, horizon=80)
    train_bc(store, BCConfig(steps=20, eval_every=20), out=work / "policy", progress=False)  # default net
    config = FinetuneConfig(env_steps=iterations * 2 * 1000, eval_every=10_000, eval_episodes=1)
    history = finetune(config, work / "policy", work / "run", progress=True)
    full = history[config.replay_size - 1 :] or history[-1:]  # once the buffer holds K batches
    return {
        "update_s": float(np.median([r["update_s"] for r in full])),
        "update_s_runs": [r["update_s"] for r in history],
        "updates_per_iter": config.updates_per_iter,
        "batch_samples": config.num_envs * config.steps_per_env,
        "replay_size": config.replay_size,
        "collect_steps_per_s": [r["env_steps_per_s"] for r in history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="Round-robin rounds (medians are reported).")
    parser.add_argument("--steps", type=int, default=400, help="Env steps per configuration per round.")
    parser.add_argument("--update-iters", type=int, default=6, help="Fine-tuning iterations for update_s.")
    parser.add_argument("--no-update", dest="update", action="store_false", help="Skip update_s.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 2 rounds of 60 steps, no update.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/scaling.json"))
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.steps, args.update = 2, 60, False
    t0 = time.perf_counter()

    import ray
    import torch

    torch.set_num_threads(1)

    # Logical CPUs for every worker at once (all configurations stay built for the round-robin).
    from gipo_robot.sim.ray_backend import connect

    connect(num_cpus=sum(WORKERS))  # a local Ray, pinned to 127.0.0.1
    runners: dict[tuple[str, int], VectorRunner] = {}
    for backend in ("subprocess", "ray"):
        for w in WORKERS:
            print(f"building {backend} x{w}...", file=sys.stderr)
            runners[backend, w] = VectorRunner(w, backend=backend)
    rates: dict[tuple[str, int], list[float]] = {k: [] for k in runners}
    try:
        for runner in runners.values():  # warm-up (numba JIT, first resets)
            runner.run(20)
        for r in range(args.repeats):
            for key, runner in runners.items():
                rates[key].append(runner.run(args.steps))
            line = ", ".join(f"{b}x{w} {v[-1]:.0f}" for (b, w), v in rates.items())
            print(f"round {r + 1}/{args.repeats}: {line}", file=sys.stderr)
    finally:
        for runner in runners.values():
            runner.close()
        ray.shutdown()

    median = {k: float(np.median(v)) for k, v in rates.items()}
    result: dict = {
        backend: {
            "steps_per_s": {str(w): median[backend, w] for w in WORKERS},
            "runs_steps_per_s": {str(w): rates[backend, w] for w in WORKERS},
        }
        for backend in ("subprocess", "ray")
    }
    sub1, ray1 = median["subprocess", 1], median["ray", 1]
    costs = {
        "env_step_s": 1 / sub1,
        "ray_call_overhead_s": max(0.0, 1 / ray1 - 1 / sub1),
        "policy_step_s": {"1": policy_step_s(1), "64": policy_step_s(64)},
    }
    if args.update:
        with tempfile.TemporaryDirectory() as tmp:
            costs.update(update_cost(args.update_iters, Path(tmp)))
    result["costs"] = costs
    result["config"] = {
        "task": "Lift",
        "robot": "Panda",
        "horizon": HORIZON,
        "envs_per_worker": 1,
        "actions": "uniform random in [-1, 1], drawn in the parent",
        "repeats": args.repeats,
        "steps": args.steps,
        "note": "2-core machine shared with other jobs; 4 workers oversubscribe it",
    }
    result.update(provenance())
    result["wall_s"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print("| workers | subprocess env steps/s | ray env steps/s |")
    print("|---|---|---|")
    for w in WORKERS:
        print(f"| {w} | {median['subprocess', w]:.0f} | {median['ray', w]:.0f} |")
    print(json.dumps(costs, indent=1))


if __name__ == "__main__":
    main()
