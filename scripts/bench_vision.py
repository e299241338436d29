"""Seeing like a real arm: BC and GIPO fine-tuning from cameras + proprioception, no object poses.

    .venv/bin/python scripts/bench_vision.py bc [--tasks Lift] [--demos 10 20 50] [--seeds 0 1 2]
        [--obs proprio+cameras state] [--episodes 50] [--only TASK:DEMOS:SEED:OBS]
        [--chunk 1] [--execute-steps 1] [--proprio all|eef]
    .venv/bin/python scripts/bench_vision.py finetune [--task Lift] [--demos 10] [--seeds 0]
        [--env-steps 50000] [--critic-obs policy|state] [--init-log-std -2.5]
        [--camera-encoder finetune|frozen]
        (and the flags that name its BC start: --cameras, --image-shift, --proprio)
    .venv/bin/python scripts/bench_vision.py render [--seconds 20]
    .venv/bin/python scripts/bench_vision.py collect --policy DIR [--steps-per-env 250] [--repeats 3]
    .venv/bin/python scripts/bench_vision.py failures --policy DIR [--episodes 50]
    .venv/bin/python scripts/bench_vision.py report

Every cell lands in ``benchmarks/vision.json`` when it finishes (with its config, commit, CPU and wall
time) and is skipped on the next invocation, so the grid is resumable cell by cell.

- **bc**: scripted demos (noise 0.3, the demo seeds of ``bench_bc.py``: the same trajectories) recorded with
  one ``agentview`` camera, BC on the chosen observation set (``proprio+cameras``: no ``obs.object``;
  ``state``: the privileged baseline, trained in the same run on the same demos so the two pair by seed),
  then ``--episodes`` held-out episodes with the mean action on the vector env's two workers (cameras
  rendered at the policy's resolution). Vision policies are kept under ``runs/vision/`` for fine-tuning.
  ``--chunk H --execute-steps E``: BC predicts H-action chunks and evaluation executes the first E of each
  open-loop before re-planning (ACT-style chunking, no temporal ensembling); H = 1 is the first cells'.
  ``--proprio eef``: the vision policy reads only the end-effector pose and gripper position beside its
  cameras (robomimic's image agents' set), not the joint positions and velocities of ``all``.
- **finetune**: GIPO from a ``bc`` cell's vision policy on the same task: success before and after, env
  steps, wall time, per iteration approx-KL, GIPO's mean trust weight, the value loss and the rollouts'
  success; the run directory (learning curve PNG, metrics) under ``runs/vision/``. ``--critic-obs state``
  gives the run an asymmetric critic (the simulator's low-dim state, object pose included; the policy still
  reads only the camera and proprioception): another cell, another run directory.
- **collect**: fine-tuning's collection with a camera policy (it samples every step on the vector env's two
  workers), env steps/s with torch's default intra-op threads vs one thread (``collect_iteration``'s), in
  one run.
- **failures**: how a Lift policy's held-out episodes fail (no reach: the gripper never came within 2 cm of
  the cube; reached, not lifted), classified with the simulator's cube pose, which the policy never sees.
- **render**: camera rollout throughput, env steps/s with random actions and one 84x84 camera: robosuite's
  exact rendering on one env (how camera rollouts ran before) vs the vision path (fast rendering, the
  vector env's two workers), in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _common import provenance
from bench_staleness import append_run, read_runs

OUT = Path("benchmarks/vision.json")
RUNS = Path("runs/vision")
CAMERAS = ("agentview",)
#: ``--proprio``: which proprioceptive features a vision cell reads beside its cameras. ``all``: every
#: non-privileged low-dim feature (joint positions and velocities included; the first cells'); ``eef``:
#: robomimic's image agents' set, end-effector pose and gripper position, no velocities.
PROPRIO = {"all": None, "eef": ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")}


def bc_policy_dir(task: str, demos: int, seed: int, obs: str, args: argparse.Namespace) -> Path:
    pool = "" if obs == "state" else f"_{args.image_pool}"
    steps = "" if args.bc_steps == 1500 else f"_{args.bc_steps}steps"
    chunk = "" if args.chunk == 1 else f"_chunk{args.chunk}x{args.execute_steps}"
    proprio = "" if obs == "state" or args.proprio == "all" else f"_proprio-{args.proprio}"
    shift = "" if obs == "state" or args.image_shift == 4 else f"_shift{args.image_shift}"
    variant = f"{pool}{steps}{chunk}{proprio}{shift}"
    return RUNS / f"bc_{task}_{demos}_s{seed}_{obs.replace('+', '-')}_{camera_tag(args)}{variant}"


def camera_tag(args: argparse.Namespace) -> str:
    """``84px`` for the default camera (the first cells' names), else e.g.
    ``agentview-robot0_eye_in_hand_84px``."""
    cameras = "" if tuple(args.cameras) == CAMERAS else "-".join(args.cameras) + "_"
    return f"{cameras}{args.image_size}px"


def run_bc_cell(task: str, demos: int, seed: int, obs: str, args: argparse.Namespace) -> dict:
    """Record demos with the camera (or reuse them), train BC on ``obs``, evaluate on held-out seeds."""
    from gipo_robot.datasets import EpisodeStore
    from gipo_robot.policies.bc import BCConfig, train_bc
    from gipo_robot.sim.experts import record_demos

    start = time.perf_counter()
    store_path = RUNS / f"demos_{task}_{demos}_s{seed}_{camera_tag(args)}.zarr"
    if not (store_path / "zarr.json").exists() and not (store_path / ".zgroup").exists():
        record_demos(
            store_path, task, demos, args.noise, seed=10_000 * seed, overwrite=True,
            cameras=tuple(args.cameras), image_size=args.image_size, render_quality="fast",
        )  # fmt: skip
    store = EpisodeStore.open(store_path)
    t_demos = time.perf_counter() - start
    out = bc_policy_dir(task, demos, seed, obs, args)
    keys = None
    if obs == "proprio+cameras" and PROPRIO[args.proprio] is not None:
        cameras = [f"obs.{c}_image" for c in args.cameras]
        keys = [f"obs.{k}" for k in PROPRIO[args.proprio]] + cameras
    config = BCConfig(
        obs_keys=keys, chunk=args.chunk,
        steps=args.bc_steps, batch_size=args.batch_size, obs_set=obs, seed=seed,
        image_shift=args.image_shift, image_pool=args.image_pool,
    )  # fmt: skip
    result = train_bc(store, config, out=out, progress=True)
    t_bc = time.perf_counter() - start - t_demos
    evaluation = evaluate_policy(out, task, args.episodes, args.execute_steps)
    return {
        "kind": "bc", "task": task, "demos": demos, "seed": seed, "obs": obs,
        "features": sorted(result.policy.config.low_dim) + sorted(result.policy.config.images),
        "success": evaluation["success_rate"], "success_ci95": evaluation["success_ci95"],
        "best_step": result.best_step, "policy": str(out),
        "config": {"noise": args.noise, "bc_steps": args.bc_steps, "batch_size": args.batch_size,
                   "image_size": args.image_size, "image_shift": args.image_shift, "episodes": args.episodes,
                   "image_pool": result.policy.config.image_pool if result.policy.config.images else None,
                   "cameras": list(args.cameras), "chunk": args.chunk, "execute_steps": args.execute_steps,
                   "proprio": "all" if obs == "state" else args.proprio},
        "timing_s": {"demos": t_demos, "bc": t_bc, "eval": evaluation["wall_s"]},
        "wall_s": time.perf_counter() - start, **provenance(),
    }  # fmt: skip


def finetune_run_dir(task: str, demos: int, seed: int, args: argparse.Namespace) -> Path:
    """A fine-tuning cell's run directory: one per setting that changes the run (the first cells' settings
    add no suffix), so that a cell never resumes another's run."""
    variant = "" if args.critic_obs == "policy" else f"_critic-{args.critic_obs}"
    variant += "" if tuple(args.cameras) == CAMERAS else "_" + "-".join(args.cameras)
    variant += "" if args.image_size == 84 else f"_{args.image_size}px"
    variant += "" if args.proprio == "all" else f"_proprio-{args.proprio}"
    variant += "" if args.image_shift == 4 else f"_shift{args.image_shift}"
    variant += "" if args.init_log_std == -2.5 else f"_logstd{args.init_log_std:g}"
    variant += "" if args.policy_lr == 1e-5 else f"_lr{args.policy_lr:g}"  # the first cells' lr: no suffix
    variant += "" if args.camera_encoder == "finetune" else f"_encoder-{args.camera_encoder}"
    return RUNS / f"ft_{task}_{demos}_s{seed}_{args.env_steps // 1000}k{variant}"


