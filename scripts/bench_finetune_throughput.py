"""Fine-tuning throughput end to end, evaluation included: this commit and a baseline commit side by side.

    .venv/bin/python scripts/bench_finetune_throughput.py [--tasks Lift Can] [--utd 1 10] [--rounds 3]
        [--env-steps 20000] [--baseline 5afcb3b] [--out benchmarks/throughput.json] [--report]

One *cell* is one fine-tuning run of one commit: (task, update-to-data multiplier, commit, round). Each runs
in its own Python process with the commit's package first on ``sys.path`` (each commit, HEAD too, is in
a git worktree, ``runs/throughput/wt-<sha>``; both use this venv), from the same BC start (trained
once per task by the baseline, whose checkpoints both commits read), on the staleness benchmark's schedule
scaled to ``--env-steps``: 2 envs × 1000 steps per iteration, GIPO K = 4, evaluation of 30 episodes every
10k env steps and after the last iteration, then 50 final held-out episodes. ``--utd 10`` multiplies the
update-to-data ratio (``epochs`` 2 -> 20). Rounds alternate the commits (baseline, this, baseline, ...) so
slow drifts of the machine hit both; the report takes medians over rounds.

Finished cells are appended to ``--out`` (resumable: a cell already there is skipped). ``--report`` runs
nothing and prints the table: wall time, env steps/s including evaluation (training steps + evaluation
steps over wall time), the fraction of the physics ceiling (``benchmarks/sim.json``'s two-core ceiling
unless ``--ceiling`` says otherwise), learner updates/s, and the speedup of this commit over the baseline.

``--profile`` runs this checkout once per (task, utd) with every phase of the loop timed (collection, and in
it the env steps and the policy's inference; advantages; critic and policy updates; evaluation; logging;
checkpoints; store writes) and stores the table under ``"profile"`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import provenance

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "throughput"

# One cell, run in a child process whose sys.path starts with the commit's checkout (argv: json of args).
CELL = r"""
import json, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["root"])
# The venv's editable install finds gipo_robot modules in this checkout; only the commit's may load.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
import torch
from gipo_robot.train.finetune import FinetuneConfig, finetune
try:
    from gipo_robot.loops.evaluate import EVAL_SEED, evaluate
except ImportError:  # before the restructure
    from gipo_robot.policies.evaluate import EVAL_SEED, evaluate
from gipo_robot.policies.checkpoint import load_policy
from gipo_robot.sim import make_env
import gipo_robot
assert gipo_robot.__file__.startswith(args["root"]), gipo_robot.__file__
config = FinetuneConfig(task=args["task"], objective="gipo", replay_size=4, env_steps=args["env_steps"],
                        steps_per_env=1000, epochs=2 * args["utd"], policy_lr=1e-5, init_log_std=-2.5,
                        eval_every=args["eval_every"], eval_episodes=30, seed=0)
t0 = time.perf_counter()
history = finetune(config, args["bc"], args["run"], progress=False)
env = make_env(args["task"])
final = evaluate(load_policy(args["run"] + "/checkpoint"), env, 50, seed=EVAL_SEED, execute_steps=1,
                 progress=False)
env.close()
wall = time.perf_counter() - t0
evals = [r for r in history if "eval_success" in r]
eval_steps = sum(r["eval_length"] * 30 for r in evals) + final.mean_length * 50
updates = len(history) * config.updates_per_iter
print(json.dumps({"wall_s": wall, "train_steps": history[-1]["env_steps"], "eval_steps": eval_steps,
                  "updates": updates, "final_success": final.success_rate,
                  "update_s": sum(r.get("update_s", 0.0) for r in history)}))
"""

# The profile: one run of this checkout with every phase of an iteration timed (monkeypatched wrappers).
PROFILE = r"""
import functools, json, sys, time
args = json.loads(sys.argv[1])
from gipo_robot.train import finetune as ft, learner as ln
from gipo_robot.sim import vector
from gipo_robot.policies import gaussian
T, stack = {}, []
def timed(owner, name, key, only_in=None):
    f = getattr(owner, name)
    @functools.wraps(f)
    def w(*a, **k):
        if only_in is not None and only_in not in stack:
            return f(*a, **k)
        stack.append(key)
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            stack.pop()
            T[key] = T.get(key, 0.0) + time.perf_counter() - t
    setattr(owner, name, w)
