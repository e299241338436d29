"""Robot time to 90%: GIPO fine-tuning on ``sim:Lift`` driven as a Robot at its real control rate (20 Hz
wall clock), actor and learner running concurrently on this machine, from the quickstart's 10-demo BC start.

Cells (resumable: a cell already in the JSON is skipped)::

    python scripts/bench_robot_finetune.py --prepare                 # BC start + its held-out success
    python scripts/bench_robot_finetune.py --cell async 0            # one run: 20 Hz, snapshots every 60 s
    python scripts/bench_robot_finetune.py --cell sync 0             # the same budget, actor idle while
                                                                     #   the learner updates
    python scripts/bench_robot_finetune.py --report                  # the table for BENCHMARKS.md

``--start DIR`` fine-tunes another BC policy than the quickstart's (default ``runs/bench_robot/bc``). A policy
that reads cameras (``bench_vision.py bc``) drives ``sim:Lift`` rendering exactly its cameras at its
resolution, its snapshots are evaluated with those cameras, and its cells and rows are named ``+cameras``
(``async_cameras_s0``, mode ``async+cameras``).

A run keeps a copy of the published policy every ``--snapshot-s`` seconds of robot time; afterwards each
snapshot is evaluated on 50 held-out scenes (deterministic, the seeds ``eval`` uses), and the run's *robot
minutes to 90%* is the robot time of the first snapshot at or above 90%. Evaluation is not robot time.
Results go to ``benchmarks/robot_finetune.json``: ``{"runs": [{"task", "mode", "reward", "seed",
"robot_minutes_to_90", "episodes_to_90", "final_success", "mean_lag", "commit", ...}]}``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import threading
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import provenance

ROOT = Path("runs/bench_robot")
RESULT = Path("benchmarks/robot_finetune.json")
PLOT = Path("benchmarks/robot_finetune.png")
EVAL_EPISODES = 50
SNAPSHOT_S = 60.0
CONFIG_KEYS = ("objective", "policy_lr", "epochs", "minibatch_size", "min_new_steps", "max_lag", "stale",
               "init_log_std", "realtime", "from_stores", "camera_encoder")  # fmt: skip


def prepare() -> dict:
    """The quickstart's BC start (10 scripted Lift demos, noise 0.3, 1500 BC steps) and its success."""
    from gipo_robot.loops.evaluate import evaluate
    from gipo_robot.policies import load_policy
    from gipo_robot.policies.bc import BCConfig, train_bc
    from gipo_robot.sim import make_env
    from gipo_robot.sim.experts import record_demos

    env = make_env("Lift")
    store = record_demos(ROOT / "demos.zarr", "Lift", 10, 0.3, seed=0, env=env, overwrite=True)
    train_bc(store, BCConfig(chunk=1, steps=1500), out=ROOT / "bc", progress=True)
    result = evaluate(load_policy(ROOT / "bc"), env, EVAL_EPISODES, execute_steps=1)
    env.close()
    info = {"bc_success": result.success_rate, "eval_episodes": EVAL_EPISODES}
    (ROOT / "bc_eval.json").write_text(json.dumps(info))
    return info


def _snapshots(run: Path, every_s: float, stop: threading.Event) -> None:
    """Copy the newest published version every ``every_s`` s of robot time into ``run/snapshots``."""
    from gipo_robot.train.arm.channel import RunChannel

    channel, target = RunChannel(run / "run"), every_s
    (run / "snapshots").mkdir(parents=True, exist_ok=True)
    while not stop.wait(0.2):
        beat = channel.heartbeat("actor")
        robot_s = float(beat.get("robot_s", 0.0)) + float(beat.get("age_s", 0.0))
        if robot_s < target or beat.get("finished"):
            continue
        latest = channel.latest()
        if latest is not None:
            dst = run / "snapshots" / f"t{int(target):05d}"
            shutil.copytree(latest[1], dst, dirs_exist_ok=True)
            (dst / "snapshot.json").write_text(json.dumps(
                {"robot_s": target, "version": latest[0], "episodes": beat.get("episodes", 0)}))  # fmt: skip
        target += every_s


def robot_for(start: Path) -> str:
    """The ``sim:Lift`` robot a start policy runs on: with exactly its cameras, at its resolution."""
    from gipo_robot.policies import load_policy
    from gipo_robot.policies.obs_sets import sim_camera_options

    options = sim_camera_options(load_policy(start).config.images)
    if not options:
        return "sim:Lift"
    return f"sim:Lift?cameras={','.join(options['cameras'])}&image_size={options['image_size']}"