def evaluate_policy(path: Path, task: str, episodes: int, execute_steps: int = 1) -> dict:
    """The policy's mean action on ``episodes`` held-out seeds, on two workers rendering its cameras,
    executing the first ``execute_steps`` actions of each predicted chunk before re-planning."""
    from gipo_robot.loops.eval_pool import EvalPool
    from gipo_robot.policies import load_policy
    from gipo_robot.policies.obs_sets import sim_camera_options
    from gipo_robot.sim import EnvConfig

    start = time.perf_counter()
    policy = load_policy(path)
    env_config = EnvConfig(task=task, **sim_camera_options(policy.config.images))
    with EvalPool.start(env_config, workers=2) as pool:
        result = pool.evaluate(policy, episodes, execute_steps=execute_steps)
    return {"success_rate": result.success_rate, "success_ci95": list(result.success_ci95),
            "wall_s": time.perf_counter() - start}  # fmt: skip


def run_finetune_cell(task: str, demos: int, seed: int, args: argparse.Namespace) -> dict:
    """GIPO from the (task, demos, seed) vision BC policy; success before and after."""
    from gipo_robot.train.finetune import FinetuneConfig, finetune

    base = bc_policy_dir(task, demos, seed, "proprio+cameras", args)
    runs = read_runs(args.out, missing_ok=True)  # the bc row of that policy (collect rows name it too)
    bc_cell = [r for r in runs if r.get("kind") == "bc" and r.get("policy") == str(base)]
    if not bc_cell:
        raise SystemExit(f"no bc cell for {base}: run `bench_vision.py bc --only {task}:{demos}:{seed}:"
                         "proprio+cameras` first")  # fmt: skip
    start = time.perf_counter()
    run_dir = finetune_run_dir(task, demos, seed, args)
    config = FinetuneConfig(
        task=task, objective="gipo", env_steps=args.env_steps, num_envs=2, steps_per_env=args.steps_per_env,
        epochs=args.epochs, policy_lr=args.policy_lr, replay_size=args.replay_size, minibatch_size=256,
        eval_every=args.eval_every, eval_episodes=args.eval_episodes, seed=seed, critic_obs=args.critic_obs,
        init_log_std=args.init_log_std, log_std_floor=min(-3.0, args.init_log_std),  # floor: not above start
        camera_encoder=args.camera_encoder,
    )  # fmt: skip
    history = finetune(config, base, run_dir, resume=(run_dir / "config.json").exists())
    wall = time.perf_counter() - start
    final = evaluate_policy(run_dir / "checkpoint", task, args.episodes)
    curve = [(r["env_steps"], r["eval_success"]) for r in history if "eval_success" in r]
    columns = ("env_steps", "approx_kl", "trust_weight_mean", "value_loss", "rollout_success")
    return {
        "kind": "finetune", "task": task, "demos": demos, "seed": seed, "critic_obs": args.critic_obs,
        "per_iteration": [{k: r[k] for k in columns if k in r} for r in history],
        "bc_success": bc_cell[-1]["success"], "final_success": final["success_rate"],
        "final_ci95": final["success_ci95"], "env_steps": history[-1]["env_steps"] if history else 0,
        "curve": curve, "run": str(run_dir), "wall_s": wall,
        "config": {"steps_per_env": args.steps_per_env, "epochs": args.epochs, "policy_lr": args.policy_lr,
                   "replay_size": args.replay_size, "episodes": args.episodes, "critic_obs": args.critic_obs,
                   "proprio": args.proprio, "image_shift": args.image_shift, "cameras": list(args.cameras),
                   "init_log_std": args.init_log_std, "log_std_floor": config.log_std_floor,
                   "camera_encoder": args.camera_encoder, "image_size": args.image_size},
        **provenance(),
    }  # fmt: skip


