"""``gipo-robot`` commands that train and measure policies: objectives, bias-variance, quickstart,
finetune, plot, train-bc, eval."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gipo_robot.cli.common import JsonFlag, app, emit, error_exit, given_on_command_line, stdout_to_stderr
from gipo_robot.train.config import FinetuneConfig


@app.command()
def objectives(as_json: JsonFlag = False) -> None:
    """List the policy objectives and their default parameters."""
    from gipo_robot.objectives import OBJECTIVES, objective_params

    table = {name: objective_params(name) for name in OBJECTIVES}
    human = "\n".join(
        f"{name:10s} {', '.join(f'{k}={v}' for k, v in ps.items())}" for name, ps in table.items()
    )
    emit({"objectives": table}, as_json, human)


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
        stdout_to_stderr(as_json),
        tqdm(total=len(config.deltas), desc="bias-variance", file=sys.stderr) as bar,
    ):
        result = run_study(config, progress=lambda done: bar.update(done - bar.n))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bias_variance.json").write_text(json.dumps(result, indent=1))
    plot_frontiers(result, str(out / "bias_variance.png"))
    summary = _bias_variance_summary(result)
    summary["files"] = {"json": str(out / "bias_variance.json"), "png": str(out / "bias_variance.png")}
    emit(summary, as_json, _bias_variance_table(summary))


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
    with stdout_to_stderr(as_json):
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
    emit(summary, as_json, "\n".join(rows))


#: FinetuneConfig's defaults: the flags below show and use them (the dataclass is the single source).
FT = {f.name: f.default for f in dataclasses.fields(FinetuneConfig)}
#: Flags that set a FinetuneConfig field of the same name (``address`` sets ``ray_address``).
FT_FLAGS = {
    "task": "task", "objective": "objective", "replay_size": "replay_size", "env_steps": "env_steps",
    "num_envs": "num_envs", "policy_lr": "policy_lr", "init_log_std": "init_log_std", "seed": "seed",
    "backend": "backend", "workers": "workers", "address": "ray_address",
    "async_collection": "async_collection", "max_lag": "max_lag", "demo_store": "demo_store",
}  # fmt: skip
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="Start from a saved run's config.json; typed flags override it."),
]
ObjectiveParam = Annotated[
    list[str] | None,
    typer.Option(
        help="The objective's parameter as NAME=VALUE, e.g. sigma=0.5 (repeatable; see objectives)."
    ),
]
SetField = Annotated[
    list[str] | None,
    typer.Option("--set", help="Any other FinetuneConfig field as NAME=VALUE, e.g. epochs=8 (repeatable)."),
]


@app.command()
def finetune(
    ctx: typer.Context,
    policy: Annotated[Path, typer.Option(help="Pretrained policy checkpoint (e.g. from train-bc).")],
    config_file: ConfigFile = None,
    task: Annotated[str, typer.Option(help="Simulated task.")] = FT["task"],
    objective: Annotated[str, typer.Option(help="gipo, ppo_clip, sapo, no_clip or cispo.")] = FT["objective"],
    objective_param: Annotated[
        list[str] | None,
        typer.Option(
            help="The objective's parameter as NAME=VALUE, e.g. sigma=0.5 (repeatable; see objectives)."
        ),
    ] = None,
    replay_size: Annotated[
        int, typer.Option(min=1, help="K: rollout batches kept (1 = near on-policy).")
    ] = FT["replay_size"],
    env_steps: Annotated[
        int, typer.Option(min=1, help="Environment steps to collect (rounded up to whole iterations).")
    ] = FT["env_steps"],
    num_envs: Annotated[int, typer.Option(min=1)] = FT["num_envs"],
    policy_lr: float = FT["policy_lr"],
    init_log_std: Annotated[float | None, typer.Option(help="Exploration log-std at the start.")] = FT[
        "init_log_std"
    ],
    seed: int = FT["seed"],
    backend: Annotated[str, typer.Option(help="Rollout envs: subprocess, sync or ray.")] = FT["backend"],
    workers: Annotated[int, typer.Option(min=1, help="Ray rollout workers (--backend ray).")] = FT["workers"],
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join ('auto', 'ray://host:10001'); default: local Ray.")
    ] = FT["ray_address"],
    async_collection: Annotated[
        bool, typer.Option(help="Ray workers collect with the weights they have while the learner updates.")
    ] = FT["async_collection"],
    max_lag: Annotated[
        int, typer.Option(min=0, help="Async collection drops batches more than this many versions old.")
    ] = FT["max_lag"],
    demo_store: Annotated[
        str | None, typer.Option(help="Demonstrations for the BC term (with --set bc_coef=...).")
    ] = FT["demo_store"],
    set_field: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Any other FinetuneConfig field as NAME=VALUE, e.g. epochs=8 (repeatable)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/finetune"),
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a policy with GIPO (or a baseline) on the last K rollout batches; learning curve PNG.
    Every setting is a FinetuneConfig field, saved as RUN/config.json (--config starts it again)."""
    flags = dict(locals())  # every flag by parameter name, before anything else is defined here
    from gipo_robot.policies import CheckpointError
    from gipo_robot.sim import SimError
    from gipo_robot.train.finetune import FinetuneError
    from gipo_robot.train.finetune import finetune as run_finetune

    try:
        config = _finetune_config(ctx, config_file, flags)
        with stdout_to_stderr(as_json):
            history = run_finetune(config, policy, out, resume=resume)
    except (CheckpointError, FinetuneError, SimError, ImportError, ValueError, KeyError) as err:
        raise error_exit(err, as_json) from None
    evals = [r for r in history if "eval_success" in r]
    summary = {
        "run": str(out),
        "objective": config.objective,
        "objective_params": config.objective_params,
        "replay_size": config.replay_size,
        "env_steps": history[-1]["env_steps"] if history else 0,
        "final_success": evals[-1]["eval_success"] if evals else None,
        "curve": [[r["env_steps"], r["eval_success"]] for r in evals],
        "files": {"metrics": str(out / "metrics.csv"), "png": str(out / "learning_curve.png"),
                  "config": str(out / "config.json")},
    }  # fmt: skip
    human = (
        f"{config.objective} K={config.replay_size}: final success {summary['final_success']} after "
        f"{summary['env_steps']} env steps\nlearning curve: {summary['files']['png']}"
    )
    emit(summary, as_json, human)


