"""Deploy a trained policy on a robot: paced control loop, safety guard, every step recorded.

Legend: ``A`` action size, ``H`` chunk length, ``T`` control period (s, ``spec.period``).

One deployment, top to bottom (:func:`deploy`):

1. before anything moves, check the policy fits the robot
   (:func:`~gipo_robot.loops.actor.check_policy_fits`: action size and names, every observation feature it
   reads with the same shape);
2. wrap the robot in a :class:`~gipo_robot.hardware.safety.SafetyGuard` (Ctrl-C e-stops it);
3. per episode, an :class:`~gipo_robot.loops.step.EpisodeRunner`: reset, then every tick of a
   :class:`Pacer` at the robot's control rate one guarded step (observe, the
   :class:`~gipo_robot.loops.actor.PolicyActor`'s next action of the policy's deterministic chunk, act
   through the guard), recorded through the store's ``EpisodeWriter`` (``source="deploy"``; ``action`` is
   the command the guard actually sent);
4. commit the episode with success from ``robot.task_status()`` where the robot knows it, and the guard's
   interventions and the loop's timing in its ``extra`` metadata.

A :class:`~gipo_robot.hardware.robot.RobotError` during an episode (a servo bus unplugged, an e-stop)
holds the arm, commits the steps so far as a failed episode with the error in ``extra["error"]``, and
ends the run; it never escapes :func:`deploy`.

Timing: :class:`~gipo_robot.hardware.pacing.Pacer` (absolute deadlines, period error per tick, a *missed*
deadline when a step's work — observe, policy, act, record — outlasts its period). The policy's first
forward runs before the first episode (:func:`~gipo_robot.loops.warmup.warm_up_actor`; the simulator warms
its compiled step when it is built), so the first episode is timed like the others.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from gipo_robot.datasets import DatasetError
from gipo_robot.hardware.pacing import Pacer, format_ms, realtime_priority
from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec
from gipo_robot.hardware.safety import SafetyConfig, SafetyGuard
from gipo_robot.loops.actor import PolicyActor, check_policy_fits
from gipo_robot.loops.evaluate import EVAL_SEED
from gipo_robot.loops.step import EpisodeRunner, knows_task
from gipo_robot.loops.warmup import warm_up_actor

__all__ = [
    "DeployConfig",
    "DeployResult",
    "add_changes",
    "deploy",
    "episode_line",
    "open_deploy_store",
]

FLUSH_BYTES = 64 * 1024 * 1024
"""Steps are buffered in memory up to about this many bytes per episode before the writer flushes to
disk (a flush costs milliseconds: inside the loop it would miss a deadline)."""


# ---------------------------------------------------------------------------------------------- store


def open_deploy_store(path: str | Path, spec: RobotSpec, *, sample: bool = False) -> Any:
    """Open the episode store at ``path`` for appending, or create it for this robot.

    A new store gets the demonstration schema (``obs.<feature>`` for every observation, ``action``,
    ``reward``, ``terminated``, ``truncated``, ``success``, ``timestamp``, ``logp``, ``policy_version``),
    the robot's control rate as fps and its spec; with ``sample`` (``deploy --sample``) also ``sample``,
    ``logp_per_dim`` and ``intervention`` (:func:`~gipo_robot.datasets.schema.sampled_step_schema`).

    Raises:
        DatasetError: an existing store whose features differ from this robot's (naming the feature).
    """
    from gipo_robot.datasets import DatasetError, EpisodeStore
    from gipo_robot.datasets.schema import sampled_step_schema, step_schema

    schema = sampled_step_schema(spec) if sample else step_schema(spec)
    if not Path(path).exists():
        return EpisodeStore.create(path, schema, fps=spec.control_hz, robot=spec.to_dict())
    store = EpisodeStore.open(path, "a")
    existing = {f.name: f for f in store.schema.features}
    for feature in schema.features:
        have = existing.get(feature.name)
        if have is None or have.shape != feature.shape or have.dtype != feature.dtype:
            raise DatasetError(
                f"this store does not fit {spec.name}: expected {feature.to_json()}, "
                f"found {have.to_json() if have else 'nothing'}",
                path=path,
                feature=feature.name,
            )
    return store


# ---------------------------------------------------------------------------------------------- loop


@dataclasses.dataclass
class DeployConfig:
    """How :func:`deploy` runs.

    Attributes:
        episodes: episodes to run (the run stops early on a robot error).
        max_steps: steps per episode at most; None runs until the robot reports the episode done, which
            needs a robot that knows the task (a simulator).
        execute_steps: actions of each predicted chunk executed before the policy is queried again
            (1..H); None executes the whole chunk.
        seed: episode ``i`` resets with ``seed + i`` (sim scenes; real arms ignore it).
        task: task name recorded with each episode.
        realtime: pace the loop at the robot's control rate; False runs as fast as the robot allows
            (only sensible in simulation; timing is then not meaningful).
        spin_s: busy-wait this long before each tick, s.
        rt_priority: run the loop under ``SCHED_FIFO`` at this priority (1-99; see
            :func:`realtime_priority`); None keeps default scheduling.
        safety: the guard's limits.
        sample: act with samples of the policy's Gaussian instead of its mean, storing each step's raw
            sample and behaviour log-prob (a store made with ``open_deploy_store(..., sample=True)``), so
            that ``finetune --robot --from-store`` can replay the episodes; executes the first action of each
            chunk (``execute_steps`` 1).
        policy_version: the version recorded with sampled steps (a ``finetune --robot`` checkpoint's).
    """

    episodes: int = 1
    max_steps: int | None = None
    execute_steps: int | None = None
    seed: int = EVAL_SEED
    task: str = ""
    realtime: bool = True
    spin_s: float = 0.001
    rt_priority: int | None = None
    safety: SafetyConfig = dataclasses.field(default_factory=SafetyConfig)
    sample: bool = False
    policy_version: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"DeployConfig.episodes must be an int >= 1, got {self.episodes!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"DeployConfig.max_steps must be an int >= 1 or None, got {self.max_steps!r}")
        if self.execute_steps is not None and self.execute_steps < 1:
            raise ValueError(f"DeployConfig.execute_steps must be >= 1, got {self.execute_steps!r}")
        if self.spin_s < 0:
            raise ValueError(f"DeployConfig.spin_s must be >= 0, got {self.spin_s!r}")
        if self.rt_priority is not None and not 1 <= self.rt_priority <= 99:
            raise ValueError(f"DeployConfig.rt_priority must be in 1..99, got {self.rt_priority!r}")
        if self.sample and self.execute_steps not in (None, 1):
            raise ValueError("DeployConfig.sample executes the first action of each chunk: execute_steps 1")
        if self.sample:
            self.execute_steps = 1
        if isinstance(self.safety, dict):
            self.safety = SafetyConfig.from_dict(self.safety)


@dataclasses.dataclass
class DeployResult:
    """Outcome of :func:`deploy`.

    Attributes:
        episodes: per episode ``{"index", "seed", "steps", "success", "error", "interventions",
            "intervention_changes", "timing"}``; ``index`` is the store's episode index (None if nothing
            was committed).
        timing: :func:`timing_summary` over every step of the run.
        interventions: the guard's counts summed over the run.
        error: the robot error that ended the run, or None.
        intervention_changes: per kind and action dimension, the largest and the mean change the guard
            made to a command over the run (physical units; see
            :meth:`~gipo_robot.hardware.safety.SafetyGuard.intervention_report`).
    """

    episodes: list[dict[str, Any]]
    timing: dict[str, Any]
    interventions: dict[str, int]
    error: str | None = None
    intervention_changes: dict[str, dict[str, dict[str, float]]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        successes = sum(bool(e["success"]) for e in self.episodes)
        return {
            "episodes_run": len(self.episodes),
            "successes": successes,
            "success_rate": successes / len(self.episodes) if self.episodes else None,
            "steps": sum(e["steps"] for e in self.episodes),
            "error": self.error,
            "timing": self.timing,
            "interventions": self.interventions,
            "intervention_changes": self.intervention_changes,
            "episodes": self.episodes,
        }


def _flush_steps(spec: RobotSpec) -> int:
    row = sum(
        math.prod(shape) * (1 if spec.obs_dtypes.get(name) == "uint8" else 4)
        for name, shape in spec.obs_shapes.items()
    )
    return max(32, FLUSH_BYTES // max(1, row + 4 * spec.action_dim + 64))


def deploy(
    policy: Any,
    robot: Robot,
    store: Any,
    config: DeployConfig | None = None,
    *,
    policy_name: str = "",
    log: Any = None,
) -> DeployResult:
    """Run ``config.episodes`` episodes of ``policy`` on ``robot``, recording each into ``store``.

    Args:
        policy: a :class:`~gipo_robot.policies.GaussianPolicy`.
        robot: the robot, not yet connected (wrapped here in a ``SafetyGuard`` unless it is one).
        store: an :class:`~gipo_robot.datasets.EpisodeStore` open for appending
            (:func:`open_deploy_store`).
        config: run settings; None uses :class:`DeployConfig`'s defaults.
        policy_name: recorded in each episode's ``extra`` (e.g. the checkpoint path).
        log: optional ``callable(str)`` for progress lines.

    Raises:
        ValueError: the policy does not fit the robot, or ``max_steps`` is None for a robot that cannot
            tell when an episode is done (raised before connecting).
        RobotError: the robot cannot connect. Errors during episodes do not escape (see the module doc).
    """
    import torch

    config = config or DeployConfig()
    spec = robot.spec
    check_policy_fits(policy.config, spec, where=f"policy {policy_name}".strip())
    if config.max_steps is None and not knows_task(robot):
        raise ValueError(f"{spec.name} cannot tell when an episode ends: give max_steps")
    generator = torch.Generator().manual_seed(config.seed) if config.sample else None
    actor = PolicyActor(
        policy, execute_steps=config.execute_steps, deterministic=not config.sample, generator=generator
    )
    guard = robot if isinstance(robot, SafetyGuard) else SafetyGuard(robot, config.safety)
    say = log or (lambda message: None)
    run_pacer = Pacer(spec.period, config.spin_s)
    episodes: list[dict[str, Any]] = []
    totals = dict.fromkeys(guard.interventions, 0)
    changes: dict[str, dict[str, dict[str, float]]] = {}
    run_error = None
    in_main = threading.current_thread() is threading.main_thread()
    guard.connect()
    try:
        with (
            guard.estop_on_sigint() if in_main else nullcontext(),
            realtime_priority(config.rt_priority) as granted,
            torch.no_grad(),
        ):
            if config.rt_priority is not None and not granted:
                say(f"real-time priority {config.rt_priority} refused: default scheduling")
            warm_up_actor(actor, spec)
            for i in range(config.episodes):
                record = _run_episode(guard, actor, store, config, i, run_pacer, policy_name)
                episodes.append(record)
                add_changes(changes, totals, record["intervention_changes"], record["interventions"])
                for kind, n in record["interventions"].items():
                    totals[kind] += n
                say(episode_line(i, record))
                if record["error"]:
                    run_error = record["error"]
                    break
    finally:
        try:
            guard.disconnect()  # holds the arm first
        except RobotError as err:  # the link is already gone; the episode record says why
            say(f"disconnect: {err}")
    return DeployResult(episodes, run_pacer.summary(), totals, run_error, changes)


def add_changes(
    totals: dict[str, dict[str, dict[str, float]]],
    counts: dict[str, int],
    changes: dict[str, dict[str, dict[str, float]]],
    n: dict[str, int],
) -> None:
    """Fold one episode's intervention changes into the run's, in place.

    Args:
        totals: the run's ``{kind: {dimension: {"max", "mean"}}}`` so far.
        counts: the run's intervention counts per kind so far (the weights of ``totals``' means).
        changes: the episode's, as in ``SafetyGuard.intervention_report()["changes"]``.
        n: the episode's counts per kind.
    """
    for kind, dims in changes.items():
        into = totals.setdefault(kind, {})
        before, now = counts.get(kind, 0), n[kind]
        for dim, change in dims.items():
            old = into.get(dim, {"max": 0.0, "mean": 0.0})  # a mean of 0 over the earlier counted steps
            into[dim] = {
                "max": max(old["max"], change["max"]),
                "mean": (old["mean"] * before + change["mean"] * now) / (before + now),
            }


def episode_line(i: int, record: dict[str, Any]) -> str:
    """One deployed episode for people: steps, success, timing (rounded), interventions, error."""
    t = record["timing"]
    counted = ", ".join(f"{kind} {n}" for kind, n in record["interventions"].items() if n)
    return (
        f"episode {i}: {record['steps']} steps, success {record['success']}, "
        f"period error p99 {format_ms(t['p99_period_error_ms'])}, {t['missed']} missed"
        + (f", guard: {counted}" if counted else "")
        + (f", error: {record['error']}" if record["error"] else "")
    )


def _run_episode(
    guard: SafetyGuard,
    actor: PolicyActor,
    store: Any,
    config: DeployConfig,
    i: int,
    run_pacer: Pacer,
    policy_name: str,
) -> dict[str, Any]:
    """One episode (see :func:`deploy`); returns its record. Robot errors are caught and recorded."""
    spec = guard.spec
    seed = config.seed + i
    pacer = Pacer(spec.period, config.spin_s)
    runner = EpisodeRunner(guard, actor, max_steps=config.max_steps, pacer=pacer if config.realtime else None)
    error = None
    version = config.policy_version if config.sample else -1
    meta = {"source": "deploy", "task": config.task, "policy_version": version}
    with store.writer(flush_steps=_flush_steps(spec), **meta) as writer:
        try:
            runner.reset(seed=seed)
            for step in runner.run():
                try:
                    writer.add({**step.row(features=store.schema), **_sampled(actor, version)})
                except DatasetError as err:  # a NaN/inf measurement: a sensor fault, the steps so far kept
                    raise RobotError(f"sensor fault: {err}") from err
        except RobotError as err:
            guard.hold()
            error = f"{type(err).__name__}: {err}"
        except KeyboardInterrupt:  # a second Ctrl-C after the e-stop: keep what was recorded, then leave
            guard.hold()
            _commit(writer, runner, guard, pacer, "KeyboardInterrupt", seed, policy_name)
            raise
        else:
            guard.hold()  # the episode is over: hold (no lapse for the watchdog) while it is committed
        steps = writer.n_steps  # the steps recorded (a faulty last one is not)
        index = _commit(writer, runner, guard, pacer, error, seed, policy_name)
    run_pacer.period_errors += pacer.period_errors
    run_pacer.work += pacer.work
    run_pacer.missed += pacer.missed
    return {
        "index": index,
        "seed": seed,
        "steps": steps,
        # an episode a robot error cut short counts as failed
        "success": bool(runner.success) and error is None,
        "error": error,
        "interventions": guard.interventions,
        "intervention_changes": guard.intervention_report()["changes"],
        "timing": pacer.summary(),
    }


def _sampled(actor: PolicyActor, version: int) -> dict[str, Any]:
    """A sampled step's raw sample, behaviour log-prob (per dimension and summed) and version; {} if none."""
    if actor.last_sample is None:
        return {}
    sample, logp = actor.last_sample
    return {"sample": sample, "logp_per_dim": logp, "logp": float(logp.sum()), "policy_version": version}


def _commit(
    writer: Any,
    runner: EpisodeRunner,
    guard: SafetyGuard,
    pacer: Pacer,
    error: str | None,
    seed: int,
    policy_name: str,
) -> int | None:
    """Commit the episode's steps (an episode needs at least one) as failed if ``error``; returns its
    store index, or None when there was nothing to commit."""
    if writer.n_steps == 0:
        writer.discard()
        return None
    extra = {
        "robot": guard.spec.name,
        "seed": seed,
        "policy": policy_name,
        "error": error,
        "success_known": runner.status is not None,
        "safety": guard.intervention_report(),
        "timing": pacer.summary(),
    }
    return writer.commit(success=bool(runner.success) and error is None, extra=extra)
