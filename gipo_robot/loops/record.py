"""The recording loop: a teleoperation device drives a robot at a fixed rate, every step goes to the store.

Legend: ``A`` action size, ``T`` steps of an episode.

One session, top to bottom (:func:`record`):

1. open the episode store (or create it with :func:`~gipo_robot.loops.record_store.teleop_schema`; an
   existing store must have the same schema and rate: recording resumes by appending);
2. connect the robot behind a :class:`~gipo_robot.hardware.safety.SafetyGuard` and start the device;
3. every control period (``1 / fps`` s, paced against a fixed grid of deadlines): poll the device, act
   on its events (:meth:`_Session.handle_events`), and while an episode is being recorded run the one
   guarded step (:func:`~gipo_robot.loops.step.guarded_step`: observe, choose the action — the device's,
   or a policy's with ``--policy`` unless the operator took over — send it through the guard) and queue
   its row (observation, camera frames, the command actually sent, task status, timestamp, intervention
   flag) for the background writer (:meth:`_Session.control_step`);
4. an episode ends (:meth:`_Session.end_episode`) on ``save_success``/``save_failure`` (committed),
   ``discard`` (dropped; the next ``start`` records it again), the task ending it (a simulated success or
   time-out) or the per-episode time limit. The session ends when the target number of episodes is saved,
   or on ``quit``, ``estop``, Ctrl-C or SIGTERM (an unsaved episode is dropped);
5. or a fault ends it (:meth:`_Session.fault`): the robot failed (an unplugged bus, a servo error, a
   sensor reading NaN, an e-stop of the guard) or the teleop device did. The arm holds, the steps so far
   are committed as a failed episode whose ``extra["error"]`` says why, and the session reports it
   (``SessionResult.ended``/``error``): a fault never loses the episode or escapes as a traceback.

Who labels an episode. A person at the device (``device.labels_episodes``: a keyboard, or a SpaceMouse or
leader arm with one) labels every episode: when the task or the time limit stops the recording, the arm
holds and the recorder waits for ``save_success``/``save_failure``/``discard`` (``y``/``n``/``x``), showing
the simulator's success as a hint where the robot knows it (:meth:`_Session.await_label`). The scripted
device, and a device without event keys, leave it to the task: such an episode is committed at once with
the task's success (False where the robot does not know the task). ``extra["end"]`` says what stopped the
recording (``operator``, ``task``, ``time_limit``) and ``extra["label"]`` who set ``success``
(``operator``: a save event; ``task``).

Timing. A *dropped frame* is a control period whose deadline was missed: the work of one step (device,
policy, robot, queueing) overran into the next period, so the loop skips to the next deadline on the
grid; the count per episode goes to the episode's ``extra["dropped_frames"]``. The slow part of writing
(image encoding, compression, disk) runs on a writer thread
(:class:`~gipo_robot.loops.record_store.BackgroundWriter`), so it never delays a control step. What is
initialised on first use (a policy's first forward; the simulator's compiled step, when it is built) is
warmed up before the session starts (:mod:`gipo_robot.loops.warmup`), so the first episode is timed like
the others. Idle (between episodes, waiting for a label) the arm holds and the safety guard's watchdog
stands down; warnings logged during the session print above the status line (:meth:`StatusLine.logs`).

Crash safety comes from the store's commit protocol: a killed recorder loses only the episode in flight;
the next session appends after the last committed episode.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from gipo_robot.hardware.pacing import Pacer
from gipo_robot.hardware.robot import Robot, RobotError
from gipo_robot.hardware.safety import EStopError, SafetyGuard
from gipo_robot.loops.console import StatusLine, StopSignals
from gipo_robot.loops.record_store import BackgroundWriter, open_store
from gipo_robot.loops.step import Actor, guarded_step
from gipo_robot.loops.warmup import warm_up_actor
from gipo_robot.teleop.devices import DeviceCommand, TeleopDevice, TeleopError

__all__ = ["RecorderConfig", "SessionResult", "record"]

# ------------------------------------------------------------------------------------------------ config


@dataclasses.dataclass
class RecorderConfig:
    """One recording session. Saved into the store's attributes (``recorder``)."""

    out: str
    """Episode store to create, or to append to if it exists."""
    task: str = ""
    """Task name or instruction recorded with every episode."""
    episodes: int = 1
    """Stop after saving this many episodes in this session."""
    max_seconds: float | None = None
    """Per-episode time limit, s (``round(max_seconds * fps)`` steps); recording stops when it is reached
    and the episode is saved, or, where a person labels episodes, held until they do. None: no limit."""
    fps: float | None = None
    """Control and recording rate, Hz; None: the robot's ``spec.control_hz``."""
    realtime: bool = True
    """Pace the loop at ``fps``. False runs as fast as the robot steps (simulation only; no drops counted)."""
    seed: int | None = None
    """Simulated scenes: attempt ``i`` resets with seed ``seed + i`` (None: the env's own sequence)."""
    image_codec: str | None = None
    """Frame codec of camera features in a new store (None: the store's default, lossless QOI)."""
    flush_steps: int = 32
    """Steps buffered by the writer before they go to disk."""
    status: bool = True
    """Print the live status line on stderr."""

    def __post_init__(self) -> None:
        self.out = str(self.out)
        if not self.out:
            raise ValueError("RecorderConfig.out must name a store path")
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"RecorderConfig.episodes must be an int >= 1, got {self.episodes!r}")
        if self.max_seconds is not None and not (math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise ValueError(f"RecorderConfig.max_seconds must be > 0, got {self.max_seconds}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"RecorderConfig.fps must be > 0 Hz, got {self.fps}")
        if not isinstance(self.flush_steps, int) or self.flush_steps < 1:
            raise ValueError(f"RecorderConfig.flush_steps must be an int >= 1, got {self.flush_steps!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class SessionResult:
    """What a session did."""

    saved: list[int] = dataclasses.field(default_factory=list)
    """Store indices of the episodes saved, in order."""
    successes: int = 0
    discarded: int = 0
    steps: int = 0
    dropped_frames: int = 0
    ended: str = "target"
    """Why the session ended: ``target`` (episode count reached), ``quit``, ``interrupted`` (Ctrl-C), or the
    robot stopped: ``estop`` (the operator's or the guard's), ``robot_fault`` (an unplugged bus, a servo
    error, a sensor reading NaN) or ``device_fault`` (the teleop device failed)."""
    error: str | None = None
    """What stopped the robot (``BusError: ...``), or None."""
    store_episodes: int = 0
    """Episodes in the store afterwards (earlier sessions included)."""
    episodes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Per saved episode: index, steps, success, end reason, dropped frames, period stats."""
    max_writer_backlog: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Episode:
    """Book-keeping of the episode being recorded."""

    attempt: int
    seed: int | None
    t0: float
    steps: int = 0
    dropped: int = 0
    takeover: bool = False
    interventions: int = 0
    success: bool = False
    task_known: bool = False
    stopped: str | None = None
    """Why recording stopped (``task`` or ``time_limit``) while the episode waits for the operator's label."""
    times: list[float] = dataclasses.field(default_factory=list)
    busy: list[float] = dataclasses.field(default_factory=list)

    def extra(self, period: float, reason: str, device: str, guard: Any) -> dict[str, Any]:
        """The episode's ``extra`` metadata: timing, how it ended, who labelled it, safety interventions.

        ``reason``: ``operator`` (a save event), ``task``, ``time_limit``, or a fault (``robot_fault``,
        ``device_fault``, ``estop``: then the episode is a failure no one labelled)."""
        dt = np.diff(self.times) if len(self.times) > 1 else np.full(1, period)
        error = np.abs(dt - period)
        duration = self.times[-1] - self.times[0] if self.times else 0.0
        return {
            "end": reason if reason in FAULTS else self.stopped or reason,
            "label": "operator" if reason == "operator" else "fault" if reason in FAULTS else "task",
            "device": device,
            "attempt": self.attempt,
            "seed": self.seed,
            "dropped_frames": self.dropped,
            "fps": (len(self.times) - 1) / duration if duration > 0 else None,
            "period_error_p50_ms": float(np.percentile(error, 50) * 1e3),
            "period_error_p99_ms": float(np.percentile(error, 99) * 1e3),
            "step_ms_p50": float(np.percentile(self.busy, 50) * 1e3) if self.busy else None,
            "step_ms_p99": float(np.percentile(self.busy, 99) * 1e3) if self.busy else None,
            "intervention_steps": self.interventions,
            "safety": guard.intervention_report(),
        }


class _Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM during a session."""


# -------------------------------------------------------------------------------------------- the loop


def record(
    robot: Robot,
    device: TeleopDevice,
    config: RecorderConfig,
    *,
    policy: Actor | None = None,
    safety: Any = None,
    status_stream: IO[str] | None = None,
) -> SessionResult:
    """Run one recording session; see the module docstring.

    Args:
        robot: the follower (not yet connected); wrapped in a
            :class:`~gipo_robot.hardware.safety.SafetyGuard` unless it is one.
        device: the operator's device (not yet started).
        config: the session settings.
        policy: an actor that drives the robot while the operator has not taken over (``takeover``
            toggles), e.g. a :class:`~gipo_robot.loops.actor.PolicyActor`; None: the device drives.
        safety: a :class:`~gipo_robot.hardware.safety.SafetyConfig` for the guard (None: defaults).
        status_stream: where the live status line goes (stderr by default).

    Returns:
        A :class:`SessionResult`.

    Raises:
        DatasetError: the store at ``config.out`` does not fit this session.
        TeleopError: the device failed to start.
        RobotError: the robot could not connect. Faults once it is up end the session instead (step 5).
    """
    guard = robot if isinstance(robot, SafetyGuard) else SafetyGuard(robot, safety)
    status_out = status_stream if status_stream is not None else sys.stderr
    session = _Session(guard, device, config, policy, status_out)
    guard.set_period(session.period)  # --fps other than the robot's: the velocity limits stay in rad/s
    attrs = {"recorder": config.to_dict(), "device": device.name, "policy": policy is not None}

    def store() -> Any:
        return open_store(config.out, guard.spec, session.fps, attrs, image_codec=config.image_codec)

    # An existing store is checked before anything starts; a new one is created once the device and the
    # robot are up, so a device that fails to start leaves no empty store behind.
    opened = store() if Path(config.out).exists() else None
    result = session.result
    t_session = time.perf_counter()
    stop = StopSignals()
    connected = False
    try:
        with guard, device:
            connected = True
            if opened is None:
                opened = store()
            session.writer = BackgroundWriter(opened, flush_steps=config.flush_steps)
            warm_up_actor(policy, guard.spec)
            session.status.note(device.help())
            with session.status.logs():
                session.run(stop)
    except (KeyboardInterrupt, _Interrupted):
        result.ended = "interrupted"
    except RobotError as err:  # leaving the block: the hold before disconnecting failed (the bus is gone)
        if not connected:
            raise  # the robot never came up: an error, and nothing was recorded
        if result.error is None:  # else the session's own fault, already recorded, came first
            result.ended, result.error = _fault_kind(err), f"{type(err).__name__}: {err}"
    finally:
        stop.restore()
        session.status.close()
        if session.writer is not None:
            session.writer.close()
            result.max_writer_backlog = session.writer.max_backlog
    result.store_episodes = opened.n_episodes if opened is not None else 0
    result.seconds = time.perf_counter() - t_session
    return result


class _Session:
    """The state of one session's control loop and the steps of one loop iteration (see :func:`record`)."""

    def __init__(
        self,
        guard: SafetyGuard,
        device: TeleopDevice,
        config: RecorderConfig,
        policy: Actor | None,
        status_out: IO[str],
    ) -> None:
        self.guard = guard
        self.device = device
        self.config = config
        self.policy = policy
        self.fps = float(config.fps or guard.spec.control_hz)
        self.period = 1.0 / self.fps
        self.max_steps = None if config.max_seconds is None else max(1, round(config.max_seconds * self.fps))
        self.pacer = Pacer(self.period)
        self.status = StatusLine(status_out, enabled=config.status)
        self.result = SessionResult()
        self.writer: BackgroundWriter | None = None
        self.episode: _Episode | None = None
        self.attempt = 0

    @property
    def recording(self) -> bool:
        """An episode is open and taking steps (not waiting for the operator's label)."""
        return self.episode is not None and self.episode.stopped is None

    def run(self, stop: StopSignals) -> None:
        """The control loop until the session ends; a robot or device fault ends it (:meth:`fault`)."""
        try:
            self.loop(stop)
        except (RobotError, TeleopError) as err:  # an e-stop is a RobotError too
            self.fault(err)

    def fault(self, err: RobotError | TeleopError) -> None:
        """The robot or the device failed: hold the arm, commit the steps so far as a failed episode whose
        ``extra["error"]`` says why, and end the session (``result.ended`` names the fault)."""
        result = self.result
        result.ended, result.error = _fault_kind(err), f"{type(err).__name__}: {err}"
        self.status.note(f"stopped: {result.error}; holding the arm")
        self.guard.hold()  # never raises: a hold on a link that is gone is logged
        if self.episode is not None:
            self.end_episode(result.ended, False, error=result.error)

    def loop(self, stop: StopSignals) -> None:
        """The control loop, one iteration per control period, until the session ends."""
        while True:
            if stop.signal is not None:  # checked here, between steps: see StopSignals
                raise _Interrupted(stop.signal)
            # --- wait for this period's deadline (idle periods do not count as drops)
            if self.config.realtime:
                missed = self.pacer.wait()
                if self.recording and self.episode.steps:
                    self.episode.dropped += missed
                    self.episode.busy.append(self.pacer.busy)
            command = self.device.poll()
            end, started, reset_scene = self.handle_events(command.events)
            if self.recording and end is None and not started:
                end = self.control_step(command)
                if end is not None and self.device.labels_episodes:
                    self.await_label(end[0])
                    end = None
            if self.episode is not None and end is not None:
                self.end_episode(*end)
            if reset_scene:
                self.guard.reset()  # a new scene (sim) or the home pose (real arm), while idle
            if self.result.ended in ("quit", "estop") or len(self.result.saved) >= self.config.episodes:
                return
            self.status.update(self.describe)

    def handle_events(self, events: Sequence[str]) -> tuple[tuple[str, bool] | None, bool, bool]:
        """Act on the operator's control events, in order, until one ends the episode.

        Returns:
            ``(end, started, reset_scene)``: ``(reason, success)`` if an event ended the episode (reason
            ``operator`` or ``discard``), whether an episode started (its first step comes from the next
            poll, made for it), and whether the scene is to be reset once the episode is over.
        """
        end, started, reset_scene = None, False, False
        for event in events:
            episode = self.episode
            if event == "start" and episode is None:
                self.start_episode()
                started = True
            elif event in ("save_success", "save_failure") and episode is not None:
                end = ("operator", event == "save_success")
            elif event == "discard" and episode is not None:
                end = ("discard", False)
            elif event == "reset":
                end = ("discard", False) if episode is not None else None
                reset_scene = True
            elif event == "takeover" and self.recording and self.policy is not None:
                episode.takeover = not episode.takeover
                self.policy.reset()
            elif event in ("quit", "estop"):
                end = end or ("discard", False)
                self.result.ended = event
                if event == "estop":
                    self.guard.estop("operator e-stop (teleop device)")
            if end is not None:
                break
        return end, started, reset_scene

    def start_episode(self) -> None:
        """Reset the scene (seed ``config.seed + attempt``), the device and the policy; open the episode."""
        seed = None if self.config.seed is None else self.config.seed + self.attempt
        obs = self.guard.reset(seed=seed)
        self.device.begin_episode(obs)
        if self.policy is not None:
            self.policy.reset()
        self.episode = _Episode(attempt=self.attempt, seed=seed, t0=time.perf_counter())
        self.attempt += 1
        self.writer.begin(source="teleop", task=self.config.task, start_time=time.time())
        self.pacer.restart()

    def control_step(self, command: DeviceCommand) -> tuple[str, bool] | None:
        """One guarded step of the episode being recorded, queued for the writer.

        Returns:
            ``(reason, success)`` if the step ended the episode (the task said so, or the time limit).
        """
        episode = self.episode
        if episode.steps == 0:
            episode.t0 = time.perf_counter()
        step = guarded_step(self.guard, lambda obs: self.choose(obs, command), t0=episode.t0)
        nonfinite = step.nonfinite()
        if nonfinite is not None:  # caught here: the writer thread would reject the row, dropping the episode
            raise RobotError(f"sensor fault: NaN or inf in {nonfinite} at step {episode.steps}")
        # the observation's time in the episode: measured when paced, nominal when not
        t = step.timestamp if self.config.realtime else episode.steps * self.period
        intervening = episode.takeover and self.policy is not None
        self.writer.add({**step.row(timestamp=t, copy=True), "intervention": intervening})
        episode.steps += 1
        episode.times.append(t)
        episode.interventions += int(intervening)
        task = step.status
        episode.task_known = task is not None
        episode.success = episode.success or bool(task is not None and task.success)
        if task is not None and task.done:
            return ("task", episode.success)
        if self.max_steps is not None and episode.steps >= self.max_steps:
            return ("time_limit", episode.success)
        return None

    def await_label(self, reason: str) -> None:
        """The task or the time limit stopped the recording of an episode a person labels: hold the arm
        and wait for their ``save_success``/``save_failure``/``discard`` (the task's ``success`` is only a
        hint); the episode stays open until then."""
        episode = self.episode
        episode.stopped = reason
        self.guard.hold()
        self.status.note(
            f"episode {len(self.result.saved) + 1} stopped ({_STOPPED[reason]}{self.hint()}), arm holding: "
            "label it: y success, n failure, x discard"
        )

    def hint(self) -> str:
        """``; sim:Lift says success``: the task's verdict as a hint, or nothing where the robot has none."""
        episode = self.episode
        if not episode.task_known:
            return ""
        return f"; {self.guard.spec.name} says {'success' if episode.success else 'failure'}"

    def choose(self, obs: Mapping[str, np.ndarray], command: DeviceCommand) -> np.ndarray:
        """The policy's action unless the operator took over (or none drives); else the device's."""
        if self.policy is not None and not self.episode.takeover:
            return self.policy.act(obs)
        if command.action is None:
            raise TeleopError(f"{self.device.name}: no action while recording (step {self.episode.steps})")
        return command.action

    def end_episode(self, reason: str, success: bool, *, error: str | None = None) -> None:
        """Commit the episode (or drop it: discarded, or no step yet), then hold the arm (after a fault,
        :meth:`fault` has tried the hold and the device is no longer asked)."""
        episode, result = self.episode, self.result
        if reason == "discard" or episode.steps == 0:
            self.writer.discard()
            result.discarded += 1
            self.status.note(f"attempt {episode.attempt} discarded after {episode.steps} steps")
        else:
            extra = episode.extra(self.period, reason, self.device.name, self.guard)
            if error is not None:
                extra["error"] = error
            index = self.writer.commit(success=success, extra=extra)
            result.saved.append(index)
            result.successes += int(success)
            result.steps += episode.steps
            result.dropped_frames += episode.dropped
            result.episodes.append({"index": index, "steps": episode.steps, "success": success, **extra})
            outcome = "success" if success else "failure"
            self.status.note(
                f"episode {index} saved ({outcome}, {extra['end']}, labelled by {extra['label']}): "
                f"{episode.steps} steps, {episode.steps * self.period:.1f} s, dropped {episode.dropped}"
            )
        self.episode = None
        if reason not in FAULTS:
            self.device.end_episode()
            self.guard.hold()

    def describe(self, rate: float) -> str:
        """The status line's text, ``rate`` the loop's measured rate (Hz)."""
        result, episode, target = self.result, self.episode, self.config.episodes
        tally = f"saved {len(result.saved)} discarded {result.discarded}"
        if episode is None:
            return f"idle | saved {len(result.saved)}/{target} | discarded {result.discarded}"
        if episode.stopped is not None:
            return (
                f"LABEL episode {len(result.saved) + 1}/{target} | {_STOPPED[episode.stopped]}{self.hint()} "
                f"| y success, n failure, x discard | holding | {tally}"
            )
        return (
            f"REC episode {len(result.saved) + 1}/{target} | {episode.steps / self.fps:5.1f} s | "
            f"{rate:4.1f} Hz | dropped {episode.dropped}"
            + (" | TAKEOVER" if episode.takeover else "")
            + f" | {tally}"
        )


_STOPPED = {"task": "the task ended it", "time_limit": "time limit"}
"""How the status line says why recording stopped."""

FAULTS = ("estop", "robot_fault", "device_fault")
"""The session endings where the robot stopped (the CLI's exit code 3)."""


def _fault_kind(err: Exception) -> str:
    if isinstance(err, EStopError):
        return "estop"
    return "robot_fault" if isinstance(err, RobotError) else "device_fault"