def run_failures_cell(policy_dir: Path, episodes: int) -> dict:
    """How a Lift policy's held-out episodes fail: the simulator's cube pose (never shown to a camera policy)
    classifies each episode as success, *no reach* (the gripper never within 2 cm of the cube's centre) or
    *reached, not lifted*; the closest approach is kept per episode."""
    import torch

    from gipo_robot.loops.actor import PolicyActor
    from gipo_robot.loops.evaluate import EVAL_SEED
    from gipo_robot.policies import load_policy
    from gipo_robot.policies.obs_sets import sim_camera_options
    from gipo_robot.sim import make_env

    torch.set_num_threads(1)
    policy = load_policy(policy_dir)
    env = make_env("Lift", **sim_camera_options(policy.config.images))
    actor, records = PolicyActor(policy, execute_steps=1), []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=EVAL_SEED + i)
            actor.reset()
            closest, success, done = np.inf, False, False
            while not done:
                cube = env.privileged_state()["cube_pos"]
                closest = min(closest, float(np.linalg.norm(obs["robot0_eef_pos"] - cube)))
                obs, _, terminated, truncated, info = env.step(actor.act(obs))
                success, done = success or bool(info.get("success")), terminated or truncated
            records.append({"seed": EVAL_SEED + i, "success": success, "closest_m": closest})
    finally:
        env.close()
    failed = [r for r in records if not r["success"]]
    return {
        "kind": "failures", "task": "Lift", "policy": str(policy_dir), "episodes": records,
        "success": sum(r["success"] for r in records) / episodes,
        "no_reach": sum(r["closest_m"] >= 0.02 for r in failed) / episodes,
        "reached_not_lifted": sum(r["closest_m"] < 0.02 for r in failed) / episodes,
        "closest_failed_m": float(np.median([r["closest_m"] for r in failed])) if failed else None,
        "closest_success_m": float(np.median([r["closest_m"] for r in records if r["success"]]))
        if len(failed) < episodes else None, **provenance(),
    }  # fmt: skip


