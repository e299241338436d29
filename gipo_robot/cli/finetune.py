"""``gipo-robot finetune`` (on simulated vector envs, or on a robot with ``--robot``) and
``gipo-robot learner`` (the learner of a robot run, started by hand where the actor runs elsewhere)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gipo_robot.cli.common import (
    EXIT_ROBOT_STOPPED,
    JsonFlag,
    app,
    check_writable,
    emit,
    error_exit,
    given_on_command_line,
    stdout_to_stderr,
)
from gipo_robot.train.arm.config import ArmConfig
from gipo_robot.train.config import FinetuneConfig

#: The defaults the flags below show: FinetuneConfig's, and ArmConfig's for the robot's own flags (a flag
#: left out keeps the config class's default, so a --robot run gets ArmConfig's: the dataclasses are the
#: single source).
FT = {
    **{f.name: f.default for f in dataclasses.fields(ArmConfig) if f.default is not dataclasses.MISSING},
    **{f.name: f.default for f in dataclasses.fields(FinetuneConfig) if f.default is not dataclasses.MISSING},
}
#: Flags that set a config field of the same name (``address`` sets ``ray_address``).
FT_FLAGS = {
    "task": "task", "objective": "objective", "replay_size": "replay_size", "env_steps": "env_steps",
    "num_envs": "num_envs", "policy_lr": "policy_lr", "init_log_std": "init_log_std", "seed": "seed",
    "critic_obs": "critic_obs",
    "backend": "backend", "workers": "workers", "address": "ray_address",
    "async_collection": "async_collection", "max_lag": "max_lag", "demo_store": "demo_store",
    "policy_lag": "policy_lag", "epochs": "epochs", "camera_encoder": "camera_encoder",
    "camera_encoder_lr_scale": "camera_encoder_lr_scale", "learner_device": "learner_device",
}  # fmt: skip
#: Flags of the robot path (``--robot``), each setting the ArmConfig field of the same name.
ARM_FLAGS = {"robot": "robot", "reward": "reward", "episodes": "episodes", "max_steps": "max_steps",
             "mode": "mode", "from_store": "from_stores"}  # fmt: skip
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="Start from a saved run's config.json; typed flags override it."),
]
Opt = typer.Option


@app.command()
def finetune(
    ctx: typer.Context,
    policy: Annotated[Path | None, Opt(help="Pretrained policy checkpoint (e.g. from train-bc).")] = None,
    config_file: ConfigFile = None,
    task: Annotated[str, Opt(help="Simulated task (with --robot: the name recorded).")] = FT["task"],
    objective: Annotated[str, Opt(help="gipo, ppo_clip, sapo, no_clip or cispo.")] = FT["objective"],
    objective_param: Annotated[
        list[str] | None, Opt(help="The objective's parameter as NAME=VALUE, e.g. sigma=0.5 (repeatable).")
    ] = None,
    replay_size: Annotated[int, Opt(min=1, help="K: rollout batches kept (1 = near on-policy).")] = FT[
        "replay_size"
    ],
    env_steps: Annotated[int, Opt(min=1, help="Env (robot) steps to collect, at most.")] = FT["env_steps"],
    num_envs: Annotated[int, Opt(min=1)] = FT["num_envs"],
    policy_lr: float = FT["policy_lr"],
    init_log_std: Annotated[float | None, Opt(help="Exploration log-std at the start.")] = FT["init_log_std"],
    seed: int = FT["seed"],
    backend: Annotated[str, Opt(help="Rollout envs: subprocess, sync or ray.")] = FT["backend"],
    workers: Annotated[int, Opt(min=1, help="Ray rollout workers (--backend ray).")] = FT["workers"],
    address: Annotated[str | None, Opt(help="Ray cluster to join; default: local Ray.")] = FT["ray_address"],
    async_collection: Annotated[bool, Opt(help="Ray workers collect while the learner updates.")] = FT[
        "async_collection"
    ],
    max_lag: Annotated[
        int, Opt(min=0, help="Data more than this many versions old is dropped (--robot: 16).")
    ] = FT["max_lag"],
    policy_lag: Annotated[
        int, Opt(min=0, help="Collect each batch with the policy this many versions old (controlled lag).")
    ] = FT["policy_lag"],
    epochs: Annotated[
        int, Opt(min=1, help="Passes worth of fresh data per iteration: the update-to-data ratio.")
    ] = FT["epochs"],
    demo_store: Annotated[str | None, Opt(help="Demonstrations for the BC term.")] = FT["demo_store"],
    critic_obs: Annotated[
        str, Opt(help="The critic reads the policy's features, or state: every low-dim sim feature (object).")
    ] = FT["critic_obs"],
    camera_encoder: Annotated[
        str, Opt(help="Camera policies: finetune (the CNNs learn, the policy's at a scaled lr) or frozen.")
    ] = FT["camera_encoder"],
    camera_encoder_lr_scale: Annotated[
        float, Opt(help="Camera policies: the policy's CNN learns at policy-lr times this.")
    ] = FT["camera_encoder_lr_scale"],
    learner_device: Annotated[
        str, Opt(help="Where the learner trains: cpu, cuda or cuda:N (rollouts act on a CPU copy).")
    ] = FT["learner_device"],
    robot: Annotated[
        str | None, Opt(help="Fine-tune on this robot (as deploy takes it): sim:Lift, a file.")
    ] = None,
    reward: Annotated[str, Opt(help="--robot: sim, operator or classifier:PATH.")] = FT["reward"],
    labels: Annotated[str | None, Opt(help="--robot: a scripted operator's keys, e.g. yynx.")] = None,
    device: Annotated[str | None, Opt(help="--robot: take over with keyboard, spacemouse, leader.")] = None,
    episodes: Annotated[int | None, Opt(min=1, help="--robot: stop after this many episodes.")] = None,
    max_steps: Annotated[int | None, Opt(min=1, help="--robot: steps per episode (real arms).")] = None,
    mode: Annotated[str, Opt(help="--robot: async, or sync (actor waits for the learner).")] = FT["mode"],
    from_store: Annotated[list[str] | None, Opt(help="--robot: logged episodes to start from.")] = None,
    learner: Annotated[str, Opt(help="--robot: local, or external (gipo-robot learner RUN).")] = "local",
    set_field: Annotated[list[str] | None, Opt("--set", help="Any other config field as NAME=VALUE.")] = None,
    out: Annotated[Path, Opt(help="Run directory.")] = Path("runs/finetune"),
    resume: Annotated[bool, Opt(help="Continue the run in --out from its checkpoint.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a policy with GIPO (or a baseline): on simulated vector envs, or with --robot on a robot
    (an actor on the arm, a learner process). Every setting is a config field, saved as RUN/config.json."""
    flags = dict(locals())  # every flag by parameter name, before anything else is defined here
    if robot is not None or (resume and (out / "weights").is_dir()):
        _finetune_robot(ctx, flags)
    else:
        _finetune_vector(ctx, flags)