def run_cell(
    name: str,
    mode: str,
    seed: int,
    minutes: float,
    snapshot_s: float,
    overrides: dict,
    start: Path,
    robot: str,
) -> Path:
    """One run from ``start`` on ``robot`` (:func:`robot_for`) into ``ROOT/name`` (its provenance in
    ``cell.json``); evaluation comes later."""
    from gipo_robot.train.arm import ArmConfig, finetune_on_robot

    run = ROOT / name
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    cell = {
        "name": name,
        "mode": mode,
        "seed": seed,
        "minutes": minutes,
        "overrides": overrides,
        "start": str(start),
        "robot": robot,
        **provenance(),
    }
    config = ArmConfig(robot=cell["robot"], mode=mode, seed=seed, robot_minutes=minutes, env_steps=10**9,
                       **overrides)  # fmt: skip
    (run / "cell.json").write_text(json.dumps(cell))
    stop = threading.Event()
    snapper = threading.Thread(target=_snapshots, args=(run, snapshot_s, stop), daemon=True)
    snapper.start()
    try:
        finetune_on_robot(config, start, run / "run", status=True)
    finally:
        stop.set()
        snapper.join()
    return run


def _evaluate_snapshot(snap: Path, pool, name: str) -> dict:
    """One snapshot on the held-out scenes, played on ``pool``'s workers (cached in ``eval.json``:
    evaluation can resume)."""
    from gipo_robot.policies import load_policy

    meta = json.loads((snap / "snapshot.json").read_text())
    cached = snap / "eval.json"
    if cached.exists():
        return {**meta, **json.loads(cached.read_text())}
    result = pool.evaluate(load_policy(snap), EVAL_EPISODES, execute_steps=1)
    cached.write_text(json.dumps({"success": result.success_rate}))
    print(f"{name} {meta['robot_s'] / 60:5.1f} min v{meta['version']}: {result.success_rate:.2f}", flush=True)
    return {**meta, "success": result.success_rate}


def evaluate_cell(cell_dir: Path, every: int) -> dict:
    """Evaluate every ``every``-th snapshot and the last, in robot-time order, then the snapshots between
    the first one at or above 90% and the one evaluated before it: the first snapshot at or above 90%
    gives the time to 90% at the snapshots' own resolution. Two worker processes play the episodes (the
    same per-seed results as one env), rendering the cameras of a camera policy."""
    import numpy as np

    from gipo_robot.loops.eval_pool import EvalPool
    from gipo_robot.policies import load_policy
    from gipo_robot.policies.obs_sets import sim_camera_options
    from gipo_robot.sim import EnvConfig
    from gipo_robot.train.state import read_history

    cell = json.loads((cell_dir / "cell.json").read_text())
    run = cell_dir / "run"
    start = Path(cell.get("start", ROOT / "bc"))
    cameras = sim_camera_options(load_policy(start).config.images)
    snaps = sorted((cell_dir / "snapshots").glob("t*"))
    picked = [i for i in range(len(snaps)) if (i + 1) % every == 0 or i == len(snaps) - 1]
    with EvalPool.start(EnvConfig(task="Lift", **cameras), 2) as pool:
        results = {i: _evaluate_snapshot(snaps[i], pool, cell_dir.name) for i in picked}
        first = next((i for i in picked if results[i]["success"] >= 0.9), None)
        if first is not None:  # refine: the skipped snapshots just before the first hit
            earlier = [i for i in picked if i < first]
            for i in range(earlier[-1] + 1 if earlier else 0, first):
                results[i] = _evaluate_snapshot(snaps[i], pool, cell_dir.name)
    curve = [results[i] for i in sorted(results)]
    hit = next((c for c in curve if c["success"] >= 0.9), None)
    lags: dict[int, int] = {}
    for record in read_history(run / "metrics.csv"):
        for lag, n in json.loads(record["lag_hist"]).items():
            lags[int(lag)] = lags.get(int(lag), 0) + n
    total = max(1, sum(lags.values()))
    timing = _timing(run)
    config = json.loads((run / "config.json").read_text())
    logs = bool(config.get("from_stores"))
    return {
        "task": "Lift", "mode": cell["mode"] + ("+logs" if logs else "") + ("+cameras" if cameras else ""),
        "reward": "sim", "start": str(start), "robot": cell.get("robot", "sim:Lift"),
        "seed": cell["seed"],
        "budget_minutes": cell["minutes"], "cell": cell["name"], "snapshot_minutes": every * SNAPSHOT_S / 60,
        "robot_minutes_to_90": hit["robot_s"] / 60 if hit else None,
        "episodes_to_90": hit["episodes"] if hit else None,
        "final_success": curve[-1]["success"] if curve else None,
        "mean_lag": sum(k * v for k, v in lags.items()) / total,
        "lag_hist": {str(k): v for k, v in sorted(lags.items())},
        "missed_deadlines": timing["missed"], "steps": timing["steps"],
        "p99_period_error_ms_max": timing["p99_max"], "curve": curve,
        "episodes": int(np.max([c["episodes"] for c in curve])) if curve else 0,
        "config": {k: config.get(k) for k in CONFIG_KEYS},
        **{k: cell[k] for k in ("date", "commit", "machine")},
    }  # fmt: skip