def steps_per_second(make, seconds: float) -> float:
    """Env steps/s of random actions on a vector env (``num_envs``) or one env, after 20 warm-up steps."""
    env = make()
    try:
        n = getattr(env, "num_envs", None)
        space = env.single_action_space if n else env.action_space
        low, high = space.low, space.high
        rng = np.random.default_rng(0)

        def action() -> np.ndarray:
            return rng.uniform(low, high, (n, *low.shape) if n else low.shape)

        def step() -> None:  # the vector env resets its envs itself; one env is reset here
            out = env.step(action())
            if not n and (out[2] or out[3]):
                env.reset()

        env.reset(seed=0)
        for _ in range(20):
            step()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            step()
            steps += n or 1
        return steps / (time.perf_counter() - t0)
    finally:
        env.close()


def run_render_cell(args: argparse.Namespace) -> dict:
    from gipo_robot.sim import make_env, make_vector_env

    camera = {"cameras": CAMERAS, "image_size": 84}
    before = steps_per_second(lambda: make_env("Lift", **camera, render_quality="exact"), args.seconds)
    one_fast = steps_per_second(lambda: make_env("Lift", **camera, render_quality="fast"), args.seconds)
    after = steps_per_second(
        lambda: make_vector_env("Lift", 2, **camera, render_quality="fast"), args.seconds
    )
    return {"kind": "render", "before_steps_per_s": before, "one_env_fast_steps_per_s": one_fast,
            "after_steps_per_s": after, "ratio": after / before, **provenance()}  # fmt: skip


def run_collect_cell(policy_dir: Path, task: str, steps: int, repeats: int) -> dict:
    """Env steps/s of fine-tuning's collection (``collect``: the policy samples an action for each env every
    step while the vector env's two workers render its cameras) with torch's default intra-op threads and
    with one (what ``collect_iteration`` acts with), alternating ``repeats`` times in one run."""
    import torch

    from gipo_robot.policies import load_policy
    from gipo_robot.policies.obs_sets import sim_camera_options
    from gipo_robot.sim import make_vector_env
    from gipo_robot.train.collect import collect

    policy, default = load_policy(policy_dir).eval(), torch.get_num_threads()
    venv = make_vector_env(task, 2, **sim_camera_options(policy.config.images))
    rates: dict[str, list[float]] = {"default": [], "one": []}
    try:
        collect(policy, venv, 20, seed=0, version=0, generator=torch.Generator().manual_seed(0))  # warm-up
        for r in range(repeats):
            for name, threads in (("default", default), ("one", 1)):
                torch.set_num_threads(threads)
                t0 = time.perf_counter()
                collect(policy, venv, steps, seed=r, version=0, generator=torch.Generator().manual_seed(r))
                rates[name].append(steps * venv.num_envs / (time.perf_counter() - t0))
    finally:
        torch.set_num_threads(default)
        venv.close()
    ratio = statistics.median(rates["one"]) / statistics.median(rates["default"])
    cameras = sorted(policy.config.images)
    return {"kind": "collect", "task": task, "policy": str(policy_dir), "cameras": cameras,
            "steps_per_env": steps, "default_threads": default, "default_steps_per_s": rates["default"],
            "one_thread_steps_per_s": rates["one"], "ratio": ratio, **provenance()}  # fmt: skip


