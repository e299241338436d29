"""The recording loop: a teleoperation device drives a robot at a fixed rate, every step goes to the store.

Legend: ``A`` action size, ``T`` steps of an episode.

One session, top to bottom (:func:`record`):

1. open the episode store (or create it with :func:`teleop_schema`; an existing store must have the same
   schema and rate: recording resumes by appending);
2. connect the robot behind a :class:`~gipo_robot.hardware.safety.SafetyGuard` and start the device;
3. every control period (``1 / fps`` s, paced against a fixed grid of deadlines): poll the device, act
   on its events, and while an episode is being recorded: observe, choose the action (the device's, or a
   policy's with ``--policy`` unless the operator took over), send it through the guard, and queue the
   step (observation, camera frames, the command actually sent, task status, timestamp, intervention
   flag) for the background writer;
4. an episode ends on ``save_success``/``save_failure`` (committed), ``discard`` (dropped; the next
   ``start`` records it again), the task ending it (a simulated success or time-out: committed with the
   task's success), or the per-episode time limit (committed). The session ends when the target number of
   episodes is saved, or on ``quit``, ``estop``, Ctrl-C or SIGTERM (an unsaved episode is dropped).

Timing. A *dropped frame* is a control period whose deadline was missed: the work of one step (device,
policy, robot, queueing) overran into the next period, so the loop skips to the next deadline on the
grid; the count per episode goes to the episode's ``extra["dropped_frames"]``. The slow part of writing
(image encoding, compression, disk) runs on a writer thread that owns the store's
:class:`~gipo_robot.datasets.store.EpisodeWriter`, so it never delays a control step.

Crash safety comes from the store's commit protocol: a killed recorder loses only the episode in flight;
the next session appends after the last committed episode.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from gipo_robot.datasets.schema import DatasetError, Feature, Schema
from gipo_robot.hardware.pacing import Pacer
from gipo_robot.hardware.robot import Robot, RobotSpec
from gipo_robot.teleop.devices import TeleopDevice, TeleopError

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
    """Per-episode time limit, s (``round(max_seconds * fps)`` steps); the episode is saved when it is
    reached. None: no limit."""
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


# ------------------------------------------------------------------------------------------------ schema


def teleop_schema(spec: RobotSpec, *, image_codec: str | None = None) -> Schema:
    """The store schema of a teleop session on a robot with ``spec``.

    Features: ``obs.<name>`` per observation (uint8 ``(H, W, C)`` images, float32 otherwise), ``action``
    (A,) float32 (the command actually sent), ``reward``, ``terminated``, ``truncated``, ``success`` (the
    task's, where the robot knows it), ``timestamp`` (s since the episode start), the rollout features
    ``logp``/``policy_version`` (filled 0.0/-1), and ``intervention`` (bool: the operator had taken over
    from a policy at this step). The same features as scripted sim demos
    (:func:`gipo_robot.datasets.schema.step_schema`) plus ``intervention``.
    """
    from gipo_robot.datasets.schema import step_schema

    intervention = Feature("intervention", "bool", (), "scalar", fill=False)
    return step_schema(spec, image_codec=image_codec, extra=(intervention,))


def open_store(config: RecorderConfig, spec: RobotSpec, fps: float, attrs: Mapping[str, Any]) -> Any:
    """Create the store at ``config.out``, or open it for appending after checking it fits this session.

    Raises:
        DatasetError: the existing store's schema or rate differs (the message lists the differences).
    """
    from gipo_robot.datasets.store import EpisodeStore

    schema = teleop_schema(spec, image_codec=config.image_codec)
    if not Path(config.out).exists():
        return EpisodeStore.create(config.out, schema, fps=fps, robot=spec.to_dict(), attrs=attrs)
    store = EpisodeStore.open(config.out, "a")
    have = {f.name: f.to_json() for f in store.schema.features}
    want = {f.name: f.to_json() for f in schema.features}
    problems = [f"missing feature {n!r}" for n in want if n not in have]
    problems += [f"extra feature {n!r}" for n in have if n not in want]
    problems += [
        f"feature {n!r} is {_describe(have[n])}, this session records {_describe(want[n])}"
        for n in want
        if n in have and _comparable(have[n]) != _comparable(want[n])
    ]
    if not math.isclose(store.fps, fps, rel_tol=1e-9):
        problems.append(f"it was recorded at {store.fps} Hz, this session runs at {fps} Hz")
    if problems:
        raise DatasetError(
            "cannot append: the store does not match this robot and session: "
            + "; ".join(problems)
            + " (record into a new --out store)",
            path=config.out,
        )
    return store


def _comparable(feature: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in feature.items() if k not in ("codec", "quality")}


def _describe(feature: dict[str, Any]) -> str:
    return f"{feature['dtype']} {tuple(feature['shape'])}"


# ------------------------------------------------------------------------------------ background writer


class BackgroundWriter:
    """Owns the store's :class:`EpisodeWriter` on a thread, so encoding and disk writes leave the loop.

    ``begin``/``add``/``discard`` only queue work; ``commit`` waits for the episode to be committed and
    returns its index. An error on the writer thread is raised by the next call.
    """

    def __init__(self, store: Any, *, flush_steps: int = 32) -> None:
        self.store = store
        self.flush_steps = flush_steps
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self.max_backlog = 0
        """The most steps that waited in the queue at once (how far writing fell behind)."""
        self._thread = threading.Thread(target=self._run, name="episode-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        writer = None
        while True:
            op, payload, done = self._queue.get()
            try:
                if self._error is not None and op != "stop":
                    continue
                if op == "begin":
                    writer = self.store.writer(flush_steps=self.flush_steps, **payload)
                elif op == "add":
                    writer.add(payload)
                elif op == "commit":
                    done.append(writer.commit(**payload))
                    writer = None
                elif op == "discard":
                    if writer is not None:
                        writer.discard()
                    writer = None
                elif op == "stop":
                    if writer is not None:
                        writer.discard()
                    return
            except BaseException as err:  # reported on the control thread by the next call
                self._error = err
                if writer is not None:
                    writer.discard()
                    writer = None
            finally:
                if done is not None:
                    done.append(None)  # wakes a waiting caller (an error shows up in self._error)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _put(self, op: str, payload: Any = None, wait: bool = False) -> list:
        self._check()
        done: list | None = [] if wait else None
        self._queue.put((op, payload, done))
        if op == "add":
            self.max_backlog = max(self.max_backlog, self._queue.qsize())
        if wait:
            while not done:
                time.sleep(0.001)
            self._check()
        return done or []

    def begin(self, **meta: Any) -> None:
        self._put("begin", meta)

    def add(self, step: dict[str, Any]) -> None:
        self._put("add", step)

    def commit(self, **meta: Any) -> int:
        return int(self._put("commit", meta, wait=True)[0])

    def discard(self) -> None:
        self._put("discard", wait=True)

    def close(self) -> None:
        """Drop an open episode and stop the thread (waits for queued work)."""
        if self._thread.is_alive():
            self._queue.put(("stop", None, None))
            self._thread.join()


# --------------------------------------------------------------------------------------- policy driving


class PolicyDriver:
    """A :class:`~gipo_robot.policies.gaussian.GaussianPolicy` acting on robot observations (its mean
    action, one chunk at a time), for sessions where a policy drives and the operator may take over."""

    def __init__(self, policy: Any, spec: RobotSpec) -> None:
        from gipo_robot.policies.checkpoint import check_spec

        low_dim = {k: list(v) for k, v in spec.obs_shapes.items() if spec.obs_dtypes.get(k) != "uint8"}
        check_spec(policy.config, low_dim=low_dim, action_dim=spec.action_dim, where="--policy")
        self.policy = policy.eval()
        self.keys = sorted(policy.config.low_dim) + sorted(policy.config.images)
        self._queue: list[np.ndarray] = []

    @classmethod
    def load(cls, path: str | Path, spec: RobotSpec) -> PolicyDriver:
        from gipo_robot.policies import load_policy

        return cls(load_policy(path), spec)

    def reset(self) -> None:
        """Forget the rest of the current chunk (re-plan from the next observation)."""
        self._queue = []

    def act(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        from gipo_robot.policies.evaluate import obs_to_torch

        if not self._queue:
            with torch.no_grad():
                chunk = self.policy.mode(obs_to_torch(dict(observation), self.keys))[0].numpy()
            self._queue = list(chunk.astype(np.float64))
        return self._queue.pop(0)


# -------------------------------------------------------------------------------------------- the loop


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
    """Why the session ended: ``target`` (episode count reached), ``quit``, ``estop`` or ``interrupted``."""
    store_episodes: int = 0
    """Episodes in the store afterwards (earlier sessions included)."""
    episodes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Per saved episode: index, steps, success, end reason, dropped frames, period stats."""
    max_writer_backlog: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM during a session."""


def record(
    robot: Robot,
    device: TeleopDevice,
    config: RecorderConfig,
    *,
    policy: PolicyDriver | None = None,
    safety: Any = None,
    status_stream: IO[str] | None = None,
) -> SessionResult:
    """Run one recording session; see the module docstring.

    Args:
        robot: the follower (not yet connected); wrapped in a
            :class:`~gipo_robot.hardware.safety.SafetyGuard` unless it is one.
        device: the operator's device (not yet started).
        config: the session settings.
        policy: a policy that drives the robot while the operator has not taken over (``takeover``
            toggles); None: the device drives.
        safety: a :class:`~gipo_robot.hardware.safety.SafetyConfig` for the guard (None: defaults).
        status_stream: where the live status line goes (stderr by default).

    Returns:
        A :class:`SessionResult`.

    Raises:
        DatasetError: the store at ``config.out`` does not fit this session.
        TeleopError: the device failed or gave no action while recording.
        RobotError: the robot failed (the arm is left holding).
    """
    from gipo_robot.hardware.safety import EStopError, SafetyGuard

    guard = robot if isinstance(robot, SafetyGuard) else SafetyGuard(robot, safety)
    spec = guard.spec
    fps = float(config.fps or spec.control_hz)
    period = 1.0 / fps
    max_steps = None if config.max_seconds is None else max(1, round(config.max_seconds * fps))
    status_out = status_stream if status_stream is not None else sys.stderr
    attrs = {"recorder": config.to_dict(), "device": device.name, "policy": policy is not None}
    # An existing store is checked before anything starts; a new one is created once the device and the
    # robot are up, so a device that fails to start leaves no empty store behind.
    store = open_store(config, spec, fps, attrs) if Path(config.out).exists() else None
    writer: BackgroundWriter | None = None
    result = SessionResult()
    t_session = time.perf_counter()

    pacer = Pacer(period)
    status = _StatusLine(status_out, enabled=config.status, target=config.episodes)
    stop = _StopSignals()
    episode: _Episode | None = None
    attempt = 0
    try:
        with guard, device:
            if store is None:
                store = open_store(config, spec, fps, attrs)
            writer = BackgroundWriter(store, flush_steps=config.flush_steps)
            status.note(device.help())
            while True:
                if stop.signal is not None:  # checked here, between steps: see _StopSignals
                    raise _Interrupted(stop.signal)
                # --- wait for this period's deadline (idle periods do not count as drops)
                if config.realtime:
                    missed = pacer.wait()
                    if episode is not None and episode.steps:
                        episode.dropped += missed
                        episode.busy.append(pacer.busy)
                command = device.poll()

                # --- control events
                end = None
                started = reset_scene = False
                for event in command.events:
                    if event == "start" and episode is None:
                        seed = None if config.seed is None else config.seed + attempt
                        obs = guard.reset(seed=seed)
                        device.begin_episode(obs)
                        if policy is not None:
                            policy.reset()
                        episode = _Episode(attempt=attempt, seed=seed, t0=time.perf_counter())
                        attempt += 1
                        writer.begin(source="teleop", task=config.task, start_time=time.time())
                        pacer.restart()
                        started = True  # the first step comes from the next poll, made for this episode
                    elif event in ("save_success", "save_failure") and episode is not None:
                        end = ("operator", event == "save_success")
                    elif event == "discard" and episode is not None:
                        end = ("discard", False)
                    elif event == "reset":
                        end = ("discard", False) if episode is not None else None
                        reset_scene = True
                    elif event == "takeover" and episode is not None and policy is not None:
                        episode.takeover = not episode.takeover
                        policy.reset()
                    elif event in ("quit", "estop"):
                        end = end or ("discard", False)
                        result.ended = "quit" if event == "quit" else "estop"
                        if event == "estop":
                            guard.estop("operator e-stop (teleop device)")
                    if end is not None:
                        break

                # --- one control step of the episode being recorded
                if episode is not None and end is None and not started:
                    obs = guard.observe()
                    # the observation's time in the episode: measured when paced, nominal when not
                    if episode.steps == 0:
                        episode.t0 = time.perf_counter()
                    t = time.perf_counter() - episode.t0 if config.realtime else episode.steps * period
                    if policy is not None and not episode.takeover:
                        action = policy.act(obs)
                    elif command.action is None:
                        raise TeleopError(f"{device.name}: no action while recording (step {episode.steps})")
                    else:
                        action = command.action
                    sent = guard.act(action)
                    task = guard.task_status()
                    step = {f"obs.{k}": np.array(v) for k, v in obs.items()}
                    intervening = episode.takeover and policy is not None
                    step.update(action=sent, timestamp=t, intervention=intervening)
                    if task is not None:
                        step.update(
                            reward=task.reward,
                            terminated=task.terminated,
                            truncated=task.truncated,
                            success=task.success,
                        )
                    writer.add(step)
                    episode.steps += 1
                    episode.times.append(t)
                    episode.interventions += int(step["intervention"])
                    episode.success = episode.success or bool(task is not None and task.success)
                    if task is not None and task.done:
                        end = ("task", episode.success)
                    elif max_steps is not None and episode.steps >= max_steps:
                        end = ("time_limit", episode.success)

                # --- end of an episode
                if episode is not None and end is not None:
                    reason, success = end
                    if reason == "discard" or episode.steps == 0:
                        writer.discard()
                        result.discarded += 1
                        status.note(f"attempt {episode.attempt} discarded after {episode.steps} steps")
                    else:
                        extra = episode.extra(period, reason, device.name, guard)
                        index = writer.commit(success=success, extra=extra)
                        result.saved.append(index)
                        result.successes += int(success)
                        result.steps += episode.steps
                        result.dropped_frames += episode.dropped
                        result.episodes.append(
                            {"index": index, "steps": episode.steps, "success": success, **extra}
                        )
                        outcome = "success" if success else "failure"
                        status.note(
                            f"episode {index} saved ({outcome}, {reason}): {episode.steps} steps, "
                            f"{episode.steps * period:.1f} s, dropped {episode.dropped}"
                        )
                    device.end_episode()
                    guard.hold()
                    episode = None
                if reset_scene:
                    guard.reset()  # a new scene (sim) or the home pose (real arm), while idle
                if result.ended in ("quit", "estop") or len(result.saved) >= config.episodes:
                    break
                status.update(episode, result, fps)
    except (KeyboardInterrupt, _Interrupted):
        result.ended = "interrupted"
    except EStopError:
        result.ended = "estop"
    finally:
        stop.restore()
        status.close()
        if writer is not None:
            writer.close()
            result.max_writer_backlog = writer.max_backlog
    result.store_episodes = store.n_episodes if store is not None else 0
    result.seconds = time.perf_counter() - t_session
    return result


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
    times: list[float] = dataclasses.field(default_factory=list)
    busy: list[float] = dataclasses.field(default_factory=list)

    def extra(self, period: float, reason: str, device: str, guard: Any) -> dict[str, Any]:
        """The episode's ``extra`` metadata: timing, how it ended, safety interventions."""
        dt = np.diff(self.times) if len(self.times) > 1 else np.full(1, period)
        error = np.abs(dt - period)
        duration = self.times[-1] - self.times[0] if self.times else 0.0
        return {
            "end": reason,
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


class _StatusLine:
    """The live status line on stderr (rewritten in place on a terminal, else printed every ~5 s)."""

    def __init__(self, out: IO[str], *, enabled: bool, target: int) -> None:
        self.out = out
        self.enabled = enabled
        self.target = target
        self.tty = enabled and hasattr(out, "isatty") and out.isatty()
        self._last = 0.0
        self._times: list[float] = []
        self._width = 0

    def update(self, episode: _Episode | None, result: SessionResult, fps: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        self._times = [t for t in (*self._times, now) if now - t <= 1.0]
        if now - self._last < (0.25 if self.tty else 5.0):
            return
        self._last = now
        rate = (len(self._times) - 1) / (self._times[-1] - self._times[0]) if len(self._times) > 1 else 0.0
        if episode is None:
            line = f"idle | saved {len(result.saved)}/{self.target} | discarded {result.discarded}"
        else:
            line = (
                f"REC episode {len(result.saved) + 1}/{self.target} | {episode.steps / fps:5.1f} s | "
                f"{rate:4.1f} Hz | dropped {episode.dropped}"
                + (" | TAKEOVER" if episode.takeover else "")
                + f" | saved {len(result.saved)} discarded {result.discarded}"
            )
        if self.tty:
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def note(self, message: str) -> None:
        """A line that stays (episode saved, key map)."""
        if not self.enabled or not message:
            return
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.out.write(message + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.out.write("\r\n")
            self.out.flush()


class _StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM end the session like ``quit`` minus saving: the arm holds, the unsaved
    episode is dropped, the terminal is restored. The handlers only set :attr:`signal`, and the loop checks
    it between steps: an exception raised from a handler can land inside robosuite's numba controller,
    which turns it into a ``SystemError`` instead of a clean stop. A second signal before the loop has
    seen the first raises ``KeyboardInterrupt`` at once (a way out of a loop stuck in a device read).
    Main thread only (a Python rule for signal handlers); elsewhere nothing is installed."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