def _finetune_vector(ctx: typer.Context, flags: dict[str, Any]) -> None:
    from gipo_robot.policies import CheckpointError
    from gipo_robot.sim import SimError
    from gipo_robot.train.finetune import FinetuneError
    from gipo_robot.train.finetune import finetune as run_finetune

    out, as_json = flags["out"], flags["as_json"]
    try:
        config = _config(FinetuneConfig, ctx, flags["config_file"], flags, FT_FLAGS)
        if flags["policy"] is None and not flags["resume"]:
            raise ValueError("finetune needs --policy (or --resume)")
        check_writable(out)
        with stdout_to_stderr(as_json):
            history = run_finetune(config, flags["policy"] or out / "checkpoint", out, resume=flags["resume"])
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
        "best_success": max((r["eval_success"] for r in evals), default=None),
        "files": {"metrics": str(out / "metrics.csv"), "png": str(out / "learning_curve.png"),
                  "config": str(out / "config.json"), "checkpoint": str(out / "checkpoint"),
                  "best": str(out / "best")},
    }  # fmt: skip
    human = (
        f"{config.objective} K={config.replay_size}: final success {summary['final_success']} after "
        f"{summary['env_steps']} env steps (best {summary['best_success']}: {summary['files']['best']})\n"
        f"learning curve: {summary['files']['png']}"
    )
    emit(summary, as_json, human)


