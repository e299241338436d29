"""The actor of a robot run: the policy acts on the arm behind the safety guard and every episode is stored.

Legend: ``A`` action size, ``v`` policy version.

One episode, top to bottom (:meth:`ArmActor.episode`)::

    swap     load the newest published version (between episodes; between chunks with swap="chunk")
    reset    the robot's own reset (a new sim scene, a real arm's home pose), or an operator's reset window
    steps    at the robot's control rate, one guarded step each (observe, act, task status): the policy
             samples from its Gaussian (exploration) unless the operator has taken over with a device;
             stored with the raw sample, its behaviour log-prob per dimension, the version, intervention
    label    the simulator's success, the operator's key (y/n/x/r) or the success classifier's verdict
    commit   the episode (or drop it: x; drop and run the same scene again: r), then the heartbeat

The actor never blocks on the learner: it acts with the weights it has, says on its status line when the
learner has been silent for ``learner_timeout_s``, and picks up new versions whenever they appear again. In
``mode="sync"`` it waits for the next version after each episode (the synchronous baseline), and gives up
waiting once the learner is silent. A robot error mid-episode holds the arm, commits the steps so far as a
failed episode with the error, and ends the run, as in ``deploy``.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch

from gipo_robot.datasets import DatasetError
from gipo_robot.hardware.pacing import Pacer
from gipo_robot.hardware.robot import Robot, RobotError
from gipo_robot.hardware.safety import SafetyGuard
from gipo_robot.loops.actor import PolicyActor
from gipo_robot.loops.console import StatusLine, StopSignals
from gipo_robot.loops.step import guarded_step, knows_task
from gipo_robot.policies.checkpoint import CheckpointError, load_policy
from gipo_robot.train.arm.channel import RunChannel
from gipo_robot.train.arm.config import ArmConfig
from gipo_robot.train.arm.operator import Operator
from gipo_robot.train.arm.report import WINDOW

__all__ = ["ArmActor", "EpisodeResult"]


@dataclasses.dataclass
class EpisodeResult:
    """What one attempt did. ``label`` is ``success``, ``failure``, ``discard`` or ``rerun``; ``index`` the
    store index it was committed as (None if not committed)."""

    steps: int = 0
    label: str = "failure"
    hint: bool | None = None
    ended: str = "max_steps"
    interventions: int = 0
    error: str | None = None
    index: int | None = None
    stop_run: bool = False
    classifier_p: float | None = None


class ArmActor:
    """The actor side of the run in ``channel`` (see the module docstring).

    Args:
        config: the run's settings.
        channel: the run directory.
        robot: the robot, not yet connected (wrapped in a :class:`SafetyGuard` unless it is one).
        operator: labels episodes (``reward="operator"``) and resets scenes (``reset="operator"``).
        device: a teleop device to take over with (``takeover`` toggles; ``save_success``/``save_failure``
            end the episode with that label; ``discard``; ``estop``; ``quit``), or None.
        classifier: a success classifier (``reward="classifier:..."``), or None.
        status_out: where the status line goes; None: stderr.
        status: show it.
        on_episode: called after every episode (``finetune --robot`` restarts a dead learner there).
    """

    def __init__(
        self,
        config: ArmConfig,
        channel: RunChannel,
        robot: Robot,
        *,
        operator: Operator | None = None,
        device: Any = None,
        classifier: Any = None,
        status_out: IO[str] | None = None,
        status: bool = True,
        on_episode: Callable[[], None] | None = None,
    ) -> None:
        self.config, self.channel = config, channel
        self.guard = robot if isinstance(robot, SafetyGuard) else SafetyGuard(robot)
        self.spec = self.guard.spec
        self.operator, self.device, self.classifier = operator, device, classifier
        self.on_episode = on_episode or (lambda: None)
        self.status = StatusLine(status_out or sys.stderr, enabled=status)
        self.knows_task = knows_task(self.guard)
        if config.max_steps is None and not self.knows_task:
            raise ValueError(f"{self.spec.name} cannot tell when an episode ends: give max_steps")
        version, path = channel.latest() or (0, channel.weights / "v000000")
        self.version = version
        policy = load_policy(path)
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + version)
        self.actor = PolicyActor(policy, execute_steps=1, deterministic=False, generator=gen)
        beat = channel.heartbeat("actor")
        self.attempt = int(beat.get("attempts", 0))  # a resumed run goes on with new scenes
        self.robot_s0 = float(beat.get("robot_s", 0.0))
        self.steps_total = int(beat.get("steps", 0))
        self.labels: list[bool] = []
        self.interventions = 0
        self.t0 = time.perf_counter()
        self.store: Any = None

    # --------------------------------------------------------------------------------------------- run

    def run(self, store: Any) -> dict[str, Any]:
        """Run episodes into ``store`` until the budget is spent, the operator quits, or the robot fails.

        Returns:
            ``{"episodes", "successes", "steps", "robot_s", "ended", "error"}`` of this session.
        """
        self.store = store
        self.t0 = time.perf_counter()  # robot time starts when the actor starts acting
        self.labels = [bool(s) for s in store.meta_table()["success"]]
        committed, ended, error = 0, "budget", None
        stop = StopSignals()
        self.beat(finished=False)
        # One intra-op thread while acting: a batch of one gains nothing from more, and idle OpenMP threads
        # spin. With torch's default (2 here) the 20 Hz actor used 40% of a core instead of 12% (measured).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with self.guard, self.device if self.device is not None else _Null():
                while not self._budget_spent():
                    if stop.signal is not None:
                        ended = "interrupted"
                        break
                    result = self.episode(stop)
                    committed += result.index is not None
                    self.on_episode()
                    self.beat(finished=False)
                    if result.stop_run:
                        ended, error = result.ended, result.error
                        break
                    if result.label not in ("discard", "rerun") and self.config.mode == "sync":
                        self._wait_for_learner()
        finally:
            torch.set_num_threads(threads)
            stop.restore()
            self.status.close()
            self.beat(finished=True)
        return {"episodes": committed, "successes": int(sum(self.labels[-committed:])) if committed else 0,
                "steps": self.steps_total, "robot_s": self.robot_s, "ended": ended,
                "error": error}  # fmt: skip

    def _budget_spent(self) -> bool:
        c = self.config
        return (
            (c.episodes is not None and len(self.labels) >= c.episodes)
            or self.steps_total >= c.env_steps
            or (c.robot_minutes is not None and self.robot_s >= 60 * c.robot_minutes)
        )

    @property
    def robot_s(self) -> float:
        """Seconds this run's actor has held the robot (earlier sessions of a resumed run included)."""
        return self.robot_s0 + time.perf_counter() - self.t0

    # ----------------------------------------------------------------------------------------- episode

    def episode(self, stop: StopSignals) -> EpisodeResult:
        """One attempt: swap, reset, steps, label, commit (see the module docstring)."""
        self.swap()
        seed = self.config.seed * 100_003 + self.attempt
        result = EpisodeResult()
        try:
            self._reset(seed)
        except RobotError as err:
            self._hold()
            return EpisodeResult(ended="error", error=f"{type(err).__name__}: {err}", stop_run=True)
        pacer = Pacer(self.spec.period) if self.config.realtime else None
        with self.store.writer(
            source="rollout", task=self.config.task, policy_version=self.version
        ) as writer:
            rows = self._steps(writer, result, pacer, stop)
            self._hold()
            if result.error is None and result.ended not in ("discard", "quit", "interrupted"):
                self._label(result, rows)
            if result.error is not None or result.ended in ("quit", "interrupted"):
                result.stop_run = True
            if result.steps and result.label in ("success", "failure"):
                extra = self._extra(result, seed, pacer)
                result.index = writer.commit(success=result.label == "success", extra=extra)
                self.labels.append(result.label == "success")
        if result.label != "rerun":
            self.attempt += 1
        self.status.note(self._describe_episode(result))
        return result

    def _hold(self) -> None:
        """Hold the arm; a link that is already gone cannot be held (the episode records the error)."""
        try:
            self.guard.hold()
        except RobotError as err:
            self.status.note(f"hold: {err}")

    def _reset(self, seed: int) -> None:
        if self.config.reset == "operator" and self.operator is not None:
            self._hold()
            self.operator.wait_reset(self.config.reset_timeout_s)
        obs = self.guard.reset(seed=seed)
        self.actor.reset()
        if self.device is not None:
            self.device.begin_episode(obs)

    def _steps(self, writer: Any, result: EpisodeResult, pacer: Pacer | None, stop: StopSignals) -> dict:
        """The episode's guarded steps into ``writer``; returns the observations kept for the classifier."""
        keep = list(getattr(self.classifier, "features", ()))
        rows: dict[str, list[np.ndarray]] = {f"obs.{k}": [] for k in keep}
        takeover = False
        t0 = pacer.start() if pacer is not None else time.perf_counter()
        while self.config.max_steps is None or result.steps < self.config.max_steps:
            if pacer is not None:
                pacer.wait()
            if stop.signal is not None:
                result.ended, result.label = "interrupted", "discard"
                return rows
            command = self.device.poll() if self.device is not None else None
            for event in command.events if command is not None else ():
                takeover = not takeover if event == "takeover" else takeover
                if self._end_event(event, result):
                    return rows
            if self.config.swap == "chunk":
                self.swap()
            intervening = takeover and command is not None and command.action is not None
            try:
                step = guarded_step(
                    self.guard, _replay(command.action) if intervening else self.actor.act, t0=t0
                )
            except RobotError as err:
                result.ended, result.error = "error", f"{type(err).__name__}: {err}"
                return rows
            try:
                writer.add(self._row(step, intervening))
            except DatasetError as err:  # a non-finite measurement: a sensor fault, not a step to store
                self._hold()
                result.ended, result.error = "error", f"sensor fault: {err}"
                return rows
            for k in keep:
                rows[f"obs.{k}"].append(np.asarray(step.obs[k]))
            result.steps += 1
            self.steps_total += 1
            result.interventions += int(intervening)
            if step.status is not None:
                result.hint = bool(result.hint) or step.status.success
                if step.status.done:
                    result.ended = "task"
                    break
            self.status.update(functools.partial(self._describe, result, takeover))
        return rows

    def _end_event(self, event: str, result: EpisodeResult) -> bool:
        """Act on an operator event from the device; True if it ends the episode."""
        if event in ("save_success", "save_failure"):
            result.ended, result.label = "operator", "success" if event == "save_success" else "failure"
        elif event == "discard":
            result.ended, result.label = "discard", "discard"
        elif event in ("quit", "estop"):
            if event == "estop":
                self.guard.estop("operator e-stop (teleop device)")
            result.ended, result.label = "quit", "discard"
        else:
            return False
        return True

    def _row(self, step: Any, intervening: bool) -> dict[str, Any]:
        row = step.row(features=self.store.schema)
        if intervening or self.actor.last_sample is None:
            row.update(intervention=intervening, policy_version=-1)
        else:
            sample, logp = self.actor.last_sample
            row.update(sample=sample, logp_per_dim=logp, logp=float(logp.sum()), policy_version=self.version)
        return row

    def _label(self, result: EpisodeResult, rows: dict[str, list[np.ndarray]]) -> None:
        """Decide the episode's label (unless the operator already did with the device)."""
        if result.ended == "operator":
            return
        kind = self.config.reward.split(":", 1)[0]
        if kind == "sim":
            result.label = "success" if result.hint else "failure"
        elif kind == "operator":
            result.label = self.operator.label(len(self.labels), result.hint)
        else:
            success, p = self.classifier.episode_success({k: np.stack(v) for k, v in rows.items()})
            result.label, result.classifier_p = ("success" if success else "failure"), float(p)

    def _extra(self, result: EpisodeResult, seed: int, pacer: Pacer | None) -> dict[str, Any]:
        return {
            "robot": self.spec.name, "seed": seed, "robot_s": self.robot_s, "ended": result.ended,
            "error": result.error, "label_source": "operator" if result.ended == "operator" else
            self.config.reward.split(":", 1)[0], "sim_success": result.hint,
            "classifier_p": result.classifier_p, "intervention_steps": result.interventions,
            "version_end": self.version, "safety": self.guard.intervention_report(),
            "timing": pacer.summary() if pacer is not None else None,
        }  # fmt: skip

    # ------------------------------------------------------------------------------------ weights, learner

    def swap(self) -> bool:
        """Load the newest published version if it is newer than ours; True if it was."""
        latest = self.channel.latest()
        if latest is None or latest[0] <= self.version:
            return False
        try:
            new = load_policy(latest[1])
        except (CheckpointError, OSError):  # pruned or half-visible on a shared mount: next time
            return False
        self.actor.policy.load_state_dict(new.state_dict())
        self.version = latest[0]
        return True

    def _wait_for_learner(self) -> None:
        """Sync mode: wait for a version newer than ours, unless the learner is silent."""
        while True:
            latest = self.channel.latest()
            if latest is not None and latest[0] > self.version:
                return
            beat = self.channel.heartbeat("learner")
            if (
                beat.get("state") in ("failed", "finished")
                or beat.get("age_s", 0.0) > self.config.learner_timeout_s
            ):
                self.status.note(f"learner silent: going on with v{self.version}")
                return
            time.sleep(0.02)

    # ------------------------------------------------------------------------------------------ status

    def beat(self, *, finished: bool) -> None:
        """Write the actor's heartbeat (episodes, attempts, steps, robot time, version, recent success)."""
        rate = float(np.mean(self.labels[-WINDOW:])) if self.labels else None
        self.channel.beat("actor", episodes=len(self.labels), attempts=self.attempt, steps=self.steps_total,
                          robot_s=self.robot_s, version=self.version, success_20=rate,
                          finished=finished)  # fmt: skip

    def _learner_text(self, beat: dict[str, Any]) -> str:
        if not beat:
            return "learner not started"
        if beat.get("age_s", 0.0) > self.config.learner_timeout_s or beat.get("state") == "failed":
            return f"learner silent {beat.get('age_s', 0):.0f} s (acting with v{self.version})"
        return f"learner v{beat.get('version', 0)} {beat.get('updates_per_s', 0.0):.1f} upd/s"

    def _describe(self, result: EpisodeResult, takeover: bool, rate_hz: float = 0.0) -> str:
        rate = f"{100 * np.mean(self.labels[-WINDOW:]):.0f}%" if self.labels else "-"
        beat = self.channel.heartbeat("learner")
        lag = max(0, int(beat.get("version", self.version)) - self.version)  # the beat may trail a publish
        return (
            f"ep {len(self.labels) + 1} step {result.steps} | success({WINDOW}) {rate} | "
            f"interventions {self.interventions + result.interventions} | lag {lag} | "
            f"{self._learner_text(beat)} | "
            f"{self.robot_s / 60:.1f} min" + (" | TAKEOVER" if takeover else "")
        )

    def _describe_episode(self, result: EpisodeResult) -> str:
        self.interventions += result.interventions
        where = f"episode {result.index}" if result.index is not None else "attempt (not stored)"
        return (
            f"{where}: {result.label} ({result.ended}), {result.steps} steps, v{self.version}"
            + (f", {result.interventions} takeover steps" if result.interventions else "")
            + (f", error: {result.error}" if result.error else "")
        )


def _replay(action: np.ndarray) -> Callable[[Any], np.ndarray]:
    """The operator's action as an actor's ``choose`` (observation in, that action out)."""
    return lambda obs: action


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