def _finetune_config(ctx: typer.Context, config_file: Path | None, flags: dict) -> FinetuneConfig:
    """The run's FinetuneConfig: the saved file's fields (or the dataclass defaults), then the flags typed
    on the command line, then ``--objective-param`` and ``--set``. Every value is checked here, before
    anything runs (a parameter the objective does not take is an error naming it)."""
    import typing

    from gipo_robot.configs import ConfigError, config_from_dict, load_config, parse_assignments, parse_value

    base = load_config(FinetuneConfig, config_file) if config_file is not None else FinetuneConfig()
    fields = dataclasses.asdict(base)
    typed = given_on_command_line(ctx, list(FT_FLAGS)) if config_file is not None else list(FT_FLAGS)
    fields.update({FT_FLAGS[name]: flags[name] for name in typed})
    hints = typing.get_type_hints(FinetuneConfig)
    for name, text in parse_assignments(flags["set_field"] or [], option="--set").items():
        if name not in hints or name == "objective_params":
            raise ConfigError(f"--set {name}: not a FinetuneConfig field (use --objective-param for those)")
        fields[name] = parse_value(text, hints[name], where=f"--set {name}")
    params = parse_assignments(flags["objective_param"] or [], option="--objective-param")
    if params or (given_on_command_line(ctx, ["objective"]) and fields["objective"] != base.objective):
        fields["objective_params"] = params  # a new objective does not inherit the old one's parameters
    where = str(config_file) if config_file is not None else "finetune"
    return config_from_dict(FinetuneConfig, fields, where=where)


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
        raise error_exit(err, as_json) from None
    emit({"png": str(out), "runs": [str(r) for r in runs]}, as_json, f"wrote {out}")


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
        with stdout_to_stderr(as_json):
            result = run_bc(open_dataset(store), config, out=out)
    except (DatasetError, ValueError) as err:
        raise error_exit(err, as_json) from None
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
    emit(summary, as_json, human)


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
        with stdout_to_stderr(as_json):
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
        raise error_exit(err, as_json) from None
    summary = {"task": task, "policy": str(policy), **result.to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(summary, indent=1))
    lo, hi = result.success_ci95
    human = (
        f"{task}: success {result.success_rate:.0%} (95% CI {lo:.0%}-{hi:.0%}) over {episodes} episodes, "
        f"mean return {result.mean_return:.2f}, mean length {result.mean_length:.0f}"
        + (f"\nvideos: {', '.join(result.videos)}" if result.videos else "")
    )
    emit(summary, as_json, human)
