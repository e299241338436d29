"""``gipo-robot`` commands that train and measure policies: objectives, bias-variance, quickstart, plot,
train-bc, eval (``finetune`` and ``learner`` live in :mod:`.finetune`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gipo_robot.cli.common import JsonFlag, app, check_writable, emit, error_exit, stdout_to_stderr


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
    setup: Annotated[
        str,
        typer.Option(
            help="ours: random target/behaviour pairs, full gradient, N=16. authors: the GIPO paper's layout "
            "(3 hand-set targets x 7 behaviours, one logit, N=1)."
        ),
    ] = "ours",
    pairs: Annotated[int, typer.Option(min=1, help="ours: random (π, μ) pairs per divergence level.")] = 500,
    seed: Annotated[int, typer.Option(help="ours: seed of the random pairs.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Exact bias–variance study of the objectives on a 2×2 GridWorld (ours, or the GIPO paper's layout)."""
    from tqdm import tqdm

    from gipo_robot.bias_variance import (
        AuthorsStudyConfig,
        StudyConfig,
        plot_study,
        run_authors_study,
        run_study,
    )

    if setup not in ("ours", "authors"):
        raise error_exit(ValueError(f"--setup must be ours or authors, got {setup!r}"), as_json)
    if setup == "authors":
        result = run_authors_study(AuthorsStudyConfig())
    else:
        config = StudyConfig(n_pairs=pairs, seed=seed)
        with (
            stdout_to_stderr(as_json),
            tqdm(total=len(config.deltas), desc="bias-variance", file=sys.stderr) as bar,
        ):
            result = run_study(config, progress=lambda done: bar.update(done - bar.n))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bias_variance.json").write_text(json.dumps(result, indent=1))
    plot_study(result, str(out / "bias_variance.png"))
    summary = _bias_variance_summary(result)
    summary["files"] = {"json": str(out / "bias_variance.json"), "png": str(out / "bias_variance.png")}
    emit(summary, as_json, _bias_variance_table(summary))


def _bias_variance_summary(result: dict) -> dict:
    """Per level: staleness and each family's best MSE at the setup's minibatch size (16 ours, 1 authors)."""
    n = 1 if result["setup"] == "authors" else 16
    levels = []
    for lv in result["levels"]:
        levels.append(
            {
                **({"target": lv["target"]} if "target" in lv else {}),
                "delta": lv["delta"],
                "kl": lv["kl_mean"],
                f"best_mse_n{n}": lv["best_mse"][str(n)],
                "frac_baselines_above_gipo_frontier": lv["frac_baselines_above_gipo_frontier"],
            }
        )
    return {"setup": result["setup"], "batch_size": n, "levels": levels}


def _bias_variance_table(summary: dict) -> str:
    n = summary["batch_size"]
    key = f"best_mse_n{n}"
    families = list(summary["levels"][0][key])
    lines = [
        f"best relative gradient MSE over each family's sweep (N={n}), by staleness ({summary['setup']}):"
    ]
    lead = f"{'target':>13s} " if summary["setup"] == "authors" else ""
    lines.append(lead + f"{'KL(μ‖π)':>9s} " + " ".join(f"{f:>12s}" for f in families))
    for lv in summary["levels"]:
        lead = f"{lv['target']:>13s} " if "target" in lv else ""
        lines.append(lead + f"{lv['kl']:9.3f} " + " ".join(f"{lv[key][f]:12.3g}" for f in families))
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
    """Scripted Lift demos -> behaviour cloning -> GIPO on a replay of the last 4 batches -> before/after."""
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
    obs: Annotated[
        str,
        typer.Option(
            help="Features the policy reads: auto (proprio+cameras when the store has a camera, else state), "
            "state (every low-dim feature, the simulator's object state included), proprio, "
            "proprio+cameras, cameras."
        ),
    ] = "auto",
    image_shift: Annotated[
        int,
        typer.Option(min=0, help="Random-shift augmentation of camera frames in training, pixels (0: off)."),
    ] = 4,
    seed: int = 0,
    as_json: JsonFlag = False,
) -> None:
    """Behaviour cloning: fit a Gaussian chunk policy to a store's episodes; writes checkpoint + loss PNG."""
    from gipo_robot.datasets import DatasetError, open_dataset
    from gipo_robot.policies.bc import BCConfig
    from gipo_robot.policies.bc import train_bc as run_bc
    from gipo_robot.policies.obs_sets import OBS_SETS, resolve_obs_set

    try:
        if obs not in OBS_SETS:
            raise ValueError(f"unknown --obs {obs!r}; known: {', '.join(OBS_SETS)}")
        config = BCConfig(
            chunk=chunk,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            hidden=[int(h) for h in hidden.split(",") if h.strip()],
            success_only=success_only,
            obs_set=obs,
            image_shift=image_shift,
            seed=seed,
        )
        check_writable(out)
        with stdout_to_stderr(as_json):
            result = run_bc(open_dataset(store), config, out=out)
    except (DatasetError, ValueError) as err:
        raise error_exit(err, as_json) from None
    final = result.history[-1] if result.history else {}
    pconf = result.policy.config
    features = sorted([*pconf.low_dim, *pconf.images])
    summary = {
        "checkpoint": str(out),
        "obs_set": resolve_obs_set(obs, features),  # auto: the set it stood for
        "features": features,
        "images": pconf.images,
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "train_nll": final.get("train_nll"),
        "val_nll": final.get("val_nll"),
        "train_episodes": len(result.train_episodes),
        "val_episodes": len(result.val_episodes),
        "wall_s": result.wall_s,
        "loss_curve": str(out / "loss_curve.png"),
    }
    reads = [
        f"{k} ({'x'.join(map(str, pconf.images[k]))})" if k in pconf.images else k
        for k in summary["features"]
    ]
    human = (
        f"policy reads ({summary['obs_set']}): {', '.join(reads)}\n"
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
    from gipo_robot.loops.actor import check_policy_fits
    from gipo_robot.loops.evaluate import evaluate
    from gipo_robot.policies import CheckpointError, load_policy
    from gipo_robot.policies.obs_sets import sim_camera_options
    from gipo_robot.sim import make_env

    out = out or policy / f"eval_{task}"
    try:
        pol = load_policy(policy)  # a bad checkpoint fails before robosuite starts
        with stdout_to_stderr(as_json):
            # A camera policy sees its cameras rendered at its resolution with the fast settings.
            cameras = sim_camera_options(pol.config.images)
            env = make_env(task, horizon=horizon, render_mode="rgb_array" if videos else None, **cameras)
            spec = env.robot_spec
            try:
                check_policy_fits(pol.config, spec, where=f"policy at {policy}")
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
