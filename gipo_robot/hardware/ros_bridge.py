"""An arm behind ROS, driven over rosbridge (the ``rosbridge_server`` websocket, JSON protocol v2).

Legend: ``J`` number of joints; positions in rad, velocities in rad/s, times in s.

What crosses the wire. :class:`RosArm` is a plain roslibpy client (twisted transport, the default one):

- it subscribes to ``sensor_msgs/JointState`` on ``joint_state_topic`` and picks its J joints **by name**
  (drivers publish joints in their own order, often with extra ones such as fingers); a configured
  joint missing from the message is an error that names it;
- it publishes absolute joint targets on ``command_topic`` as either ``trajectory_msgs/JointTrajectory``
  (one point, ``time_from_start`` long enough for the slowest joint at ``max_joint_velocity``; what
  ``joint_trajectory_controller`` takes) or ``std_msgs/Float64MultiArray`` (bare positions in
  ``joint_names`` order; what ros_control's ``JointGroupPositionController`` takes; it carries no names,
  so ``joint_names`` must be listed in the controller's order).

Failure handling. A JointState older than ``stale_after_s`` (receive time, local clock) makes
:meth:`RosArm.observe` raise :class:`StaleStateError` and :meth:`RosArm.act` refuse to send. When the
websocket drops, roslibpy reconnects with exponential backoff (``reconnect_initial_s`` doubling up to
``reconnect_max_s``) and re-subscribes; ``act`` refuses while the link is down (roslibpy would otherwise
queue the commands and replay them on reconnection), and after ``reconnect_budget_s`` without a link
``observe``/``act`` raise :class:`~gipo_robot.hardware.robot.RobotError`. :meth:`RosArm.hold` publishes
the last measured position and never raises.

Disconnect. :meth:`RosArm.disconnect` holds the arm, then, before it closes the websocket, waits (at most
``confirm_timeout_s``) for rosbridge to answer a call of :data:`CONFIRM_SERVICE`: rosbridge handles a
connection's operations one at a time and in order, and the ROS 1 server (0.11.x) drops the ones still queued
when the websocket closes, so without this the hold sent last could be lost. Any answer confirms, an error too
(rosapi not running: "service does not exist"). No answer in time: the websocket is closed anyway and
``disconnect`` raises a :class:`~gipo_robot.hardware.robot.RobotError` saying the hold is unconfirmed.

Non-finite readings. A joint whose position arrives as ``null`` (rosbridge's JSON for NaN *and* inf, so
the two look alike) or NaN/inf is observed as NaN: deciding what to do is the guard's job
(:class:`~gipo_robot.hardware.safety.SafetyGuard` counts a sensor fault and holds). Nothing non-finite is
ever published: :meth:`RosArm.hold` holds each joint at its last finite reading (or, never read, its last
commanded target). A velocity differenced across a NaN reading is NaN too (unknown, not invented).
:meth:`RosArm.reset` refuses to move home from a non-finite reading (a ``RobotError`` "sensor fault: ...").

Needs the ``[ros]`` extra (``pip install gipo-robot[ros]``); roslibpy is imported on :meth:`connect`.
Rehearse without a robot against :mod:`gipo_robot.hardware.emulators.virtual_rosbridge`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from typing import Any

import numpy as np

from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec
from gipo_robot.hardware.ros_config import RosArmConfig, from_ros_time, ros1_type, ros_time

LOGGER = logging.getLogger(__name__)

#: The service ``disconnect`` calls to learn that rosbridge has processed everything sent before (the hold);
#: rosapi serves it wherever ``rosbridge_websocket.launch`` runs, and a "no such service" answer counts too.
CONFIRM_SERVICE = "/rosapi/get_time"


class StaleStateError(RobotError):
    """No fresh ``JointState`` arrived within ``stale_after_s`` (or the link is down); nothing was sent."""


@dataclasses.dataclass(frozen=True)
class _JointSample:
    position: np.ndarray  # (J,) rad, in config order
    velocity: np.ndarray  # (J,) rad/s
    stamp: float  # header stamp, s (sender's clock)
    received: float  # time.monotonic() at arrival (our clock)


def _measured(values: list[Any], index: list[int]) -> np.ndarray:
    """(J,) float64 of ``values`` picked by ``index``; JSON ``null`` (rosbridge's NaN or inf) becomes NaN."""
    return np.array([math.nan if values[i] is None else float(values[i]) for i in index], dtype=np.float64)


def _require_roslibpy() -> Any:
    try:
        import roslibpy
    except ImportError as err:
        raise ImportError("RosArm needs roslibpy: pip install gipo-robot[ros]") from err
    return roslibpy


class RosArm(Robot):
    """An arm behind rosbridge; see the module docstring for the wire format and failure handling.

    Args:
        config: The arm's :class:`RosArmConfig`.

    Observations: ``joint_pos`` (J,) rad and ``joint_vel`` (J,) rad/s, float64, in ``joint_names`` order.
    Actions: ``joint_position``, normalised (J,) in [-1, 1] mapping to ``joint_low..joint_high``.
    """

    def __init__(self, config: RosArmConfig) -> None:
        self.config = config
        n = len(config.joint_names)
        self._spec = RobotSpec(
            name=config.name,
            action_mode="joint_position",
            action_names=config.joint_names,
            action_low=np.array(config.joint_low),
            action_high=np.array(config.joint_high),
            joint_names=config.joint_names,
            joint_low=np.array(config.joint_low),
            joint_high=np.array(config.joint_high),
            max_joint_velocity=np.array(config.max_joint_velocity),
            control_hz=float(config.control_hz),
            obs_shapes={"joint_pos": (n,), "joint_vel": (n,)},
            obs_dtypes={"joint_pos": "float64", "joint_vel": "float64"},
        )
        self._new_state = threading.Condition()  # guards and announces _sample / _state_error
        self._sample: _JointSample | None = None
        self._last_finite: np.ndarray = np.full(n, np.nan)  # (J,) last finite position per joint, rad
        self._last_target: np.ndarray = np.full(n, np.nan)  # (J,) last commanded target, rad
        self._state_error: str | None = None
        self._ros: Any = None
        self._state_topic: Any = None
        self._command_topic: Any = None
        self._link_up = False
        self._link_lost_at: float | None = None
        self._gave_up = False

    @classmethod
    def from_config(cls, cfg: dict[str, Any], source: str = "<dict>") -> RosArm:
        """Build from a robot-config dict (``{"type": "ros", "joint_names": [...], ...}``); see
        :class:`RosArmConfig` for the keys."""
        return cls(RosArmConfig.from_dict(cfg, source))

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    @property
    def address(self) -> str:
        """``host:port`` of the rosbridge server."""
        return f"{self.config.host}:{self.config.port}"

    # -- connection ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        roslibpy = _require_roslibpy()
        cfg = self.config
        self._sample, self._state_error, self._gave_up = None, None, False
        self._last_finite[:] = np.nan
        self._last_target[:] = np.nan
        ros = roslibpy.Ros(host=cfg.host, port=cfg.port, transport="twisted")
        # twisted's ReconnectingClientFactory reads these per instance: delay doubles from initialDelay to
        # maxDelay (with its default ~12 % jitter); ``delay`` is the delay of the next try.
        factory = ros.factory
        factory.initialDelay = factory.delay = cfg.reconnect_initial_s
        factory.maxDelay = cfg.reconnect_max_s
        factory.factor = 2.0
        ros.on("ready", self._on_link_up)
        ros.on("close", self._on_link_down)
        self._ros = ros
        try:
            ros.run(timeout=cfg.connect_timeout_s)
        except roslibpy.core.RosTimeoutError as err:
            self._release()
            raise RobotError(
                f"{self.spec.name}: could not connect to rosbridge at ws://{self.address} within "
                f"{cfg.connect_timeout_s} s ({err}); is rosbridge_server running there "
                "(roslaunch rosbridge_server rosbridge_websocket.launch)?"
            ) from err
        self._link_up, self._link_lost_at = True, None
        state_type = "sensor_msgs/JointState" if cfg.ros_version == 1 else "sensor_msgs/msg/JointState"
        self._state_topic = roslibpy.Topic(ros, cfg.joint_state_topic, state_type)
        self._state_topic.subscribe(self._on_joint_state)
        self._command_topic = roslibpy.Topic(ros, cfg.command_topic, cfg.command_type)
        self._command_topic.advertise()
        try:
            self._wait_for_state(after=0.0, timeout=cfg.connect_timeout_s)
        except RobotError:
            self._release()
            raise

    def _disconnect(self) -> None:
        problem = self._confirm_processed() if self._link_up and self._ros is not None else None
        self._release()
        if problem is not None:
            raise RobotError(problem)

    def _confirm_processed(self) -> str | None:
        """Wait until rosbridge answers a call of :data:`CONFIRM_SERVICE`, which it handles only after every
        operation sent before it (see the module docstring). Returns None once answered, else the problem."""
        roslibpy = _require_roslibpy()
        answered = threading.Event()
        kind = "rosapi/GetTime" if self.config.ros_version == 1 else "rosapi_msgs/srv/GetTime"
        service = roslibpy.Service(self._ros, CONFIRM_SERVICE, kind)
        try:
            service.call(roslibpy.ServiceRequest(), lambda _r: answered.set(), lambda _e: answered.set())
        except Exception as err:  # the link went down under us
            return f"{self.spec.name}: could not ask rosbridge at {self.address} to confirm the hold: {err}"
        timeout = self.config.confirm_timeout_s
        if answered.wait(timeout):
            return None
        return (
            f"{self.spec.name}: rosbridge at {self.address} did not answer {CONFIRM_SERVICE} within "
            f"{timeout} s (confirm_timeout_s), so the hold sent on disconnect is unconfirmed: rosbridge "
            "drops what it has not processed when the websocket closes, and the arm may still follow its "
            "last command"
        )

    def _release(self) -> None:
        """Unsubscribe, close the websocket and stop reconnecting; never raises."""
        ros, self._ros = self._ros, None
        self._link_up = False
        if ros is None:
            return
        try:
            if ros.is_connected:
                if self._state_topic is not None:
                    self._state_topic.unsubscribe()
                if self._command_topic is not None:
                    self._command_topic.unadvertise()
                ros.close(timeout=1.0)
        except Exception as err:  # a link that is already gone
            LOGGER.debug("%s: closing rosbridge link: %s", self.spec.name, err)
        finally:
            self._stop_reconnecting(ros)
            self._state_topic = self._command_topic = None

    @staticmethod
    def _stop_reconnecting(ros: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(ros.factory.stopTrying)

    def _on_link_up(self, _proto: Any) -> None:
        self._link_up, self._link_lost_at = True, None
        LOGGER.info("%s: rosbridge link to %s up", self.spec.name, self.address)

    def _on_link_down(self, _proto: Any) -> None:
        if self._ros is None:  # our own disconnect
            return
        if self._link_up:
            self._link_lost_at = time.monotonic()
        self._link_up = False
        LOGGER.warning("%s: rosbridge link to %s lost; reconnecting", self.spec.name, self.address)

    # -- joint state --------------------------------------------------------------------------------

    def _on_joint_state(self, msg: dict[str, Any]) -> None:
        """roslibpy callback (reactor thread): pick our joints by name, store a sample."""
        received = time.monotonic()
        names = list(msg.get("name") or [])
        missing = [j for j in self.config.joint_names if j not in names]
        positions = msg.get("position") or []
        if missing or len(positions) != len(names):
            problem = (
                f"lacks joints {missing}; it has {names}"
                if missing
                else f"has {len(positions)} positions for {len(names)} names"
            )
            with self._new_state:
                self._state_error = f"sensor_msgs/JointState on {self.config.joint_state_topic} {problem}"
                self._new_state.notify_all()
            return
        index = [names.index(j) for j in self.config.joint_names]
        position = _measured(positions, index)
        stamp = from_ros_time(msg.get("header", {}).get("stamp", {}))
        velocities = msg.get("velocity") or []
        with self._new_state:
            previous = self._sample
            if len(velocities) == len(names):
                velocity = _measured(velocities, index)
            elif previous is not None:  # the driver publishes no velocity: difference successive samples
                dt = stamp - previous.stamp if stamp > previous.stamp else received - previous.received
                velocity = (position - previous.position) / max(dt, 1e-6)
            else:
                velocity = np.zeros_like(position)
            self._sample = _JointSample(position, velocity, stamp, received)
            finite = np.isfinite(position)
            self._last_finite[finite] = position[finite]
            self._state_error = None
            self._new_state.notify_all()

    def _wait_for_state(self, after: float, timeout: float) -> _JointSample:
        """Block until a JointState received later than monotonic time ``after`` arrives."""
        deadline = time.monotonic() + timeout
        with self._new_state:
            while True:
                if self._state_error is not None:
                    raise RobotError(f"{self.spec.name}: {self._state_error}")
                if self._sample is not None and self._sample.received > after:
                    return self._sample
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RobotError(
                        f"{self.spec.name}: no sensor_msgs/JointState on {self.config.joint_state_topic} "
                        f"from rosbridge at {self.address} within {timeout} s; is the arm's driver running?"
                    )
                self._new_state.wait(left)

    def _fresh_state(self) -> _JointSample:
        """The latest sample if it is fresh and the link is up; else raise (see the module docstring)."""
        self._require_connected()
        if self._state_error is not None:
            raise RobotError(f"{self.spec.name}: {self._state_error}")
        lost_at = self._link_lost_at
        if not self._link_up and lost_at is not None:
            down = time.monotonic() - lost_at
            if down > self.config.reconnect_budget_s:
                if not self._gave_up:
                    self._gave_up = True
                    self._stop_reconnecting(self._ros)
                raise RobotError(
                    f"{self.spec.name}: lost rosbridge at {self.address} {down:.1f} s ago and gave up "
                    f"reconnecting (reconnect_budget_s={self.config.reconnect_budget_s})"
                )
        sample = self._sample
        if sample is None:
            raise StaleStateError(f"{self.spec.name}: no JointState received yet")
        age = time.monotonic() - sample.received
        if age > self.config.stale_after_s:
            link = "up" if self._link_up else "down, reconnecting"
            raise StaleStateError(
                f"{self.spec.name}: last JointState on {self.config.joint_state_topic} is {age:.2f} s old "
                f"(stale_after_s={self.config.stale_after_s}); rosbridge link to {self.address} {link}"
            )
        return sample

    # -- commands -----------------------------------------------------------------------------------

    def _command(self, target: np.ndarray, current: np.ndarray) -> dict[str, Any]:
        """The command message for absolute joint targets (J,) rad, starting from ``current`` (J,) rad."""
        cfg = self.config
        if ros1_type(cfg.command_type) == "std_msgs/Float64MultiArray":
            return {"layout": {"dim": [], "data_offset": 0}, "data": [float(x) for x in target]}
        # Long enough for the slowest joint at its velocity limit, and at least one control period.
        duration = max(
            self.spec.period, float(np.max(np.abs(target - current) / self.spec.max_joint_velocity))
        )
        header: dict[str, Any] = {"stamp": ros_time(0.0, cfg.ros_version), "frame_id": ""}  # 0 = "now"
        if cfg.ros_version == 1:
            header["seq"] = 0
        point = {
            "positions": [float(x) for x in target],
            "velocities": [],
            "accelerations": [],
            "effort": [],
            "time_from_start": ros_time(duration, cfg.ros_version),
        }
        return {"header": header, "joint_names": list(cfg.joint_names), "points": [point]}

    def _publish(self, target: np.ndarray, current: np.ndarray) -> None:
        if not np.all(np.isfinite(target)):  # a bug above us, never a command
            raise ValueError(f"{self.spec.name}: refusing to publish non-finite targets {target.tolist()}")
        roslibpy = _require_roslibpy()
        current = np.where(np.isfinite(current), current, target)  # an unknown joint does not set the pace
        self._command_topic.publish(roslibpy.Message(self._command(target, current)))
        self._last_target = np.array(target, dtype=np.float64)

    def _hold_target(self) -> np.ndarray | None:
        """(J,) rad to hold at: the latest reading, each non-finite joint at its last finite reading or, never
        read, its last target; None if some joint has neither."""
        sample = self._sample
        if sample is None:
            return None
        target = np.where(np.isfinite(sample.position), sample.position, self._last_finite)
        target = np.where(np.isfinite(target), target, self._last_target)
        return target if np.all(np.isfinite(target)) else None

    # -- Robot interface ----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Move to ``home`` (if configured) at ``max_joint_velocity``, then return a fresh observation.

        ``seed`` is accepted for interface compatibility; a real arm has nothing to seed.

        Raises:
            RobotError: the link or the state is bad, a joint reads null/NaN ("sensor fault") while homing, or
                home was not reached.
        """
        self._require_connected()
        if self.config.home is not None:
            self._move_home(np.array(self.config.home))
        self._wait_for_state(after=time.monotonic(), timeout=self.config.connect_timeout_s)
        return self.observe()

    def _move_home(self, home: np.ndarray) -> None:
        start = self._finite_position()
        vmax, period = self.spec.max_joint_velocity, self.spec.period
        steps = max(1, math.ceil(float(np.max(np.abs(home - start) / (vmax * period)))))
        current = start
        for k in range(1, steps + 1):  # interpolated targets, one per control period
            target = start + (home - start) * k / steps
            self._fresh_state()
            self._publish(target, current)
            current = target
            time.sleep(period)
        deadline = time.monotonic() + 2.0 + steps * period
        while True:
            error = np.abs(self._finite_position() - home)
            if np.max(error) <= self.config.home_tolerance:
                return
            if time.monotonic() > deadline:
                worst = self.config.joint_names[int(np.argmax(error))]
                raise RobotError(
                    f"{self.spec.name}: did not reach home within {self.config.home_tolerance} rad; "
                    f"joint {worst!r} is {float(np.max(error)):.3f} rad off"
                )
            time.sleep(period / 2)

    def _finite_position(self) -> np.ndarray:
        """(J,) rad, the fresh position; a non-finite joint (``null`` on the wire) is a sensor fault."""
        position = self._fresh_state().position
        bad = [j for j, ok in zip(self.config.joint_names, np.isfinite(position), strict=True) if not ok]
        if bad:
            raise RobotError(
                f"{self.spec.name}: sensor fault: joints {bad} read null/NaN/inf on "
                f"{self.config.joint_state_topic}; not moving home"
            )
        return position

    def observe(self) -> dict[str, np.ndarray]:
        """The latest joint state by name: ``joint_pos`` (J,) rad, ``joint_vel`` (J,) rad/s.

        Raises:
            StaleStateError: no JointState within ``stale_after_s``.
            RobotError: not connected, joints missing from the JointState, or the reconnect budget is spent.
        """
        sample = self._fresh_state()
        return {"joint_pos": sample.position.copy(), "joint_vel": sample.velocity.copy()}

    def act(self, action: np.ndarray) -> np.ndarray:
        """Publish one absolute joint-position command.

        Args:
            action: (J,) normalised targets in [-1, 1]; values outside are clipped.

        Returns:
            (J,) the normalised command actually sent.

        Raises:
            ValueError: wrong shape or non-finite values (nothing is sent).
            StaleStateError: the joint state is stale or the link is down (nothing is sent).
            RobotError: not connected, or the link stayed down past ``reconnect_budget_s``.
        """
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.spec.action_dim,):
            raise ValueError(
                f"{self.spec.name}: action must have shape ({self.spec.action_dim},), got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.spec.name}: action has non-finite values {action.tolist()}")
        sample = self._fresh_state()
        if not self._link_up:
            raise StaleStateError(f"{self.spec.name}: rosbridge link to {self.address} is down; nothing sent")
        sent = np.clip(action, -1.0, 1.0)
        self._publish(self.spec.to_physical(sent), sample.position)
        return sent

    def hold(self) -> None:
        """Command the last measured position (if the link is up and a JointState arrived), a NaN joint at
        its last finite reading (see the module docstring); never publishes NaN, never raises."""
        try:
            target = self._hold_target()
            if self.is_connected and self._link_up and self._command_topic is not None:
                if target is None:
                    LOGGER.warning("%s: hold: no finite position known for every joint", self.spec.name)
                else:
                    self._publish(target, target)
        except Exception as err:  # hold runs on the way out, often after another error
            LOGGER.warning("%s: hold failed: %s", self.spec.name, err)