def obs_label(run: dict) -> str:
    """The cell's observation set, with the camera pooling where it is not the default."""
    pool, cameras = run["config"].get("image_pool"), run["config"].get("cameras", list(CAMERAS))
    label = run["obs"] + (f" ({pool} pool)" if pool not in (None, "spatial_softmax") else "")
    label += f" [{' + '.join(cameras)}]" if run["obs"] != "state" and len(cameras) > 1 else ""
    label += f" {run['config']['bc_steps']} steps" if run["config"]["bc_steps"] != 1500 else ""
    chunk, execute = chunk_of(run)
    label += f" chunk {chunk} execute {execute}" if chunk != 1 else ""
    label += f" proprio {proprio_of(run)}" if proprio_of(run) != "all" else ""
    shift = run["config"]["image_shift"]
    label += f" shift {shift} px" if run["obs"] != "state" and shift != 4 else ""
    return label + (
        f" {image_size_of(run)} px images" if run["obs"] != "state" and image_size_of(run) != 84 else ""
    )


def image_size_of(run: dict) -> int:
    """A bc or fine-tuning cell's camera resolution (84, the default, where the row predates the field)."""
    return run["config"].get("image_size", 84)


def proprio_of(run: dict) -> str:
    """A bc cell's ``--proprio`` (the cells before the option read ``all``)."""
    return run["config"].get("proprio", "all")


def chunk_of(run: dict) -> tuple[int, int]:
    """A bc cell's (chunk, execute_steps); the first cells predate the fields and were (1, 1)."""
    return run["config"].get("chunk", 1), run["config"].get("execute_steps", 1)


def paired_gaps(bc: list[dict]) -> list[dict]:
    """Each vision observation set minus the privileged ``state`` BC on the same task, demos and seeds (the
    two train on the same demos, so a seed pairs them): the issue's "within 10 points of state BC"."""
    from gipo_robot.stats import paired_difference

    by_label: dict[tuple, dict[int, float]] = {}
    for r in bc:
        by_label.setdefault((r["task"], r["demos"], obs_label(r)), {})[r["seed"]] = r["success"]
    gaps = []
    for (task, demos, label), rates in sorted(by_label.items()):
        state = by_label.get((task, demos, "state"), {})
        seeds = sorted(set(rates) & set(state))
        if label.startswith("state") or not seeds:
            continue
        gap = paired_difference([rates[s] for s in seeds], [state[s] for s in seeds])
        gaps.append({"task": task, "demos": demos, "obs": label, "seeds": seeds, **gap})
    return gaps


