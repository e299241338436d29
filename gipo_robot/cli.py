"""The ``gipo-robot`` command line.

Every command that reports a result takes ``--json`` and then prints exactly one JSON object on stdout;
progress bars and logs go to stderr, so runs can be scripted (``gipo-robot CMD --json | jq``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="gipo-robot",
    help="Fine-tune robot imitation policies with GIPO from few, stale rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout; progress on stderr.")
]


def _emit(result: dict, as_json: bool, human: str) -> None:
    """Print the result: one JSON object on stdout, or the human summary."""
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        typer.echo(human)


def _error_exit(err: Exception, as_json: bool) -> typer.Exit:
    """Report an input error (``{"error": ...}`` on stdout under --json); return the exit to raise."""
    if as_json:
        sys.stdout.write(json.dumps({"error": str(err)}) + "\n")
    else:
        typer.echo(f"error: {err}", err=True)
    return typer.Exit(code=1)


@contextlib.contextmanager
def _stdout_to_stderr(enabled: bool):
    """While ``enabled``, anything printed by libraries goes to stderr, keeping stdout for the JSON object."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


@app.command()
def objectives(as_json: JsonFlag = False) -> None:
    """List the policy objectives and their default parameters."""
    import inspect

    from gipo_robot.objectives import OBJECTIVES

    table = {}
    for name, fn in OBJECTIVES.items():
        params = inspect.signature(fn).parameters.values()
        table[name] = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    human = "\n".join(
        f"{name:10s} {', '.join(f'{k}={v}' for k, v in ps.items())}" for name, ps in table.items()
    )
    _emit({"objectives": table}, as_json, human)


@app.command("bias-variance")
def bias_variance(
    out: Annotated[Path, typer.Option(help="Folder for bias_variance.json and bias_variance.png.")] = Path(
        "runs/bias_variance"
    ),
    pairs: Annotated[int, typer.Option(min=1, help="Random (π, μ) pairs per divergence level.")] = 500,
    seed: int = 0,
    as_json: JsonFlag = False,
) -> None:
    """Exact bias–variance study of every objective on a 2×2 GridWorld (the GIPO paper's analysis)."""
    from tqdm import tqdm

    from gipo_robot.bias_variance import StudyConfig, plot_frontiers, run_study

    config = StudyConfig(n_pairs=pairs, seed=seed)
    with (
        _stdout_to_stderr(as_json),
        tqdm(total=len(config.deltas), desc="bias-variance", file=sys.stderr) as bar,
    ):
        result = run_study(config, progress=lambda done: bar.update(done - bar.n))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bias_variance.json").write_text(json.dumps(result, indent=1))
    plot_frontiers(result, str(out / "bias_variance.png"))
    summary = _bias_variance_summary(result)
    summary["files"] = {"json": str(out / "bias_variance.json"), "png": str(out / "bias_variance.png")}
    _emit(summary, as_json, _bias_variance_table(summary))


def _bias_variance_summary(result: dict) -> dict:
    levels = []
    for lv in result["levels"]:
        levels.append(
            {
                "delta": lv["delta"],
                "kl": lv["kl_mean"],
                "best_mse_n16": lv["best_mse"]["16"],
                "frac_baselines_above_gipo_frontier": lv["frac_baselines_above_gipo_frontier"],
            }
        )
    return {"levels": levels}