timed(ft._Run, "start", "set-up (envs, workers, policy)")
timed(ft._Run, "collect", "collection")
timed(vector.SubprocVectorEnv, "step", "  env steps (workers)", only_in="collection")
timed(gaussian.GaussianPolicy, "sample", "  policy inference", only_in="collection")
timed(gaussian.GaussianPolicy, "log_prob_per_dim", "  policy inference", only_in="collection")
timed(ln, "advantages", "advantages")
timed(ln.Learner, "_update_critic", "critic updates")
timed(ln.Learner, "_update_policy", "policy updates")
timed(*((ft._Run, "evaluate") if hasattr(ft._Run, "evaluate") else (ft, "evaluate")), "evaluation")
if hasattr(ft._Run, "wait_for_store"):
    timed(ft._Run, "wait_for_store", "waiting for the store")
timed(ft._Run, "log", "log (CSV, TensorBoard)")
timed(ft._Run, "checkpoint", "checkpoint")
timed(ft._Run, "store_episodes", "store writes (handed to a thread since issue 27)")
timed(ft._Run, "close", "close")
config = ft.FinetuneConfig(task=args["task"], objective="gipo", replay_size=4, env_steps=args["env_steps"],
                           steps_per_env=1000, epochs=2 * args["utd"], policy_lr=1e-5, init_log_std=-2.5,
                           eval_every=5, eval_episodes=30, seed=0)
t0 = time.perf_counter()
history = ft.finetune(config, args["bc"], args["run"], progress=False)
wall = time.perf_counter() - t0
evals = [r for r in history if "eval_success" in r]
print(json.dumps({"wall_s": wall, "phases": T, "train_steps": history[-1]["env_steps"],
                  "eval_steps": sum(r["eval_length"] * 30 for r in evals),
                  "updates": len(history) * config.updates_per_iter}))