def report(runs: list[dict]) -> None:
    """The tables of BENCHMARKS.md *vision* from the result file."""
    bc = [r for r in runs if r["kind"] == "bc"]
    for key in sorted({(r["task"], r["demos"], obs_label(r)) for r in bc}):
        cells = [r for r in bc if (r["task"], r["demos"], obs_label(r)) == key]
        cells.sort(key=lambda r: r["seed"])
        rates = [r["success"] for r in cells]
        std = statistics.stdev(rates) if len(rates) > 1 else 0.0
        per_seed = ", ".join(f"{r['success']:.2f} (s{r['seed']})" for r in cells)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {per_seed} | {statistics.mean(rates):.2f} ± {std:.2f} |")
    print("\n| task | demos | observation set − state | seeds | mean gap [95% bootstrap CI] "
          "| ahead / tied / behind |\n|---|---|---|---|---|---|")  # fmt: skip
    for g in paired_gaps(bc):
        ci = f" [{g['lo']:+.2f}, {g['hi']:+.2f}]" if g["n"] > 1 else ""
        seeds = ", ".join(map(str, g["seeds"]))
        print(f"| {g['task']} | {g['demos']} | {g['obs']} | {seeds} | {g['mean']:+.2f}{ci} "
              f"| {g['ahead']} / {g['tied']} / {g['behind']} |")  # fmt: skip
    for r in (r for r in runs if r["kind"] == "finetune"):
        minutes = r["wall_s"] / 60
        c = r["config"]
        variant = f" shift {c.get('image_shift', 4)} log-std {c.get('init_log_std', -2.5)}"
        variant += f" lr {c['policy_lr']:g} cameras {'+'.join(c.get('cameras', CAMERAS))}"
        variant += f" encoder {c.get('camera_encoder', 'finetune')}"
        variant += f" {image_size_of(r)} px images" if image_size_of(r) != 84 else ""
        print(f"finetune {r['task']} {r['demos']} demos seed {r['seed']} critic "
              f"{r.get('critic_obs', 'policy')}{variant}: {r['bc_success']:.2f} -> "
              f"{r['final_success']:.2f} in {r['env_steps']} env steps, {minutes:.0f} min")  # fmt: skip
    for r in (r for r in runs if r["kind"] == "failures"):
        print(f"failures {r['policy']}: success {r['success']:.2f}, no reach {r['no_reach']:.2f}, reached "
              f"not lifted {r['reached_not_lifted']:.2f}; closest approach (median) failed "
              f"{r['closest_failed_m']} m, succeeded {r['closest_success_m']} m")  # fmt: skip
    for r in (r for r in runs if r["kind"] == "collect"):
        before, after = (statistics.median(r[k]) for k in ("default_steps_per_s", "one_thread_steps_per_s"))
        print(f"collect {r['policy']} ({len(r['cameras'])} cameras): torch's {r['default_threads']} threads "
              f"{before:.0f} -> one thread {after:.0f} env steps/s ({r['ratio']:.1f}x)")  # fmt: skip
    for r in (r for r in runs if r["kind"] == "render"):
        print(f"render: {r['before_steps_per_s']:.0f} -> {r['after_steps_per_s']:.0f} env steps/s "
              f"({r['ratio']:.1f}x; one env fast {r['one_env_fast_steps_per_s']:.0f})")  # fmt: skip


def vision_json(runs: list[dict]) -> dict:
    """The issue's summary shape: {"bc": [...], "finetune": [...], "render": {...}}."""
    render = [r for r in runs if r["kind"] == "render"]
    return {
        "bc": [{**{k: r[k] for k in ("task", "demos", "seed", "obs", "success")}, "label": obs_label(r)}
               for r in runs if r["kind"] == "bc"],
        "finetune": [{**{k: r[k] for k in ("task", "seed", "bc_success", "final_success", "env_steps",
                                           "wall_s")}, "critic_obs": r.get("critic_obs", "policy")}
                     for r in runs if r["kind"] == "finetune"],
        "render": {k: render[-1][k] for k in ("before_steps_per_s", "after_steps_per_s")} if render else {},
    }  # fmt: skip