def _bias_variance_table(summary: dict) -> str:
    families = list(summary["levels"][0]["best_mse_n16"])
    lines = ["best relative gradient MSE over each family's sweep (N=16), by staleness:"]
    lines.append(f"{'KL(μ‖π)':>9s} " + " ".join(f"{f:>12s}" for f in families))
    for lv in summary["levels"]:
        lines.append(f"{lv['kl']:9.3f} " + " ".join(f"{lv['best_mse_n16'][f]:12.3g}" for f in families))
    if "files" in summary:
        lines.append(f"frontiers: {summary['files']['png']}")
    return "\n".join(lines)


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(help="Run folder for the quickstart's artifacts.")] = Path(
        "runs/quickstart"
    ),
    smoke: Annotated[
        bool, typer.Option(help="CI-sized run: every stage, tiny sizes, no learning claim.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Scripted Lift demos -> behaviour cloning -> GIPO fine-tuning on stale replay -> before/after table."""
    from gipo_robot.train.quickstart import QuickstartConfig, run_quickstart

    config = QuickstartConfig.smoke() if smoke else QuickstartConfig()
    with _stdout_to_stderr(as_json):
        summary = run_quickstart(config, out, log=lambda m: typer.echo(m, err=True))
    bc, ft = summary["bc"], summary["finetuned"]
    rows = [
        f"{'policy':<28s} {'success':>8s}   95% CI",
        f"{'BC (' + str(summary['demos']) + ' demos)':<28s} {bc['success_rate']:>8.0%}   "
        f"{bc['success_ci95'][0]:.0%}-{bc['success_ci95'][1]:.0%}",
        f"{'+ ' + summary['objective'] + ' (' + str(summary['env_steps']) + ' steps)':<28s} "
        f"{ft['success_rate']:>8.0%}   {ft['success_ci95'][0]:.0%}-{ft['success_ci95'][1]:.0%}",
        f"({summary['eval_episodes']} episodes each, same held-out seeds; {summary['wall_s'] / 60:.1f} min)",
        f"learning curve: {summary['files']['png']}",
    ]
    summary.pop("config")
    _emit(summary, as_json, "\n".join(rows))


@app.command()
def finetune(
    policy: Annotated[Path, typer.Option(help="Pretrained policy checkpoint (e.g. from train-bc).")],
    task: Annotated[str, typer.Option(help="Simulated task.")] = "Lift",
    objective: Annotated[str, typer.Option(help="gipo, ppo_clip, sapo, no_clip or cispo.")] = "gipo",
    replay_size: Annotated[
        int, typer.Option(min=1, help="K: rollout batches kept (1 = near on-policy).")
    ] = 4,
    env_steps: Annotated[int, typer.Option(min=1, help="Environment steps to collect.")] = 200_000,
    sigma: Annotated[float | None, typer.Option(help="GIPO's σ (default 1.0).")] = None,
    eps: Annotated[float | None, typer.Option(help="PPO-Clip's ε (default 0.2).")] = None,
    num_envs: Annotated[int, typer.Option(min=1)] = 2,
    policy_lr: float = 3e-5,
    init_log_std: Annotated[float | None, typer.Option(help="Exploration log-std at the start.")] = -2.5,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/finetune"),
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")] = False,
    seed: int = 0,
    backend: Annotated[str, typer.Option(help="Rollout envs: subprocess, sync or ray.")] = "subprocess",
    workers: Annotated[int, typer.Option(min=1, help="Ray rollout workers (--backend ray).")] = 1,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join ('auto', 'ray://host:10001'); default: local Ray.")
    ] = None,
    async_collection: Annotated[
        bool, typer.Option(help="Ray workers collect with the weights they have while the learner updates.")
    ] = False,
    max_lag: Annotated[
        int, typer.Option(min=0, help="Async collection drops batches more than this many versions old.")
    ] = 8,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a policy with GIPO (or a baseline) on the last K rollout batches; learning curve PNG."""
    from gipo_robot.policies import CheckpointError
    from gipo_robot.sim import SimError
    from gipo_robot.train.finetune import FinetuneConfig, FinetuneError
    from gipo_robot.train.finetune import finetune as run_finetune

    params = {}
    if sigma is not None:
        params["sigma"] = sigma
    if eps is not None:
        params["eps"] = eps
    try:
        config = FinetuneConfig(
            task=task, objective=objective, objective_params=params, replay_size=replay_size,
            env_steps=env_steps, num_envs=num_envs, policy_lr=policy_lr, init_log_std=init_log_std, seed=seed,
            backend=backend, workers=workers, ray_address=address, async_collection=async_collection,
            max_lag=max_lag,
        )  # fmt: skip
        with _stdout_to_stderr(as_json):
            history = run_finetune(config, policy, out, resume=resume)
    except (CheckpointError, FinetuneError, SimError, ImportError, ValueError, KeyError) as err:
        raise _error_exit(err, as_json) from None
    evals = [r for r in history if "eval_success" in r]
    summary = {
        "run": str(out),
        "objective": objective,
        "replay_size": replay_size,
        "env_steps": history[-1]["env_steps"] if history else 0,
        "final_success": evals[-1]["eval_success"] if evals else None,
        "curve": [[r["env_steps"], r["eval_success"]] for r in evals],
        "files": {"metrics": str(out / "metrics.csv"), "png": str(out / "learning_curve.png")},
    }
    human = (
        f"{objective} K={replay_size}: final success {summary['final_success']} after "
        f"{summary['env_steps']} env steps\nlearning curve: {summary['files']['png']}"
    )
    _emit(summary, as_json, human)


@app.command()
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Fine-tuning run directories to compare.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("learning_curves.png"),
    as_json: JsonFlag = False,
) -> None:
    """Learning curves (success vs env steps) of several fine-tuning runs in one PNG."""
    from gipo_robot.train.plot import plot_runs

    try:
        plot_runs(runs, out)
    except FileNotFoundError as err:
        raise _error_exit(err, as_json) from None
    _emit({"png": str(out), "runs": [str(r) for r in runs]}, as_json, f"wrote {out}")


@app.command("train-bc")
def train_bc(
    store: Annotated[Path, typer.Argument(help="Episode store (.zarr) with obs.* features and action.")],
    out: Annotated[Path, typer.Option(help="Checkpoint directory to write.")] = Path("runs/bc"),
    chunk: Annotated[int, typer.Option(min=1, help="Actions predicted per observation (H).")] = 4,
    steps: Annotated[int, typer.Option(min=1, help="Gradient steps.")] = 3000,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    lr: float = 1e-3,
    hidden: Annotated[str, typer.Option(help="Comma-separated MLP sizes.")] = "256,256",
    success_only: Annotated[bool, typer.Option(help="Train only on successful episodes.")] = False,
    seed: int = 0,
    as_json: JsonFlag = False,
) -> None:
    """Behaviour cloning: fit a Gaussian chunk policy to a store's episodes; writes checkpoint + loss PNG."""
    from gipo_robot.datasets import DatasetError, open_dataset
    from gipo_robot.policies.bc import BCConfig
    from gipo_robot.policies.bc import train_bc as run_bc

    try:
        config = BCConfig(
            chunk=chunk,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            hidden=[int(h) for h in hidden.split(",") if h.strip()],
            success_only=success_only,
            seed=seed,
        )
        with _stdout_to_stderr(as_json):
            result = run_bc(open_dataset(store), config, out=out)
    except (DatasetError, ValueError) as err:
        raise _error_exit(err, as_json) from None
    final = result.history[-1] if result.history else {}
    summary = {
        "checkpoint": str(out),
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "train_nll": final.get("train_nll"),
        "val_nll": final.get("val_nll"),
        "train_episodes": len(result.train_episodes),
        "val_episodes": len(result.val_episodes),
        "wall_s": result.wall_s,
        "loss_curve": str(out / "loss_curve.png"),
    }
    human = (
        f"trained on {summary['train_episodes']} episodes ({summary['val_episodes']} held out) "
        f"in {result.wall_s:.0f} s; best step {result.best_step}, val NLL {summary['val_nll']}\n"
        f"checkpoint: {out}  loss curve: {summary['loss_curve']}"
    )
    _emit(summary, as_json, human)


@app.command("eval")
def eval_policy(
    policy: Annotated[Path, typer.Argument(help="Policy checkpoint directory.")],
    task: Annotated[str, typer.Option(help="Simulated task (Lift, Can, Square, Stack).")] = "Lift",
    episodes: Annotated[int, typer.Option(min=1)] = 50,
    seed: Annotated[int, typer.Option(help="First evaluation seed (episode i uses seed + i).")] = 1_000_000,
    horizon: Annotated[int | None, typer.Option(help="Episode length limit; default: the task's.")] = None,
    sample: Annotated[bool, typer.Option(help="Sample actions instead of using the mean.")] = False,
    videos: Annotated[int, typer.Option(min=0, help="Record this many episodes as MP4.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Folder for eval.json and videos.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Success rate (with a 95% interval), mean return and length of a policy on a simulated task."""
    from gipo_robot.loops.evaluate import evaluate
    from gipo_robot.policies import CheckpointError, load_policy
    from gipo_robot.policies.checkpoint import check_spec
    from gipo_robot.sim import make_env

    out = out or policy / f"eval_{task}"
    try:
        pol = load_policy(policy)  # a bad checkpoint fails before robosuite starts
        with _stdout_to_stderr(as_json):
            env = make_env(task, horizon=horizon, render_mode="rgb_array" if videos else None)
            spec = env.robot_spec
            try:
                low_dim = {k: list(v) for k, v in spec.obs_shapes.items()}
                check_spec(
                    pol.config, low_dim=low_dim, action_dim=spec.action_dim, where=f"policy at {policy}"
                )
                result = evaluate(
                    pol,
                    env,
                    episodes,
                    seed=seed,
                    deterministic=not sample,
                    video_dir=out / "videos" if videos else None,
                    video_episodes=videos,
                    fps=spec.control_hz,
                )
            finally:
                env.close()
    except (CheckpointError, ValueError, KeyError) as err:
        raise _error_exit(err, as_json) from None
    summary = {"task": task, "policy": str(policy), **result.to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(summary, indent=1))
    lo, hi = result.success_ci95
    human = (
        f"{task}: success {result.success_rate:.0%} (95% CI {lo:.0%}-{hi:.0%}) over {episodes} episodes, "
        f"mean return {result.mean_return:.2f}, mean length {result.mean_length:.0f}"
        + (f"\nvideos: {', '.join(result.videos)}" if result.videos else "")
    )
    _emit(summary, as_json, human)


@app.command("deploy")
def deploy_command(
    policy: Annotated[Path, typer.Argument(help="Policy checkpoint directory.")],
    robot: Annotated[
        str, typer.Option(help="sim:<Task>[?option=value&...] or a .json/.toml robot config file.")
    ],
    out: Annotated[
        Path, typer.Option(help="Episode store to record into (appended to if it exists).")
    ] = Path("deploy.zarr"),
    episodes: Annotated[int, typer.Option(min=1)] = 1,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Steps per episode at most; needed by real arms.")
    ] = None,
    execute_steps: Annotated[
        int | None, typer.Option(min=1, help="Actions of each chunk executed before re-planning.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Episode i resets with seed + i (sim).")] = 1_000_000,
    task: Annotated[str, typer.Option(help="Task name recorded with each episode.")] = "",
    safety: Annotated[Path | None, typer.Option(help="JSON file of SafetyConfig fields.")] = None,
    realtime: Annotated[
        bool, typer.Option(help="Pace at the robot's control rate; --no-realtime: sim only, flat out.")
    ] = True,
    rt_priority: Annotated[
        int | None, typer.Option(min=1, max=99, help="Run the loop SCHED_FIFO at this priority (Linux).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a policy on a robot behind the safety guard, recording every step; reports loop jitter."""
    from gipo_robot.datasets import DatasetError
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.hardware.robot import RobotError
    from gipo_robot.hardware.safety import SafetyConfig
    from gipo_robot.loops.actor import check_policy_fits
    from gipo_robot.loops.deploy import DeployConfig, open_deploy_store
    from gipo_robot.loops.deploy import deploy as run_deploy
    from gipo_robot.policies import CheckpointError, load_policy

    arm = None
    try:
        pol = load_policy(policy)  # a bad checkpoint fails before any robot starts
        safety_config = SafetyConfig()
        if safety is not None:
            try:
                data = json.loads(safety.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise ValueError(f"safety config {safety}: {err}") from err
            safety_config = SafetyConfig.from_dict(data, source=str(safety))
        config = DeployConfig(
            episodes=episodes,
            max_steps=max_steps,
            execute_steps=execute_steps,
            seed=seed,
            task=task,
            realtime=realtime,
            rt_priority=rt_priority,
            safety=safety_config,
        )
        with _stdout_to_stderr(as_json):
            arm = load_robot(robot)
            check_policy_fits(pol.config, arm.spec, where=f"policy at {policy}")
            store = open_deploy_store(out, arm.spec)
            result = run_deploy(
                pol, arm, store, config, policy_name=str(policy), log=lambda m: typer.echo(m, err=True)
            )
    except (CheckpointError, ValueError, DatasetError, RobotError) as err:
        raise _error_exit(err, as_json) from None
    finally:
        close = getattr(arm, "close", None)
        if callable(close):
            close()
    summary = {"policy": str(policy), "robot": robot, "out": str(out), **result.to_dict()}
    t = summary["timing"]
    human = (
        f"{summary['episodes_run']} episodes, {summary['successes']} successful, {summary['steps']} steps "
        f"-> {out}\nloop at {1e3 / t['period_ms']:.0f} Hz: period error p50 {t['p50_period_error_ms']} ms, "
        f"p99 {t['p99_period_error_ms']} ms, {t['missed']} missed deadlines; "
        f"guard interventions {summary['interventions']}"
        + (f"\nstopped by: {summary['error']}" if summary["error"] else "")
    )
    _emit(summary, as_json, human)


def _write_thumbnail(store, target: Path, episodes: int = 8) -> str | None:
    """PNG grid of the first frame of up to ``episodes`` episodes (rows) for every camera (columns)."""
    import imagecodecs
    import numpy as np

    cameras = [f for f in store.schema.features if f.kind == "image"]
    if not cameras or store.n_episodes == 0:
        return None
    height = max(f.shape[0] for f in cameras)
    width = sum(f.shape[1] for f in cameras)
    rows = []
    for i in range(min(episodes, store.n_episodes)):
        start, _ = store.episode_bounds(i)
        frames = store.read_steps(start, start + 1, [f.name for f in cameras])
        row = np.zeros((height, width, 3), np.uint8)
        x = 0
        for f in cameras:
            frame = frames[f.name][0]
            frame = np.repeat(frame[..., :1], 3, axis=-1) if frame.shape[-1] != 3 else frame
            row[: f.shape[0], x : x + f.shape[1]] = frame
            x += f.shape[1]
        rows.append(row)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(imagecodecs.png_encode(np.concatenate(rows)))
    return str(target)


@app.command()
def info(
    store: Annotated[
        Path, typer.Argument(help="An episode store (.zarr folder) or a Diffusion Policy replay buffer.")
    ],
    thumbnail: Annotated[
        Path | None, typer.Option(help="Write a PNG of the first frame of the first episodes per camera.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Summarise an episode store: episodes, steps, success rate, sources, features, size on disk."""
    from gipo_robot.datasets import DatasetError, open_dataset

    try:
        opened = open_dataset(store)
        result = opened.info()
        if thumbnail is not None:
            result["thumbnail"] = _write_thumbnail(opened, thumbnail)
    except DatasetError as err:
        raise _error_exit(err, as_json) from err
    rate = "n/a" if result["success_rate"] is None else f"{result['success_rate']:.0%}"
    lines = [
        f"{result['path']}: {result['episodes']} episodes, {result['steps']} steps at {result['fps']:g} Hz, "
        f"{result['size_bytes'] / 1e6:.1f} MB",
        f"success rate {rate}; sources " + ", ".join(f"{k} {v}" for k, v in result["sources"].items()),
    ]
    for name, spec in result["features"].items():
        lines.append(f"  {name:28s} {spec['kind']:8s} {spec['dtype']:8s} {tuple(spec['shape'])}")
    if result.get("thumbnail"):
        lines.append(f"thumbnail: {result['thumbnail']}")
    _emit(result, as_json, "\n".join(lines))


@app.command()
def convert(
    src: Annotated[
        Path,
        typer.Argument(
            help="robomimic .hdf5 file, episode store (.zarr), Diffusion Policy / UMI replay_buffer.zarr, "
            "or LeRobot dataset folder (meta/info.json)."
        ),
    ],
    dst: Annotated[Path, typer.Argument(help="Episode store to create, or .hdf5 file to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace DST if it exists.")] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Export an episode store as 'lerobot' (a LeRobot v3.0 dataset folder)."),
    ] = None,
    video: Annotated[
        bool, typer.Option(help="With --to lerobot: cameras as mp4 (lossy, small), not PNG (lossless).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Convert robomimic HDF5, a Diffusion Policy replay buffer or a LeRobot dataset to the Zarr episode
    store, or a store to robomimic HDF5 (or to LeRobot with --to lerobot); the direction comes from the
    suffixes and the source's layout."""
    from gipo_robot.datasets import DatasetError, detect_format, import_dataset, open_dataset
    from gipo_robot.datasets.from_lerobot import store_to_lerobot
    from gipo_robot.datasets.from_robomimic import store_to_robomimic
    from gipo_robot.datasets.importers import EPISODE_STORE, reads_in_place

    hdf5 = (".hdf5", ".h5")
    start = time.perf_counter()
    try:
        if to not in (None, "lerobot"):
            raise DatasetError(f"--to {to!r} is not a known target; known: lerobot", path=dst)
        fmt = detect_format(src)
        export = to == "lerobot" or (dst.suffix in hdf5 and reads_in_place(fmt))
        if fmt != EPISODE_STORE and not export:
            store = import_dataset(src, dst, fmt=fmt, overwrite=overwrite)
            direction = f"{fmt}->zarr"
        elif to == "lerobot":
            store = open_dataset(src)
            store_to_lerobot(store, dst, video=video, overwrite=overwrite)
            direction = "zarr->lerobot"
        elif dst.suffix in hdf5:
            store = open_dataset(src)
            store_to_robomimic(store, dst, overwrite=overwrite)
            direction = "zarr->robomimic"
        else:
            raise DatasetError(
                "cannot tell the direction: the source is already an episode store, so DST must be a "
                "robomimic .hdf5/.h5 file, or pass --to lerobot",
                path=src,
            )
    except DatasetError as err:
        raise _error_exit(err, as_json) from err
    size = (
        sum(p.stat().st_size for p in dst.rglob("*") if p.is_file()) if dst.is_dir() else dst.stat().st_size
    )
    result = {
        "src": str(src),
        "dst": str(dst),
        "direction": direction,
        "episodes": store.n_episodes,
        "steps": store.n_steps,
        "size_bytes": size,
        "seconds": time.perf_counter() - start,
    }
    human = (
        f"{direction}: {result['episodes']} episodes, {result['steps']} steps -> {dst} ({size / 1e6:.1f} MB)"
    )
    _emit(result, as_json, human)


@app.command()
def record(
    robot: Annotated[str, typer.Option(help="sim:TASK[?cameras=...&image_size=...] or a robot config file.")],
    out: Annotated[Path, typer.Option(help="Episode store to create, or to append to if it exists.")],
    device: Annotated[str, typer.Option(help="keyboard, spacemouse, leader or scripted.")] = "keyboard",
    task: Annotated[str, typer.Option(help="Task name or instruction stored with each episode.")] = "",
    episodes: Annotated[int, typer.Option(min=1, help="Stop after saving this many episodes.")] = 1,
    max_seconds: Annotated[float | None, typer.Option(help="Per-episode time limit, s (then saved).")] = None,
    fps: Annotated[float | None, typer.Option(help="Control rate, Hz; default: the robot's.")] = None,
    realtime: Annotated[bool, typer.Option(help="Pace at --fps (off: as fast as the sim steps).")] = True,
    policy: Annotated[Path | None, typer.Option(help="Policy checkpoint that drives (takeover: t).")] = None,
    leader: Annotated[str | None, typer.Option(help="--device leader: leader arm robot config.")] = None,
    leader_map: Annotated[Path | None, typer.Option(help="--device leader: joint mapping JSON/TOML.")] = None,
    noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="--device scripted: expert noise.")] = 0.0,
    replay: Annotated[Path | None, typer.Option(help="--device scripted: replay a store's actions.")] = None,
    script: Annotated[
        str | None,
        typer.Option(help='--device scripted: operator events, JSON {"attempt": {"step": ["discard"]}}.'),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sim: attempt i resets with seed + i.")] = None,
    rt_priority: Annotated[
        int | None,
        typer.Option(min=1, max=99, help="Run the recording loop as a SCHED_FIFO thread at this priority."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record demonstrations by teleoperation (keyboard, SpaceMouse, leader arm) or a scripted operator."""
    from gipo_robot.datasets import DatasetError
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.hardware.pacing import realtime_priority
    from gipo_robot.loops.actor import PolicyActor
    from gipo_robot.loops.record import RecorderConfig
    from gipo_robot.loops.record import record as run_record
    from gipo_robot.policies import CheckpointError
    from gipo_robot.teleop.devices import DEVICES, TeleopError, make_device

    try:
        if device not in DEVICES:
            raise ValueError(f"unknown --device {device!r}; known: {', '.join(DEVICES)}")
        config = RecorderConfig(
            out=str(out), task=task, episodes=episodes, max_seconds=max_seconds, fps=fps, realtime=realtime,
            seed=seed,
        )  # fmt: skip
        options: dict = {}
        if device == "scripted":
            options = {"noise": noise, "seed": seed or 0, "replay": replay}
            if script is not None:
                try:
                    options["events"] = json.loads(script)
                except ValueError as err:
                    raise ValueError(f"--script is not valid JSON: {err}") from None
        elif device == "leader":
            if leader is None:
                raise ValueError("--device leader needs --leader CONFIG (the leader arm's robot config)")
            options = {"leader": leader, "mapping": leader_map}
        if device in ("spacemouse", "leader") and max_seconds is None and not sys.stdin.isatty():
            raise ValueError(
                f"--device {device} without a terminal for the event keys needs --max-seconds "
                "(episodes then end at the time limit)"
            )
        if device in ("spacemouse", "leader") and sys.stdin.isatty():
            from gipo_robot.teleop.keyboard import KeyboardDevice

            options["events"] = None  # filled below, once the follower's spec is known
        with _stdout_to_stderr(True):
            follower = load_robot(robot)
            if "events" in options and options["events"] is None:
                options["events"] = KeyboardDevice(follower.spec)
            if not config.task and follower.spec.name.startswith("sim:"):
                config.task = follower.spec.name[4:]
            try:
                operator = make_device(device, follower, **options)
                driver = None
                if policy is not None:
                    driver = PolicyActor.load(policy, follower.spec, where="--policy")
                with realtime_priority(rt_priority):
                    result = run_record(follower, operator, config, policy=driver)
            finally:
                close = getattr(follower, "close", None)
                if callable(close):
                    close()
    except (DatasetError, TeleopError, CheckpointError, ValueError) as err:
        raise _error_exit(err, as_json) from None
    summary = {"out": str(out), "device": device, **result.to_dict()}
    human = (
        f"saved {len(result.saved)} episode(s) ({result.successes} successful), "
        f"discarded {result.discarded}, {result.steps} steps, {result.dropped_frames} dropped frames; "
        f"session ended: {result.ended}; "
        f"{out} now holds {result.store_episodes} episodes"
    )
    _emit(summary, as_json, human)
    if result.ended == "estop":
        raise typer.Exit(code=2)


@app.command("collect-demos")
def collect_demos_command(
    task: Annotated[str, typer.Option(help="Lift, Can or Stack.")] = "Lift",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to record.")] = 50,
    noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="Expert suboptimality in [0, 1].")] = 0.0,
    out: Annotated[Path, typer.Option(help="Zarr episode store to create.")] = Path("demos.zarr"),
    seed: Annotated[int, typer.Option(help="Seed of the first episode; episode i uses seed + i.")] = 0,
    camera: Annotated[
        list[str] | None, typer.Option(help="Also record this camera's images (repeatable), e.g. agentview.")
    ] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Camera image side, pixels.")] = 84,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing store at --out.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Record scripted-expert demonstrations of a robosuite task into a Zarr episode store."""
    import numpy as np
    from tqdm import tqdm

    from gipo_robot.sim.experts import record_demos
    from gipo_robot.sim.robosuite_env import make_env

    start = time.perf_counter()
    successes, lengths = [], []
    with _stdout_to_stderr(True):
        env = make_env(task, cameras=tuple(camera or ()), image_size=image_size)
        task = env.config.task  # robosuite aliases resolved
        try:
            with tqdm(total=episodes, desc=f"collect {task}", file=sys.stderr) as bar:

                def count(ep: dict) -> None:
                    successes.append(ep["episode_success"])
                    lengths.append(len(ep["action"]))
                    bar.update(1)
                    bar.set_postfix(success=f"{np.mean(successes):.0%}")

                record_demos(
                    out, task, episodes, noise, seed, env=env, overwrite=overwrite, on_episode=count
                )
        finally:
            env.close()
    result = {
        "task": task,
        "episodes": episodes,
        "noise": noise,
        "success_rate": float(np.mean(successes)),
        "successes": int(np.sum(successes)),
        "mean_length": float(np.mean(lengths)),
        "steps": int(np.sum(lengths)),
        "out": str(out),
        "seconds": time.perf_counter() - start,
    }
    human = (
        f"{task}: {result['successes']}/{episodes} successful demos "
        f"({result['success_rate']:.0%}, noise {noise}), {result['steps']} steps -> {out}"
    )
    _emit(result, as_json, human)


@app.command("virtual-arm")
def virtual_arm(
    protocol: Annotated[str, typer.Option(help="Servo protocol: feetech (STS3215) or dynamixel (XL330).")] = (
        "feetech"
    ),
    config_out: Annotated[
        Path | None, typer.Option(help="Write a ready robot config (JSON) for this arm here.")
    ] = None,
    corrupt: Annotated[float, typer.Option(help="Probability of a corrupted reply checksum.")] = 0.0,
    drop: Annotated[float, typer.Option(help="Probability of a dropped reply.")] = 0.0,
    delay_ms: Annotated[float, typer.Option(help="Added delay before every reply, ms.")] = 0.0,
) -> None:
    """Emulate a 6-joint servo arm on a pseudo-terminal (real protocol bytes, MuJoCo joints) until Ctrl-C.

    Drive it with any command that takes --robot, e.g. `gipo-robot deploy POLICY --robot arm.json`.
    """
    from gipo_robot.hardware.emulators.virtual_bus import (
        FaultConfig,
        VirtualArmConfig,
        robot_config_for,
        serve,
    )

    try:
        faults = FaultConfig(corrupt_prob=corrupt, drop_prob=drop, reply_delay_s=delay_ms / 1000)
        config = VirtualArmConfig(protocol=protocol, faults=faults)
    except ValueError as err:
        raise _error_exit(err, False) from err

    def ready(port: str) -> None:
        robot_config = robot_config_for(config, port)
        if config_out is not None:
            config_out.write_text(json.dumps(robot_config, indent=2))
        typer.echo(
            f"virtual {protocol} arm on {port}" + (f"; robot config: {config_out}" if config_out else "")
        )
        typer.echo("Ctrl-C to stop", err=True)

    counters = serve(config, on_ready=ready)
    typer.echo(json.dumps(counters), err=True)


@app.command("virtual-rosbridge")
def virtual_rosbridge(
    port: Annotated[int, typer.Option(help="Websocket port on 127.0.0.1.")] = 9090,
    command_type: Annotated[
        str, typer.Option(help="trajectory_msgs/JointTrajectory or std_msgs/Float64MultiArray.")
    ] = "trajectory_msgs/JointTrajectory",
    publish_hz: Annotated[float, typer.Option(help="JointState messages per second.")] = 50.0,
) -> None:
    """Serve the rosbridge protocol on loopback in front of a simulated 6-joint arm until Ctrl-C.

    A stand-in for `roslaunch rosbridge_server rosbridge_websocket.launch` to rehearse a ROS robot config.
    """
    from gipo_robot.hardware.emulators.virtual_rosbridge import VirtualRosbridgeConfig, serve

    try:
        config = VirtualRosbridgeConfig(port=port, command_type=command_type, publish_hz=publish_hz)
    except ValueError as err:
        raise _error_exit(err, False) from err
    typer.echo(f"virtual rosbridge on ws://{config.host}:{config.port} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        serve(config)
