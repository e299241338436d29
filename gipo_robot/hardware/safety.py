"""The safety guard every action passes before it reaches an arm: limits, NaN reject, watchdog, e-stop.

Legend: ``A`` action size, ``J`` number of joints, ``T`` the control loop's period (s,
:attr:`SafetyGuard.period`: the robot's ``spec.period`` unless the loop runs at another rate, e.g. a
recording at ``--fps 10`` on a 30 Hz arm; the per-step limits then stay the same in rad/s).

The limits are pure functions of arrays in :mod:`gipo_robot.hardware.limits` (LeRobot's
``ensure_safe_goal_position`` style), so each one can be read and tested alone; :class:`SafetyGuard` is a
:class:`~gipo_robot.hardware.robot.Robot` that wraps another, applies them to every
:meth:`SafetyGuard.act`, counts what it changed and returns the normalised command actually sent. The
checks, in the order they run on one action:

``nan``
    A NaN or inf anywhere in the action: nothing is sent, the arm holds (``robot.hold()``), and the hold
    command is returned. ``SafetyConfig.nan_estop_after`` rejected actions in a row trigger an e-stop.
``sensor``
    A NaN or inf in a floating-point observation feature (e.g. a ROS joint reporting ``null``) is a sensor
    fault, counted once per observation: the next ``act`` sends nothing, holds and returns the previous
    (finite) target, so no limit is ever computed from an unknown position.
    ``SafetyConfig.sensor_estop_after`` faulty observations in a row trigger an e-stop.
``joint_limit``
    Joint modes: the joint target (``joint_position``: the action; ``joint_delta``: the measured position
    plus the action) is clamped into ``[joint_low + margin, joint_high - margin]``.
``delta``
    The displacement one step commands (``joint_position``: target minus the previous target, or the
    measured position right after ``reset``; delta modes: the action itself) is clamped to
    ``max_step`` per motion dimension, scaled by the soft-start ramp for the first steps after connect.
``velocity``
    Joint modes: ``|target - measured| / T <= max_joint_velocity * velocity_margin``.
``workspace``
    ``ee_delta``: the end-effector position of the latest observation plus (dx, dy, dz) must stay in the
    workspace box; offending components are clipped (to zero if the arm is already at the wall). An arm
    already outside the box may only move back towards it.
``watchdog``
    A background thread holds the arm if no ``act`` arrived for ``watchdog_periods`` periods (a hung
    policy or a crashed loop must not leave the arm tracking its last target).
``estop``
    :meth:`SafetyGuard.estop` (or Ctrl-C inside :meth:`SafetyGuard.estop_on_sigint`) holds the arm; every
    later ``act`` or ``reset`` holds again and raises :class:`EStopError` until :meth:`clear_estop`.

"Motion dimensions" are the action dimensions that move the arm: all of them in ``joint_position`` mode
(the gripper is a joint target like the others); in delta modes every dimension except the gripper's
open/close command (a dimension whose name contains ``gripper``), which is a level, not a displacement.

The action's normalised range [-1, 1] is its definition, not a safety limit: values outside it are clipped,
as every backend does, without counting an intervention.

A limit is counted only on steps where it changed the command by more than
``SafetyConfig.intervention_tolerance``; :meth:`SafetyGuard.intervention_report` says by how much.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from gipo_robot.hardware.limits import (
    action_joints,
    clamp_into_box,
    clamp_step,
    clamp_to_limits,
    motion_mask,
    soft_start_scale,
)
from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec, TaskStatus
from gipo_robot.hardware.safety_config import SafetyConfig

__all__ = ["INTERVENTION_KINDS", "EStopError", "SafetyConfig", "SafetyGuard"]

log = logging.getLogger(__name__)

INTERVENTION_KINDS = ("nan", "sensor", "joint_limit", "delta", "velocity", "workspace", "watchdog", "estop")
"""What :attr:`SafetyGuard.interventions` counts, one key each."""

JOINT_FEATURES = ("joint_pos", "robot0_joint_pos")
"""Observation features searched, in order, for the measured joint positions (J,) rad; a spec in LeRobot's
units (``spec.units == "lerobot"``) measures them in ``state``."""


class EStopError(RobotError):
    """The guard is e-stopped: the arm holds and refuses motion until :meth:`SafetyGuard.clear_estop`."""


# ---------------------------------------------------------------------------------------------- the guard


class SafetyGuard(Robot):
    """A :class:`Robot` that enforces a :class:`SafetyConfig` on another robot (same ``spec``).

    Use it exactly like the robot it wraps (context manager, ``reset``/``observe``/``act``). The references
    the limits need (measured joint positions, end-effector position) come from the latest observation
    taken through the guard; ``act`` observes first if none was taken since the previous ``act``.

    Args:
        robot: the robot to protect (not yet connected; the guard connects it).
        config: the limits; None uses :class:`SafetyConfig`'s defaults.

        period: the control loop's period, s (None: the robot's ``spec.period``); see :meth:`set_period`.

    Raises:
        ValueError: a config that does not fit the spec (``max_step`` length, unknown ``joint_feature``).
    """

    def __init__(
        self, robot: Robot, config: SafetyConfig | None = None, *, period: float | None = None
    ) -> None:
        self.robot = robot
        self.config = config or SafetyConfig()
        self.set_period(period)
        self._io_lock = threading.Lock()
        self._estop_reason: str | None = None
        self._obs: dict[str, np.ndarray] | None = None
        self._obs_fresh = False
        self._previous: np.ndarray | None = None
        self._steps_since_connect = 0
        self._consecutive_nan = 0
        self._consecutive_sensor = 0
        self._obs_faulty = False
        self._n_acts = 0
        self._last_act = time.monotonic()
        self._watchdog_armed = False
        self._watchdog_fired = False
        self._watchdog_stop = threading.Event()
        self._watchdog_thread: threading.Thread | None = None
        self._counts = dict.fromkeys(INTERVENTION_KINDS, 0)
        self._changes: dict[str, np.ndarray] = {}  # kind -> (2, A): largest, summed change

    def set_period(self, period: float | None) -> None:
        """Compute the per-step limits (the default ``max_step``, the velocity check) and the watchdog for a
        control loop running every ``period`` s (None: the robot's ``spec.period``), so that the configured
        joint velocities hold in rad/s at any loop rate. (Before, a loop slower than the robot's rate got
        the per-step limit of the robot's rate: at 10 Hz on a 30 Hz arm, a third of the velocity limit.)
        An explicit ``SafetyConfig.max_step`` is per step and stays as given."""
        period = self.spec.period if period is None else period
        if not (isinstance(period, int | float) and math.isfinite(period) and period > 0):
            raise ValueError(f"SafetyGuard: the control period must be > 0 s, got {period!r}")
        self.period = float(period)
        self._resolve_limits()

    def _resolve_limits(self) -> None:
        """Turn the config into (A,) physical arrays for this spec and control period."""
        spec, cfg = self.spec, self.config
        a = spec.action_dim
        self._motion = motion_mask(spec)
        self._joint_of = action_joints(spec)
        has_joint = self._joint_of >= 0
        j = np.where(has_joint, self._joint_of, 0)
        inf = np.full(a, np.inf)
        margin = cfg.joint_limit_margin
        self._joint_low = np.where(has_joint, spec.joint_low[j] + margin, -inf)
        self._joint_high = np.where(has_joint, spec.joint_high[j] - margin, inf)
        if np.any(self._joint_low > self._joint_high):
            raise ValueError("SafetyConfig.joint_limit_margin leaves no room inside a joint's limits")
        self._max_velocity = np.where(has_joint, spec.max_joint_velocity[j], inf)
        if cfg.max_step is None:
            if spec.action_mode == "ee_delta":
                default = np.maximum(np.abs(spec.action_low), np.abs(spec.action_high))
            else:
                default = self._max_velocity * self.period
            max_step = default
        elif isinstance(cfg.max_step, list):
            if len(cfg.max_step) != a:
                raise ValueError(f"SafetyConfig.max_step has {len(cfg.max_step)} values for {a} action dims")
            max_step = np.asarray(cfg.max_step, dtype=np.float64)
        else:
            max_step = np.full(a, float(cfg.max_step))
        self._max_step = np.where(self._motion, max_step, np.inf)
        low = cfg.workspace_low if cfg.workspace_low is not None else spec.workspace_low
        high = cfg.workspace_high if cfg.workspace_high is not None else spec.workspace_high
        use_box = cfg.workspace and spec.action_mode == "ee_delta" and low is not None
        self._box = (np.asarray(low, np.float64), np.asarray(high, np.float64)) if use_box else None
        if self._box is not None and spec.eef_feature is None:
            raise ValueError(
                f"{spec.name}: a workspace box needs spec.eef_feature (the end-effector position)"
            )
        feature = cfg.joint_feature
        if feature is None:
            names = ("state",) if spec.units == "lerobot" else JOINT_FEATURES
            feature = next((f for f in names if f in spec.obs_shapes), None)
        elif feature not in spec.obs_shapes:
            raise ValueError(
                f"SafetyConfig.joint_feature {feature!r} is not observed by {spec.name}; "
                f"it observes {sorted(spec.obs_shapes)}"
            )
        self._joint_feature = feature

    # ------------------------------------------------------------------ Robot interface

    @property
    def spec(self) -> RobotSpec:
        return self.robot.spec

    @property
    def interventions(self) -> dict[str, int]:
        """Counts per kind (:data:`INTERVENTION_KINDS`) since the last :meth:`reset`."""
        return dict(self._counts)

    def intervention_report(self) -> dict[str, Any]:
        """JSON-ready summary for an episode's ``extra`` metadata: counts, actions checked, e-stop reason, and
        ``changes``: per limit kind and action dimension it changed, the largest and the mean (over the kind's
        counted steps) change, physical units (``{"workspace": {"dz": {"max": 0.018, "mean": 0.008}}}``)."""
        names, n = self.spec.action_names, self._counts
        changes = {
            k: {
                names[i]: {"max": float(acc[0, i]), "mean": float(acc[1, i] / n[k])}
                for i in np.flatnonzero(acc[0] > 0)
            }
            for k, acc in self._changes.items()
        }
        report = {"interventions": self.interventions, "actions": self._n_acts, "estop": self._estop_reason}
        return report | {"changes": changes}

    def _connect(self) -> None:
        self.robot.connect()
        self._steps_since_connect = 0
        if self.config.watchdog_periods is not None:
            self._watchdog_stop.clear()
            self._watchdog_thread = threading.Thread(
                target=self._watchdog_loop, name=f"watchdog:{self.spec.name}", daemon=True
            )
            self._watchdog_thread.start()

    def _disconnect(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog_thread is not None:
            self._watchdog_thread.join(timeout=1.0)
            self._watchdog_thread = None
        self.robot.disconnect()

    def close(self) -> None:
        """Disconnect, then close the wrapped robot (which frees what it owns, e.g. a simulator)."""
        self.disconnect()
        self.robot.close()

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset the wrapped robot (it may move home: refused while e-stopped) and zero the counts.

        Raises:
            EStopError: the guard is e-stopped.
        """
        self._require_connected()
        self._refuse_if_estopped()
        with self._io_lock:
            self._watchdog_armed = False
            obs = self.robot.reset(seed=seed)
            self._counts = dict.fromkeys(INTERVENTION_KINDS, 0)
            self._changes = {}
            self._n_acts = 0
            self._consecutive_nan = 0
            self._consecutive_sensor = 0
            self._set_obs(obs)
            self._previous = self._rest_command(obs)
        return obs

    def observe(self) -> dict[str, np.ndarray]:
        self._require_connected()
        with self._io_lock:
            obs = self.robot.observe()
            self._set_obs(obs)
        return obs

    def task_status(self) -> TaskStatus | None:
        return self.robot.task_status()

    def hold(self) -> None:
        """Hold the wrapped arm; never raises (a failure is logged: the link may already be gone). The
        watchdog stands down until the next :meth:`act`: a held arm tracks no target (idle is no lapse)."""
        self._watchdog_armed = False
        try:
            self.robot.hold()
        except Exception as err:  # hold() is called on the way out of failures; it must not add one
            log.warning("%s: hold() failed: %s", self.spec.name, err)

    def act(self, action: np.ndarray) -> np.ndarray:
        """Check, limit and send one normalised (A,) action; returns the normalised command sent.

        Raises:
            EStopError: the guard is (or became, during this call) e-stopped; the arm holds.
            ValueError: the action does not have shape (A,).
            RobotError: from the wrapped robot.
        """
        self._require_connected()
        self._refuse_if_estopped()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.spec.action_dim,):
            raise ValueError(
                f"{self.spec.name}: action must have shape ({self.spec.action_dim},), got {action.shape}"
            )
        with self._io_lock:
            self._last_act = time.monotonic()
            self._watchdog_armed = True
            self._watchdog_fired = False
            if not self._obs_fresh or self._obs is None:
                self._set_obs(self.robot.observe())
            if self._previous is None:
                self._previous = self._rest_command(self._obs)
            self._n_acts += 1
            if self._obs_faulty:  # counted when observed; never limit from an unknown position
                self.hold()
                sent = self._hold_command()
            elif not np.all(np.isfinite(action)):
                sent = self._reject_non_finite()
            else:
                self._consecutive_nan = 0
                command = self._limit(action)
                sent = np.asarray(self.robot.act(command), dtype=np.float64)
                self._previous = sent
                self._steps_since_connect += 1
            self._obs_fresh = False
        self._refuse_if_estopped()  # an e-stop that arrived while the command was in flight
        return sent

    # ------------------------------------------------------------------ e-stop

    @property
    def estopped(self) -> bool:
        """Whether an e-stop is active."""
        return self._estop_reason is not None

    @property
    def estop_reason(self) -> str | None:
        """Why the active e-stop was triggered, or None."""
        return self._estop_reason

    def estop(self, reason: str = "software e-stop") -> None:
        """Stop: hold the arm now (or, if a command is in flight, as soon as it returns) and refuse motion
        until :meth:`clear_estop`. Safe to call from another thread or a signal handler; never raises."""
        if self._estop_reason is None:
            self._estop_reason = reason
            self._counts["estop"] += 1
            log.warning("%s: e-stop: %s", self.spec.name, reason)
        if self._io_lock.acquire(blocking=False):  # else act() is mid-command and holds when it returns
            try:
                self.hold()
            finally:
                self._io_lock.release()

    def clear_estop(self) -> None:
        """Allow motion again; the soft-start ramp starts over."""
        self._estop_reason = None
        self._steps_since_connect = 0
        self._consecutive_nan = 0
        self._consecutive_sensor = 0

    @contextlib.contextmanager
    def estop_on_sigint(self) -> Iterator[SafetyGuard]:
        """Inside the block, Ctrl-C (SIGINT) e-stops instead of raising KeyboardInterrupt; a second Ctrl-C
        while e-stopped goes to the previous handler (usually: KeyboardInterrupt). The previous handler is
        restored on leaving the block. Main thread only (a Python rule for signal handlers)."""
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.estopped and callable(previous):
                previous(signum, frame)
                return
            self.estop("SIGINT (Ctrl-C)")

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)

    def _refuse_if_estopped(self) -> None:
        if self._estop_reason is not None:
            with self._io_lock:
                self.hold()
            raise EStopError(
                f"{self.spec.name}: e-stopped ({self._estop_reason}); call clear_estop() to move"
            )

    # ------------------------------------------------------------------ limits

    def _set_obs(self, obs: dict[str, np.ndarray]) -> None:
        self._obs = obs
        self._obs_fresh = True
        bad = [k for k, v in obs.items() if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all()]
        self._obs_faulty = bool(bad)
        if not bad:
            self._consecutive_sensor = 0
            return
        self._counts["sensor"] += 1
        self._consecutive_sensor += 1
        limit = self.config.sensor_estop_after
        if limit is not None and self._consecutive_sensor >= limit and self._estop_reason is None:
            n, names = self._consecutive_sensor, ", ".join(bad)
            self._estop_reason = f"{n} observations in a row with non-finite measurements ({names})"
            self._counts["estop"] += 1
            log.warning("%s: e-stop: %s", self.spec.name, self._estop_reason)
            self.hold()

    def _measured(self, obs: dict[str, np.ndarray] | None) -> np.ndarray:
        """(A,) measured joint position per action dimension, NaN where unknown."""
        out = np.full(self.spec.action_dim, np.nan)
        if obs is None or self._joint_feature is None or self._joint_feature not in obs:
            return out
        q = np.asarray(obs[self._joint_feature], dtype=np.float64).reshape(-1)
        has = (self._joint_of >= 0) & (self._joint_of < q.size)
        out[has] = q[self._joint_of[has]]
        return out

    def _rest_command(self, obs: dict[str, np.ndarray] | None) -> np.ndarray:
        """Normalised command that keeps the arm still: the measured position (``joint_position``; the
        mid-range where unknown) or zero displacement (delta modes)."""
        spec = self.spec
        if spec.action_mode == "joint_position":
            measured = self._measured(obs)
            mid = 0.5 * (spec.action_low + spec.action_high)
            return spec.to_normalized(np.where(np.isfinite(measured), measured, mid))
        return np.clip(spec.to_normalized(np.zeros(spec.action_dim)), -1.0, 1.0)

    def _hold_command(self) -> np.ndarray:
        """What holding means as a normalised command: the previous target (``joint_position``), or zero
        displacement with the gripper's previous command (delta modes)."""
        if self.spec.action_mode == "joint_position":
            return self._previous.copy()
        rest = self._rest_command(None)
        return np.where(self._motion, rest, self._previous)

    def _reject_non_finite(self) -> np.ndarray:
        self._counts["nan"] += 1
        self._consecutive_nan += 1
        self.hold()
        limit = self.config.nan_estop_after
        if limit is not None and self._consecutive_nan >= limit and self._estop_reason is None:
            self._estop_reason = f"{self._consecutive_nan} non-finite actions in a row"
            self._counts["estop"] += 1
            log.warning("%s: e-stop: %s", self.spec.name, self._estop_reason)
        return self._hold_command()

    def _count_if_changed(self, kind: str, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Count ``kind`` if it changed the command by more than the tolerance; keep its changes' sizes."""
        change = np.abs(after - before)
        if np.any(change > self.config.intervention_tolerance):
            self._counts[kind] += 1
            acc = self._changes.setdefault(kind, np.zeros((2, change.size)))
            np.maximum(acc[0], change, out=acc[0])
            acc[1] += change
        return after

    def _limit(self, action: np.ndarray) -> np.ndarray:
        """Apply the limits to a finite normalised action; returns the normalised command to send."""
        spec, cfg = self.spec, self.config
        action = np.clip(action, -1.0, 1.0)
        p = spec.to_physical(action)
        original = p.copy()
        scale = soft_start_scale(self._steps_since_connect, cfg.soft_start_steps, cfg.soft_start_fraction)
        max_step = self._max_step * scale
        measured = self._measured(self._obs)
        vel_step = (
            self._max_velocity * cfg.velocity_margin * self.period
            if cfg.velocity_margin is not None
            else np.full(spec.action_dim, np.inf)
        )
        if spec.action_mode == "joint_position":
            p = self._count_if_changed(
                "joint_limit", p, clamp_to_limits(p, self._joint_low, self._joint_high)
            )
            previous = spec.to_physical(self._previous)
            p = self._count_if_changed("delta", p, clamp_step(p, previous, max_step))
            p = self._count_if_changed("velocity", p, clamp_step(p, measured, vel_step))
        elif spec.action_mode == "joint_delta":
            known = np.isfinite(measured)
            base = np.where(known, measured, 0.0)
            target = clamp_to_limits(base + p, self._joint_low, self._joint_high)
            limited = np.where(known & (target != base + p), target - base, p)
            p = self._count_if_changed("joint_limit", p, limited)
            zero = np.zeros_like(p)
            p = self._count_if_changed("delta", p, clamp_step(p, zero, max_step))
            p = self._count_if_changed("velocity", p, clamp_step(p, zero, vel_step))
        else:  # ee_delta
            p = self._count_if_changed("delta", p, clamp_step(p, np.zeros_like(p), max_step))
            if self._box is not None and self._obs is not None and spec.eef_feature in self._obs:
                eef = np.asarray(self._obs[spec.eef_feature], dtype=np.float64).reshape(3)
                boxed = p.copy()
                boxed[:3] = clamp_into_box(eef, p[:3], *self._box)
                p = self._count_if_changed("workspace", p, boxed)
        if np.array_equal(p, original):
            return action
        return np.clip(spec.to_normalized(p), -1.0, 1.0)

    # ------------------------------------------------------------------ watchdog

    def _watchdog_loop(self) -> None:
        period = self.period
        timeout = self.config.watchdog_periods * period
        while not self._watchdog_stop.wait(min(period / 2, 0.05)):
            if not self._watchdog_armed or self._watchdog_fired:
                continue
            if time.monotonic() - self._last_act <= timeout:
                continue
            if not self._io_lock.acquire(blocking=False):
                continue  # a command is in flight: the loop is alive
            try:
                if self._watchdog_armed and time.monotonic() - self._last_act > timeout:
                    self._watchdog_fired = True
                    log.warning("%s: watchdog: no action for %.0f ms, holding", self.spec.name, timeout * 1e3)
                    self.hold()
                    self._counts["watchdog"] += 1  # counted once held: a reader of the count sees a held arm
            finally:
                self._io_lock.release()