def main() -> None:
    from gipo_robot.train.config import CAMERA_ENCODER_MODES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["bc", "finetune", "render", "collect", "failures", "report"])
    parser.add_argument("--policy", type=Path, help="failures, collect: the policy checkpoint directory")
    parser.add_argument("--repeats", type=int, default=3, help="collect: alternations of the two settings")
    parser.add_argument("--tasks", nargs="+", default=["Lift"])
    parser.add_argument("--demos", nargs="+", type=int, default=[10, 20, 50])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--obs", nargs="+", default=["proprio+cameras", "state"])
    parser.add_argument("--only", help="bc: one cell TASK:DEMOS:SEED:OBS; finetune: TASK:DEMOS:SEED")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--cameras", nargs="+", default=list(CAMERAS), help="cameras the demos record")
    parser.add_argument("--image-shift", type=int, default=4)
    parser.add_argument("--image-pool", default="spatial_softmax", choices=["spatial_softmax", "mean"])
    parser.add_argument(
        "--proprio", default="all", choices=list(PROPRIO),
        help="proprioception a vision policy reads (eef: end-effector pose + gripper position, robomimic's)",
    )  # fmt: skip
    parser.add_argument("--bc-steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=1, help="bc: actions predicted per observation (H)")
    parser.add_argument(
        "--execute-steps", type=int, default=1, help="bc: actions of each chunk executed before re-planning"
    )
    parser.add_argument("--env-steps", type=int, default=50_000)
    parser.add_argument("--steps-per-env", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--policy-lr", type=float, default=3e-4)
    parser.add_argument("--replay-size", type=int, default=16)
    parser.add_argument(
        "--init-log-std", type=float, default=-2.5, help="finetune: exploration log-std to start at"
    )
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument(
        "--critic-obs",
        default="policy",
        choices=["policy", "state"],
        help="finetune: what the critic reads (state: the simulator's, object pose included)",
    )
    parser.add_argument(
        "--camera-encoder", default="finetune", choices=list(CAMERA_ENCODER_MODES),
        help="finetune: the policy's camera encoders learn at 0.1x its lr (finetune) or stay as BC left them",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not 1 <= args.execute_steps <= args.chunk:
        parser.error(f"--execute-steps must be in 1..--chunk ({args.chunk}), got {args.execute_steps}")

    runs = read_runs(args.out, missing_ok=True)
    if args.what == "report":
        report(runs)
        print(json.dumps(vision_json(runs), indent=1))
        return
    if args.what == "render":
        append_run(args.out, run_render_cell(args))
        return
    if args.what == "collect":
        if args.policy is None:
            parser.error("collect needs --policy DIR")
        append_run(args.out, run_collect_cell(args.policy, args.tasks[0], args.steps_per_env, args.repeats))
        return
    if args.what == "failures":
        if args.policy is None:
            parser.error("failures needs --policy DIR")
        done = {(r["policy"], len(r["episodes"])) for r in runs if r["kind"] == "failures"}
        if (str(args.policy), args.episodes) not in done:
            append_run(args.out, run_failures_cell(args.policy, args.episodes))
        return
    if args.what == "bc":
        done = {
            (r["task"], r["demos"], r["seed"], r["obs"])
            for r in runs
            if r["kind"] == "bc"
            and r["config"].get("image_pool") in (None, args.image_pool)
            and r["config"].get("cameras", list(CAMERAS)) == list(args.cameras)
            and r["config"]["bc_steps"] == args.bc_steps
            and chunk_of(r) == (args.chunk, args.execute_steps)
            and (r["obs"] == "state" or proprio_of(r) == args.proprio)
            and (r["obs"] == "state" or r["config"]["image_shift"] == args.image_shift)
            and (r["obs"] == "state" or image_size_of(r) == args.image_size)
        }
        cells = [(t, d, s, o) for t in args.tasks for d in args.demos for s in args.seeds for o in args.obs]
        if args.only:
            task, demos, seed, obs = args.only.split(":")
            cells = [(task, int(demos), int(seed), obs)]
        for cell in (c for c in cells if c not in done):
            print(f"bc cell {cell} ...", flush=True)
            append_run(args.out, run_bc_cell(*cell, args))
        return
    done = {  # a cell is (task, demos, seed) with what its critic reads (the first cells: the policy's)
        (r["task"], r["demos"], r["seed"]) for r in runs
        if r["kind"] == "finetune" and r.get("critic_obs", "policy") == args.critic_obs
        and r["config"].get("proprio", "all") == args.proprio
        and r["config"].get("image_shift", 4) == args.image_shift
        and r["config"].get("init_log_std", -2.5) == args.init_log_std
        and r["config"]["policy_lr"] == args.policy_lr
        and r["config"].get("cameras", list(CAMERAS)) == list(args.cameras)
        and r["config"].get("camera_encoder", "finetune") == args.camera_encoder
        and image_size_of(r) == args.image_size
    }  # fmt: skip
    cells = [(t, d, s) for t in args.tasks for d in args.demos for s in args.seeds]
    if args.only:
        task, demos, seed = args.only.split(":")
        cells = [(task, int(demos), int(seed))]
    for cell in (c for c in cells if c not in done):
        print(f"finetune cell {cell} ...", flush=True)
        append_run(args.out, run_finetune_cell(*cell, args))


if __name__ == "__main__":
    main()