def _timing(run: Path) -> dict:
    """Missed 20 Hz deadlines and the worst episode's p99 period error over the run's episodes."""
    from gipo_robot.datasets import EpisodeStore

    store = EpisodeStore.open(run / "episodes.zarr")
    timings = [store.episode_meta(i).extra.get("timing") or {} for i in range(store.n_episodes)]
    return {
        "missed": sum(t.get("missed", 0) for t in timings),
        "steps": store.n_steps,
        "p99_max": max((t.get("p99_period_error_ms") or 0.0 for t in timings), default=None),
    }


def load_results() -> dict:
    return json.loads(RESULT.read_text()) if RESULT.exists() else {"runs": []}


def _t90(r: dict) -> float:
    """Robot minutes to 90%, or the budget where it was not reached (a lower bound)."""
    return r["robot_minutes_to_90"] if r["robot_minutes_to_90"] is not None else r["budget_minutes"]


def _paired(runs: list[dict], a: str, b: str, key) -> tuple[list[float], tuple[float, float] | None]:
    """Per-seed differences ``key(a) - key(b)`` and a bootstrap 95% CI of their mean (None under 2 pairs)."""
    import numpy as np

    by = {(r["mode"], r["seed"]): r for r in runs}
    diffs = [key(by[a, s]) - key(by[b, s]) for (m, s) in sorted(by) if m == a and (b, s) in by]
    if len(diffs) < 2:
        return diffs, None
    rng = np.random.default_rng(0)
    means = rng.choice(diffs, size=(10_000, len(diffs))).mean(axis=1)
    return diffs, (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def report() -> str:
    runs = load_results()["runs"]
    rows = ["| mode | seed | robot min to 90% | episodes to 90% | final success | mean lag | missed |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(runs, key=lambda r: (r["mode"], r["seed"])):
        t90 = (
            f"{r['robot_minutes_to_90']:.0f}"
            if r["robot_minutes_to_90"] is not None
            else f"> {r['budget_minutes']:.0f}"
        )
        e90 = r["episodes_to_90"] if r["episodes_to_90"] is not None else "-"
        missed = f"{100 * r['missed_deadlines'] / max(1, r['steps']):.1f}%"
        rows.append(f"| {r['mode']} | {r['seed']} | {t90} | {e90} | {r['final_success']:.2f} | "
                    f"{r['mean_lag']:.2f} | {missed} |")  # fmt: skip
    rows.append("")
    for a, b in (("async", "sync"), ("async+logs", "async"), ("async+cameras", "sync+cameras")):
        for name, key in (("robot minutes to 90% (budget where not reached)", _t90),
                          ("final success", lambda r: r["final_success"])):  # fmt: skip
            diffs, ci = _paired(runs, a, b, key)
            if diffs:
                verdict = "" if ci is None else (" (tie)" if ci[0] <= 0 <= ci[1] else "")
                ci_text = "" if ci is None else f", 95% CI [{ci[0]:+.2f}, {ci[1]:+.2f}]{verdict}"
                rows.append(f"- {a} - {b}, {name}: per seed {[round(d, 2) for d in diffs]}, "
                            f"mean {sum(diffs) / len(diffs):+.2f}{ci_text}")  # fmt: skip
    cpus = sorted({r["machine"]["cpu"] for r in runs})
    rows.append(f"- CPU: {', '.join(cpus)}")
    return "\n".join(rows)


def plot(out: Path = PLOT) -> Path:
    """Held-out success vs robot minutes, one line per run, coloured by mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"async": "C0", "sync": "C1", "async+logs": "C2", "async+cameras": "C3", "sync+cameras": "C4"}
    fig, ax = plt.subplots(figsize=(7, 4))
    seen = set()
    for r in sorted(load_results()["runs"], key=lambda r: (r["mode"], r["seed"])):
        xs = [c["robot_s"] / 60 for c in r["curve"]]
        ys = [c["success"] for c in r["curve"]]
        label = None if r["mode"] in seen else r["mode"]
        seen.add(r["mode"])
        ax.plot(xs, ys, color=colours.get(r["mode"], "C3"), alpha=0.8, marker=".", label=label)
    ax.axhline(0.9, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="robot minutes (20 Hz wall clock)", ylabel="held-out success (50 episodes)", ylim=(0, 1.02),
           title="finetune --robot sim:Lift from the 10-demo BC start")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def make_logs(episodes: int) -> dict:
    """``deploy --sample`` of the BC start, unpaced: the logged episodes a ``+logs`` run starts from."""
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.loops.deploy import DeployConfig, deploy, open_deploy_store
    from gipo_robot.policies import load_policy

    robot = load_robot("sim:Lift")
    store = open_deploy_store(ROOT / "logs.zarr", robot.spec, sample=True)
    config = DeployConfig(episodes=episodes, seed=2_000_000, realtime=False, sample=True)
    result = deploy(load_policy(ROOT / "bc"), robot, store, config, policy_name=str(ROOT / "bc"))
    robot.close()
    return {"episodes": store.n_episodes, "success_rate": result.to_dict()["success_rate"]}


def write_row(row: dict) -> None:
    with RESULT.with_suffix(".lock").open("w") as lock:  # cells may finish side by side
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results()
        results["runs"] = [r for r in results["runs"] if r.get("cell") != row["cell"]] + [row]
        tmp = RESULT.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(RESULT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", action="store_true", help="The BC start and its held-out success.")
    parser.add_argument(
        "--make-logs", type=int, metavar="N", help="N deploy --sample episodes of the BC start."
    )
    parser.add_argument("--cell", nargs=2, metavar=("MODE", "SEED"), help="One run (async or sync).")
    parser.add_argument("--logs", action="store_true", help="The cell starts from the logged episodes.")
    parser.add_argument("--start", type=Path, default=ROOT / "bc", help="The BC policy to fine-tune.")
    parser.add_argument("--minutes", type=float, default=15.0, help="Robot-time budget of a run.")
    parser.add_argument("--set", nargs="*", default=[], help="ArmConfig fields as NAME=VALUE (JSON values).")
    parser.add_argument(
        "--evaluate", action="store_true", help="Evaluate the finished cells not yet in the JSON."
    )
    parser.add_argument("--every", type=int, default=2, help="Evaluate every N-th snapshot (and the last).")
    parser.add_argument("--cells", nargs="*", help="With --evaluate: only these cells (e.g. async_s0).")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    ROOT.mkdir(parents=True, exist_ok=True)
    if args.prepare:
        print(json.dumps(prepare()))
    if args.make_logs:
        print(json.dumps(make_logs(args.make_logs)))
    if args.cell:
        mode, seed = args.cell[0], int(args.cell[1])
        robot = robot_for(args.start)
        cameras = robot != "sim:Lift"
        name = f"{mode}{'_logs' if args.logs else ''}{'_cameras' if cameras else ''}_s{seed}"
        if (ROOT / name / "done").exists():
            print(f"{name}: already run")
            return
        overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
        if args.logs:
            overrides["from_stores"] = [str(ROOT / "logs.zarr")]
        run_cell(name, mode, seed, args.minutes, SNAPSHOT_S, overrides, args.start, robot)
        (ROOT / name / "done").touch()
    if args.evaluate:
        known = {r.get("cell") for r in load_results()["runs"]}
        for cell_dir in sorted(p.parent for p in ROOT.glob("*/done")):
            if cell_dir.name not in known and (not args.cells or cell_dir.name in args.cells):
                write_row(evaluate_cell(cell_dir, args.every))
    if args.report:
        print(report())
        print(f"plot: {plot()}")


if __name__ == "__main__":
    main()