def _finetune_robot(ctx: typer.Context, flags: dict[str, Any]) -> None:
    from gipo_robot.datasets import DatasetError
    from gipo_robot.hardware.robot import RobotError
    from gipo_robot.policies import CheckpointError
    from gipo_robot.train.arm.operator import OperatorError
    from gipo_robot.train.arm.run import finetune_on_robot
    from gipo_robot.train.learner import FinetuneError

    out, as_json = flags["out"], flags["as_json"]
    try:
        config_file = flags["config_file"]
        if flags["resume"] and config_file is None:
            config_file = out / "config.json"
        config = _config(ArmConfig, ctx, config_file, flags, {**FT_FLAGS, **ARM_FLAGS})
        if flags["learner"] not in ("local", "external"):
            raise ValueError(f"--learner must be local or external, got {flags['learner']!r}")
        operator = _operator(config, flags["labels"])
        check_writable(out)
        with stdout_to_stderr(as_json):
            device = _device(flags["device"], config)
            result = finetune_on_robot(
                config, flags["policy"], out, resume=flags["resume"], operator=operator, device=device,
                learner=flags["learner"],
            )  # fmt: skip
    except (CheckpointError, FinetuneError, OperatorError, RobotError, DatasetError, ValueError, KeyError,
            ImportError) as err:  # fmt: skip
        raise error_exit(err, as_json) from None
    s = result["session"]
    human = (
        f"{s['episodes']} episodes this session ({s['successes']} successful, "
        f"{s['robot_s'] / 60:.1f} robot min, "
        f"ended: {s['ended']}{', ' + s['error'] if s['error'] else ''}); run: {result['episodes']} episodes, "
        f"success over the last 20 {result['success_last_20']}, policy v{result['learner'].get('version', 0)}"
        f"\nlearning curve: {result['files']['png']}"
    )
    emit(result, as_json, human)
    if s["error"]:  # an e-stop or a robot fault ended the session (the arm held, the episode committed)
        raise typer.Exit(code=EXIT_ROBOT_STOPPED)


def _operator(config: ArmConfig, labels: str | None) -> Any:
    """The run's operator: scripted with --labels, else the terminal where the run needs one."""
    from gipo_robot.train.arm.operator import ScriptedOperator, TerminalOperator

    if labels is not None:
        return ScriptedOperator(labels)
    if config.reward == "operator" or config.reset == "operator":
        return TerminalOperator()
    return None


def _device(name: str | None, config: ArmConfig) -> Any:
    """The takeover device, built for the run's robot (None: no takeovers)."""
    if name is None:
        return None
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.teleop.devices import make_device

    probe = load_robot(config.robot)  # the device needs the robot's spec (and, for the expert, its sim)
    try:
        return make_device(name, probe)
    finally:
        probe.close()


def _config(cls: type, ctx: typer.Context, config_file: Path | None, flags: dict, names: dict) -> Any:
    """The run's config: the saved file's fields (or the dataclass defaults), then the flags typed on the
    command line, then ``--objective-param`` and ``--set``. Every value is checked here, before anything
    runs (a parameter the objective does not take is an error naming it)."""
    import typing

    from gipo_robot.configs import ConfigError, config_from_dict, load_config, parse_assignments, parse_value

    # A typed --learner-device goes in as the file is read: a config saved with cuda starts on a CPU machine.
    typed = given_on_command_line(ctx, ["learner_device"])
    device = {"learner_device": flags["learner_device"]} if typed else {}
    base = load_config(cls, config_file, **device) if config_file is not None else cls()
    fields = dataclasses.asdict(base)
    for name in given_on_command_line(ctx, list(names)):  # a flag left out keeps the base's value
        value = flags[name]
        fields[names[name]] = list(value or []) if name == "from_store" else value
    hints = typing.get_type_hints(cls)
    for name, text in parse_assignments(flags["set_field"] or [], option="--set").items():
        if name not in hints or name == "objective_params":
            raise ConfigError(f"--set {name}: not a {cls.__name__} field (use --objective-param for those)")
        fields[name] = parse_value(text, hints[name], where=f"--set {name}")
    params = parse_assignments(flags["objective_param"] or [], option="--objective-param")
    if params or (given_on_command_line(ctx, ["objective"]) and fields["objective"] != base.objective):
        fields["objective_params"] = params  # a new objective does not inherit the old one's parameters
    where = str(config_file) if config_file is not None else "finetune"
    return config_from_dict(cls, fields, where=where)


@app.command("learner")
def learner_command(
    run: Annotated[
        Path, typer.Argument(help="The run directory of a finetune --robot --learner external run.")
    ],
) -> None:
    """The learner of a robot run, for an actor running elsewhere on the same run directory (a shared mount):
    trains on the episodes that land there and publishes versions until the actor finishes."""
    from gipo_robot.train.arm.learner_loop import main

    if not (run / "config.json").exists():
        typer.echo(f"error: {run}: not a finetune --robot run (no config.json)", err=True)
        raise typer.Exit(code=1)
    sys.exit(main([str(run)]))
