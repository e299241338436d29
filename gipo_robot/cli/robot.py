"""``gipo-robot`` commands that drive arms: record, deploy, and the emulators virtual-arm and
virtual-rosbridge."""

from __future__ import annotations

import contextlib
import json
import signal
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
    stdout_to_stderr,
)


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
    sample: Annotated[
        bool, typer.Option(help="Sample the policy's Gaussian; log behaviour log-probs (for --from-store).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a policy on a robot behind the safety guard, recording every step; reports loop jitter."""
    from gipo_robot.datasets import DatasetError
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.hardware.pacing import format_ms
    from gipo_robot.hardware.robot import RobotError
    from gipo_robot.loops.actor import check_policy_fits
    from gipo_robot.loops.deploy import DeployConfig, open_deploy_store
    from gipo_robot.loops.deploy import deploy as run_deploy
    from gipo_robot.policies import CheckpointError, load_policy

    arm = None
    try:
        pol = load_policy(policy)  # a bad checkpoint fails before any robot starts
        config = DeployConfig(
            episodes=episodes,
            max_steps=max_steps,
            execute_steps=execute_steps,
            seed=seed,
            task=task,
            realtime=realtime,
            rt_priority=rt_priority,
            safety=_safety_config(safety),
            sample=sample,
            policy_version=_policy_version(policy) if sample else 0,
        )
        check_writable(out)
        with stdout_to_stderr(as_json):
            arm = load_robot(robot)
            check_policy_fits(pol.config, arm.spec, where=f"policy at {policy}")
            store = open_deploy_store(out, arm.spec, sample=sample)
            result = run_deploy(
                pol, arm, store, config, policy_name=str(policy), log=lambda m: typer.echo(m, err=True)
            )
    except (CheckpointError, ValueError, DatasetError, RobotError) as err:
        raise error_exit(err, as_json) from None
    finally:
        if arm is not None:
            arm.close()
    summary = {"policy": str(policy), "robot": robot, "out": str(out), **result.to_dict()}
    t = summary["timing"]
    p50, p99 = format_ms(t["p50_period_error_ms"]), format_ms(t["p99_period_error_ms"])
    human = (
        f"{summary['episodes_run']} episodes, {summary['successes']} successful, {summary['steps']} steps "
        f"-> {out}\nloop at {1e3 / t['period_ms']:.0f} Hz: period error p50 {p50}, p99 {p99}, "
        f"{t['missed']} missed deadlines\n"
        + _guard_text(summary["interventions"], summary["intervention_changes"], summary["steps"])
        + (f"\nstopped by: {summary['error']}" if summary["error"] else "")
    )
    emit(summary, as_json, human)
    if summary["error"]:  # an e-stop or a robot fault (the arm held, the episode committed as failed)
        raise typer.Exit(code=EXIT_ROBOT_STOPPED)


def _guard_text(counts: dict[str, int], changes: dict[str, dict[str, dict[str, float]]], steps: int) -> str:
    """``guard: workspace on 129 of 3135 steps (largest change dz 18.5 mm, mean 8.2 mm)`` for people."""

    def size(dim: str, value: float) -> str:
        return f"{value * 1e3:.1f} mm" if dim in ("dx", "dy", "dz") else f"{value:.3g} rad"

    parts = []
    for kind, n in counts.items():
        if not n:
            continue
        part = f"{kind} on {n} of {steps} steps"
        dims = changes.get(kind, {})
        if dims:
            dim, c = max(dims.items(), key=lambda item: item[1]["max"])
            part += f" (largest change {dim} {size(dim, c['max'])}, mean {size(dim, c['mean'])})"
        parts.append(part)
    return "guard: " + ("; ".join(parts) if parts else "no interventions")


def _safety_config(path: Path | None) -> Any:
    """The SafetyConfig of a JSON file of its fields (defaults without one); ValueError naming the file."""
    from gipo_robot.hardware.safety import SafetyConfig

    if path is None:
        return SafetyConfig()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"safety config {path}: {err}") from err
    return SafetyConfig.from_dict(data, source=str(path))


def _policy_version(path: Path) -> int:
    """The version a ``finetune --robot`` checkpoint records in its provenance (0 for any other policy)."""
    from gipo_robot.policies.checkpoint import read_config

    return int(read_config(path).get("provenance", {}).get("version", 0))


@app.command()
def record(
    robot: Annotated[str, typer.Option(help="sim:TASK[?cameras=...&image_size=...] or a robot config file.")],
    out: Annotated[Path, typer.Option(help="Episode store to create, or to append to if it exists.")],
    device: Annotated[str, typer.Option(help="keyboard, spacemouse, leader, lerobot, scripted")] = "keyboard",
    task: Annotated[str, typer.Option(help="Task name or instruction stored with each episode.")] = "",
    episodes: Annotated[int, typer.Option(min=1, help="Stop after saving this many episodes.")] = 1,
    max_seconds: Annotated[
        float | None,
        typer.Option(help="Per-episode time limit, s (then saved, or labelled by the operator)."),
    ] = None,
    fps: Annotated[float | None, typer.Option(help="Control rate, Hz; default: the robot's.")] = None,
    realtime: Annotated[bool, typer.Option(help="Pace at --fps (off: as fast as the sim steps).")] = True,
    policy: Annotated[Path | None, typer.Option(help="Policy checkpoint that drives (takeover: t).")] = None,
    leader: Annotated[str | None, typer.Option(help="--device leader: leader arm robot config.")] = None,
    leader_map: Annotated[Path | None, typer.Option(help="--device leader: joint mapping JSON/TOML.")] = None,
    teleop: Annotated[str | None, typer.Option(help="--device lerobot: LeRobot teleoperator config.")] = None,
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
    from gipo_robot.loops.record import FAULTS, RecorderConfig
    from gipo_robot.loops.record import record as run_record
    from gipo_robot.policies import CheckpointError
    from gipo_robot.teleop.devices import TeleopError, device_options, make_device

    try:
        options = device_options(
            device, seed=seed, noise=noise, replay=replay, script=script, leader=leader,
            leader_map=leader_map, teleop=teleop, max_seconds=max_seconds, interactive=sys.stdin.isatty(),
        )  # fmt: skip
        config = RecorderConfig(
            out=str(out), task=task, episodes=episodes, max_seconds=max_seconds, fps=fps, realtime=realtime,
            seed=seed,
        )  # fmt: skip
        check_writable(out)
        with stdout_to_stderr(True):
            follower = load_robot(robot)
            if "events" in options and options["events"] is None:
                from gipo_robot.teleop.keyboard import KeyboardDevice

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
                follower.close()
    except (DatasetError, TeleopError, CheckpointError, ValueError) as err:
        raise error_exit(err, as_json) from None
    summary = {"out": str(out), "device": device, **result.to_dict()}
    human = (
        f"saved {len(result.saved)} episode(s) ({result.successes} successful), "
        f"discarded {result.discarded}, {result.steps} steps, {result.dropped_frames} dropped frames; "
        f"session ended: {result.ended}{' (' + result.error + ')' if result.error else ''}; "
        f"{out} now holds {result.store_episodes} episodes"
    )
    emit(summary, as_json, human)
    if result.ended in FAULTS:  # an e-stop or a robot/device fault (the arm held, the episode committed)
        raise typer.Exit(code=EXIT_ROBOT_STOPPED)


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
    camera: Annotated[
        list[str] | None,
        typer.Option(
            help="Render this camera of the arm's scene (front or wrist), as camera[:WxH][@fps], e.g. "
            "front:96x96@30 (repeatable); the robot config lists it as <camera>_image."
        ),
    ] = None,
) -> None:
    """Emulate a 6-joint servo arm on a pseudo-terminal (real protocol bytes, MuJoCo joints) until Ctrl-C.

    Drive it with any command that takes --robot, e.g. `gipo-robot deploy POLICY --robot arm.json`.
    With --camera, it also renders camera views of its scene, which the robot config reads as cameras.
    """
    from gipo_robot.hardware.emulators.arm_camera import VirtualCamera, make_frames_dir
    from gipo_robot.hardware.emulators.virtual_bus import (
        FaultConfig,
        VirtualArmConfig,
        robot_config_for,
        serve,
    )

    try:
        faults = FaultConfig(corrupt_prob=corrupt, drop_prob=drop, reply_delay_s=delay_ms / 1000)
        cameras = tuple(VirtualCamera.parse(text) for text in camera or ())
        frames = make_frames_dir() if cameras else None
        config = VirtualArmConfig(protocol=protocol, faults=faults, cameras=cameras, frames_dir=frames)
    except ValueError as err:
        raise error_exit(err, False) from err

    def ready(port: str) -> None:
        robot_config = robot_config_for(config, port)
        if config_out is not None:
            config_out.write_text(json.dumps(robot_config, indent=2))
        typer.echo(
            f"virtual {protocol} arm on {port}" + (f"; robot config: {config_out}" if config_out else "")
        )
        typer.echo("Ctrl-C to stop", err=True)

    _stop_on_sigint()
    counters = serve(config, on_ready=ready)
    typer.echo(json.dumps(counters), err=True)


def _stop_on_sigint() -> None:
    """Ctrl-C (or ``kill -INT``) stops an emulator even when a script started it in the background: a shell
    without job control starts background commands with SIGINT ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
        raise error_exit(err, False) from err
    typer.echo(f"virtual rosbridge on ws://{config.host}:{config.port} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        _stop_on_sigint()
        serve(config)