"""


def profile(tasks: list[str], utds: list[int], env_steps: int, baseline: str) -> list[dict]:
    """Where one run's wall time goes, per phase, for each (task, utd): this checkout, one run each."""
    rows = []
    for task in tasks:
        bc = bc_start(task, worktree(baseline))
        for utd in utds:
            run = RUNS / f"profile_{task}_utd{utd}"
            subprocess.run(["rm", "-rf", str(run)], check=True)
            args = {"task": task, "utd": utd, "env_steps": env_steps, "bc": str(bc), "run": str(run)}
            done = subprocess.run(
                [sys.executable, "-c", PROFILE, json.dumps(args)], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise SystemExit(f"profile {task} utd{utd} failed:\n{done.stderr[-3000:]}")
            row = {"task": task, "utd": utd, **json.loads(done.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(
                f"\n{task}, utd x{utd}: {row['wall_s']:.0f} s, {row['train_steps']} training + "
                f"{row['eval_steps']:.0f} evaluation env steps, {row['updates']} updates"
            )
            print("| phase | s | share |\n|---|---|---|")
            for phase, sec in row["phases"].items():
                print(f"| {phase} | {sec:.1f} | {sec / row['wall_s']:.0%} |")
    return rows


def worktree(commit: str) -> Path:
    """A checkout of ``commit`` (a git worktree under runs/throughput), HEAD's too: the checkout may change
    while the cells run."""
    sha = subprocess.run(
        ["git", "rev-parse", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = RUNS / f"wt-{sha[:7]}"
    if not path.exists():
        RUNS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), sha], check=True, capture_output=True
        )
    return path


def bc_start(task: str, root: Path) -> Path:
    """The BC start for ``task`` (10 noisy scripted demos, 1500 steps), trained once by ``root``'s code."""
    path = RUNS / f"bc_{task}"
    if not (path / "config.json").exists():
        code = (
            "import sys; sys.path.insert(0, sys.argv[1])\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]"
            "\n"
            "from gipo_robot.policies.bc import BCConfig, train_bc\n"
            "from gipo_robot.sim.experts import record_demos\n"
            "s = record_demos(sys.argv[3] + '.zarr', sys.argv[2], 10, 0.3, seed=0, overwrite=True)\n"
            "train_bc(s, BCConfig(chunk=1, steps=1500, seed=0), out=sys.argv[3], progress=False)\n"
        )
        subprocess.run([sys.executable, "-c", code, str(root), task, str(path)], check=True)
    return path


def run_cell(task: str, utd: int, commit: str, round_: int, env_steps: int, bc: Path) -> dict:
    root = worktree(commit)
    run = RUNS / f"{task}_utd{utd}_{commit[:7]}_r{round_}"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    args = {"root": str(root), "task": task, "utd": utd, "env_steps": env_steps, "bc": str(bc),
            "run": str(run), "eval_every": 5}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", CELL, json.dumps(args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cell {task} utd{utd} {commit} r{round_} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=["Lift", "Can"])
    parser.add_argument("--utd", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=20_000)
    parser.add_argument("--baseline", default="5afcb3b")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "throughput.json")
    parser.add_argument("--ceiling", type=float, default=None, help="physics ceiling, env steps/s")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--profile", action="store_true", help="time each phase of one run per (task, utd)")
    args = parser.parse_args()
    data = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    if args.report:
        report(data, args.ceiling)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        return
    if args.profile:
        data["profile"] = {
            "rows": profile(args.tasks, args.utd, args.env_steps, args.baseline),
            **provenance(),
        }
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        return
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    head = head.stdout.strip()
    base_sha = subprocess.run(["git", "rev-parse", args.baseline], capture_output=True, text=True, check=True)
    baseline = base_sha.stdout.strip()
    for task in args.tasks:
        bc = bc_start(task, worktree(baseline))
        for round_ in range(args.rounds):
            order = [baseline, head] if round_ % 2 == 0 else [head, baseline]
            for utd in args.utd:
                for commit in order:
                    key = (task, utd, commit, round_)
                    if any((r["task"], r["utd"], r["commit"], r["round"]) == key for r in data["rows"]):
                        continue
                    t0 = time.perf_counter()
                    cell = run_cell(task, utd, commit, round_, args.env_steps, bc)
                    row = {"task": task, "utd": utd, "commit": commit, "round": round_,
                           "baseline": commit == baseline, **cell, **provenance()["machine"]}  # fmt: skip
                    data["rows"].append(row)
                    args.out.write_text(json.dumps(data, indent=1) + "\n")
                    print(f"{task} utd{utd} {commit[:7]} r{round_}: {row['wall_s']:.0f} s "
                          f"({time.perf_counter() - t0:.0f} s with start-up)", flush=True)  # fmt: skip
    report(data, args.ceiling)
    args.out.write_text(json.dumps(data, indent=1) + "\n")


def report(data: dict, ceiling: float | None) -> None:
    """Medians over rounds per (task, utd, commit); the speedup of this commit over the baseline."""
    if ceiling is None:
        ceiling = json.loads((ROOT / "benchmarks" / "sim.json").read_text())["ceiling_steps_per_s"]
    groups: dict[tuple, list[dict]] = {}
    newest = data["rows"][-1]["commit"] if data["rows"] else None
    newest = next((r["commit"] for r in reversed(data["rows"]) if not r["baseline"]), newest)
    for r in data["rows"]:  # the baseline's rows and the newest commit's (older commits' stay in the file)
        if r["baseline"] or r["commit"] == newest:
            groups.setdefault((r["task"], r["utd"], r["baseline"]), []).append(r)
    rows = []
    print("| task | utd | commit | rounds | wall s | env steps/s (eval incl.) | vs ceiling | updates/s |")
    print("|---|---|---|---|---|---|---|---|")
    for (task, utd, is_base), rs in sorted(groups.items()):
        sps = statistics.median((r["train_steps"] + r["eval_steps"]) / r["wall_s"] for r in rs)
        row = {"task": task, "utd": utd, "baseline": is_base, "commit": rs[0]["commit"], "rounds": len(rs),
               "wall_s": statistics.median(r["wall_s"] for r in rs), "env_steps_per_s": sps,
               "vs_ceiling": sps / ceiling,
               "updates_per_s": statistics.median(r["updates"] / r["wall_s"] for r in rs)}  # fmt: skip
        rows.append(row)
        name = ("baseline " if is_base else "") + row["commit"][:7]
        print(f"| {task} | {utd} | {name} | {len(rs)} | {row['wall_s']:.0f} | {sps:.0f} | "
              f"{sps / ceiling:.1%} | {row['updates_per_s']:.1f} |")  # fmt: skip
    by = {(r["task"], r["utd"], r["baseline"]): r["env_steps_per_s"] for r in rows}
    speedup = {f"{t}_utd{u}": by[(t, u, False)] / by[(t, u, True)]
               for (t, u, b) in by if not b and (t, u, True) in by}  # fmt: skip
    print(json.dumps({"ceiling_steps_per_s": ceiling, "speedup": speedup}))
    data.update(ceiling_steps_per_s=ceiling, summary=rows, speedup=speedup)


if __name__ == "__main__":
    main()
