"""A rosbridge v2 server with a simulated arm behind it: test :class:`~gipo_robot.hardware.ros_bridge.RosArm`
and rehearse a ROS setup without a robot or a ROS install.

Legend: ``J`` number of joints; positions in rad, velocities in rad/s, times in s.

Why not the real ``rosbridge_server``: it is neither in Debian (bookworm ships ROS 1 core packages such as
``python3-rospy``, but not ``rosbridge_suite``) nor on PyPI (``rosbridge-server-rs`` there is a binary
that needs a sourced ROS 2 install: ``librcl``, ``librmw``, ...). So this module speaks the same wire
protocol (``ROSBRIDGE_PROTOCOL.md`` of RobotWebTools/rosbridge_suite) to the same client, roslibpy. (The
tests also run RosArm against the real ROS 1 server, vendored in ``third_party/rosbridge_suite``, on
Debian's ROS 1: ``make test-ros``. One difference found there: the real server drops the operations still
queued when a websocket closes; this one handles every message it has received.)

- websocket text frames holding JSON objects with an ``op``; ops ``advertise``, ``unadvertise``,
  ``publish``, ``subscribe`` (``throttle_rate`` honoured; ``compression`` ``"none"`` only),
  ``unsubscribe`` (by ``id``, or all), ``set_level``, ``call_service`` (``/rosapi/get_time`` only);
  replies to bad requests with ``status`` messages (``level`` ``error``/``warning``/``info``, sent at or
  above the client's level, ``error`` by default);
- published messages are checked against the message type like rosbridge does
  (:mod:`~gipo_robot.hardware.emulators.ros_messages`): unknown fields or wrong types are an error
  (message dropped), missing fields are filled with defaults (a warning), and an omitted ``header`` or
  ``header.stamp`` is filled with the current time;
- it knows the three types an arm needs (``sensor_msgs/JointState``, ``trajectory_msgs/JointTrajectory``,
  ``std_msgs/Float64MultiArray``, either ROS spelling); any other type is "cannot be resolved".

Behind it a simulated arm plays the robot's driver and controller: it publishes ``sensor_msgs/JointState``
(stamped headers, joints in ``joint_state_order``) at ``publish_hz`` and tracks the last command on
``command_topic`` at most at ``max_joint_velocity`` (a JointTrajectory point's ``time_from_start`` slows it
further, like ``joint_trajectory_controller``; ``Float64MultiArray`` data are in ``joint_names`` order,
like ``JointGroupPositionController``).

Websocket library: ``websockets`` (asyncio, pure Python, no dependencies), not the autobahn that roslibpy
brings along. Autobahn's txaio binds one async framework per process and roslibpy's client binds it to
twisted, so an autobahn-asyncio server could not run next to the client under test; an autobahn-twisted
server would share the client's single reactor, which cannot be restarted. ``websockets`` runs its own
loop in its own thread, so a test can stop the server and restart it on the same port beside a live
client; and, as with the real rosbridge (tornado), client and server are two independent implementations.

Use :class:`VirtualRosbridge` as a context manager in tests (it runs in a background thread), or
:func:`serve` to run it in the foreground until a stop event is set (a CLI command). It binds 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import threading
import time
from typing import Any

import numpy as np

from gipo_robot.hardware.emulators.ros_messages import conform, message_schemas
from gipo_robot.hardware.ros_config import COMMAND_TYPES, TIME_FIELDS, from_ros_time, ros1_type, ros_time

LOGGER = logging.getLogger(__name__)

#: Status level -> rank; a client at level L receives status messages whose rank is <= rank(L).
STATUS_LEVELS: dict[str, int] = {"none": 0, "error": 1, "warning": 2, "info": 3}

SO100_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@dataclasses.dataclass
class VirtualRosbridgeConfig:
    """The virtual server and the arm behind it. Lists become tuples; every check names its field."""

    host: str = "127.0.0.1"
    """Interface to listen on; keep 127.0.0.1 unless other machines must reach it."""
    port: int = 9090
    """Websocket port; 0 picks a free one (read it back from :attr:`VirtualRosbridge.port`)."""
    joint_names: tuple[str, ...] = SO100_JOINTS
    """The J joints, in the controller's order (the order of Float64MultiArray data)."""
    joint_low: tuple[float, ...] = (-2.0,) * 6
    """(J,) lower position limit, rad; commands are clamped into the limits."""
    joint_high: tuple[float, ...] = (2.0,) * 6
    """(J,) upper position limit, rad."""
    initial_position: tuple[float, ...] = (0.0,) * 6
    """(J,) position at start, rad."""
    max_joint_velocity: float = 2.0
    """Fastest joint speed, rad/s."""
    publish_hz: float = 50.0
    """JointState messages per second (also the simulation step)."""
    joint_state_topic: str = "/joint_states"
    """Where JointState is published."""
    joint_state_order: tuple[str, ...] | None = None
    """Order of the joints inside JointState (a permutation of joint_names); None = joint_names."""
    publish_velocity: bool = True
    """Fill JointState.velocity (some drivers leave it empty)."""
    command_topic: str = "/arm_controller/command"
    """Where the arm takes commands."""
    command_type: str = "trajectory_msgs/JointTrajectory"
    """A key of :data:`~gipo_robot.hardware.ros_bridge.COMMAND_TYPES` (either ROS spelling)."""
    ros_version: int = 1
    """1 or 2: the JSON spelling of times (secs/nsecs or sec/nanosec) and whether headers carry ``seq``."""

    def __post_init__(self) -> None:
        self.joint_names = tuple(self.joint_names)
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n:
            raise ValueError(
                f"VirtualRosbridgeConfig.joint_names must be unique and non-empty: {self.joint_names}"
            )
        for field in ("joint_low", "joint_high", "initial_position"):
            value = tuple(float(v) for v in getattr(self, field))
            if len(value) != n:
                raise ValueError(
                    f"VirtualRosbridgeConfig.{field} has {len(value)} values for {n} joint_names"
                )
            setattr(self, field, value)
        if any(hi <= lo for lo, hi in zip(self.joint_low, self.joint_high, strict=False)):
            raise ValueError("VirtualRosbridgeConfig.joint_high must exceed joint_low for every joint")
        if any(
            not lo <= x <= hi
            for x, lo, hi in zip(self.initial_position, self.joint_low, self.joint_high, strict=False)
        ):
            raise ValueError("VirtualRosbridgeConfig.initial_position is outside the joint limits")
        if self.joint_state_order is not None:
            self.joint_state_order = tuple(self.joint_state_order)
            if sorted(self.joint_state_order) != sorted(self.joint_names):
                raise ValueError(
                    f"VirtualRosbridgeConfig.joint_state_order {self.joint_state_order} is not a permutation "
                    f"of joint_names {self.joint_names}"
                )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"VirtualRosbridgeConfig.port must be in 0..65535, got {self.port}")
        for field in ("max_joint_velocity", "publish_hz"):
            if not getattr(self, field) > 0:
                raise ValueError(f"VirtualRosbridgeConfig.{field} must be > 0, got {getattr(self, field)}")
        if ros1_type(self.command_type) not in COMMAND_TYPES:
            raise ValueError(
                f"VirtualRosbridgeConfig.command_type {self.command_type!r} unknown; "
                f"known: {', '.join(COMMAND_TYPES)}"
            )
        if self.ros_version not in TIME_FIELDS:
            raise ValueError(f"VirtualRosbridgeConfig.ros_version must be 1 or 2, got {self.ros_version}")


class SimulatedArm:
    """Joints that move toward the commanded target at a bounded speed; thread-safe.

    Args:
        config: Joint names, limits, start position and velocity limit.
    """

    def __init__(self, config: VirtualRosbridgeConfig) -> None:
        self.names = config.joint_names
        self.low, self.high = np.array(config.joint_low), np.array(config.joint_high)
        self.vmax = float(config.max_joint_velocity)
        self.position = np.array(config.initial_position)
        self.velocity = np.zeros(len(self.names))
        self.target = self.position.copy()
        self.speed = np.full(len(self.names), self.vmax)  # (J,) rad/s toward the target
        self.commands = 0
        self.lock = threading.Lock()

    def command_positions(self, data: list[float]) -> None:
        """Float64MultiArray data: (J,) targets in rad, controller order.

        Raises:
            ValueError: wrong length.
        """
        if len(data) != len(self.names):
            raise ValueError(
                f"command has {len(data)} values for {len(self.names)} joints {list(self.names)}"
            )
        with self.lock:
            self.target = np.clip(np.array(data, dtype=np.float64), self.low, self.high)
            self.speed[:] = self.vmax
            self.commands += 1

    def command_trajectory(self, msg: dict[str, Any]) -> None:
        """JointTrajectory: go to the last point's positions by name, in time_from_start if that is slower.

        Raises:
            ValueError: no points, unknown or duplicate joint names, or a point of the wrong length.
        """
        names, points = msg["joint_names"], msg["points"]
        unknown = [j for j in names if j not in self.names]
        if unknown or len(set(names)) != len(names) or not names:
            raise ValueError(f"trajectory joint_names {names} must be distinct joints of {list(self.names)}")
        if not points:
            raise ValueError("trajectory has no points")
        last = points[-1]
        if len(last["positions"]) != len(names):
            raise ValueError(
                f"trajectory point has {len(last['positions'])} positions for {len(names)} joint_names"
            )
        duration = from_ros_time(last["time_from_start"])
        index = [self.names.index(j) for j in names]
        with self.lock:
            goal = np.clip(np.array(last["positions"], dtype=np.float64), self.low[index], self.high[index])
            distance = np.abs(goal - self.position[index])
            self.target[index] = goal
            self.speed[index] = np.minimum(self.vmax, distance / duration) if duration > 0 else self.vmax
            self.commands += 1

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds: each joint moves toward its target by at most speed * dt."""
        with self.lock:
            before = self.position.copy()
            limit = self.speed * dt
            self.position = self.position + np.clip(self.target - self.position, -limit, limit)
            self.velocity = (self.position - before) / dt


@dataclasses.dataclass(eq=False)
class _Client:
    ws: Any
    subscriptions: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    """topic -> subscription id -> throttle_rate in s."""
    last_sent: dict[str, float] = dataclasses.field(default_factory=dict)
    advertised: set[str] = dataclasses.field(default_factory=set)
    level: str = "error"


def _require_websockets() -> Any:
    try:
        import websockets.asyncio.server as ws_server
    except ImportError as err:
        raise ImportError("the virtual rosbridge needs websockets: pip install gipo-robot[ros]") from err
    return ws_server


class VirtualRosbridge:
    """The server; see the module docstring. Start with ``with VirtualRosbridge(cfg) as bridge:``.

    Args:
        config: Server and arm settings; defaults to an SO-100-like 6-joint arm on 127.0.0.1:9090.

    Attributes:
        arm: The :class:`SimulatedArm` (read ``arm.position`` etc. under ``arm.lock``).
        publishing: Set False to stop publishing JointState (a hung driver) while the socket stays up.
        null_joints: Names of joints whose position and velocity are published as ``null``, what rosbridge
            sends for a NaN reading (a failed encoder); empty by default.
        answering: Set False to leave service calls unanswered (a server too busy to reply).
        port: The bound port (useful with ``config.port = 0``), known once started.
    """

    def __init__(self, config: VirtualRosbridgeConfig | None = None) -> None:
        self.config = config or VirtualRosbridgeConfig()
        self.arm = SimulatedArm(self.config)
        self.publishing = True
        self.null_joints: set[str] = set()
        self.answering = True
        self.port: int | None = None
        self._schemas = message_schemas(self.config.ros_version)
        self._topics: dict[str, str] = {
            self.config.joint_state_topic: "sensor_msgs/JointState",
            self.config.command_topic: ros1_type(self.config.command_type),
        }
        self._clients: set[_Client] = set()
        self._seq = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._startup_error: OSError | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> VirtualRosbridge:
        """Listen in a background thread; return once the port is bound.

        Raises:
            OSError: the port cannot be bound (the message names host:port).
        """
        _require_websockets()
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(self._stop),), name="virtual-rosbridge", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"virtual rosbridge did not start within {timeout} s")
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket; the port is free again when this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    def __enter__(self) -> VirtualRosbridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, stop_event: threading.Event) -> None:
        """Serve in the calling thread until ``stop_event`` is set.

        Raises:
            OSError: the port cannot be bound (the message names host:port).
        """
        asyncio.run(self._main(stop_event))
        if self._startup_error is not None:
            raise self._startup_error

    @property
    def url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self.config.host}:{self.port}"

    def joint_positions(self) -> dict[str, float]:
        """Joint name -> current simulated position, rad."""
        with self.arm.lock:
            return dict(zip(self.arm.names, self.arm.position.tolist(), strict=False))

    def joint_targets(self) -> dict[str, float]:
        """Joint name -> last commanded target, rad."""
        with self.arm.lock:
            return dict(zip(self.arm.names, self.arm.target.tolist(), strict=False))

    def robot_config(self, **overrides: Any) -> dict[str, Any]:
        """A ready :class:`~gipo_robot.hardware.ros_bridge.RosArm` config for this server (JSON-ready)."""
        cfg = self.config
        out: dict[str, Any] = {
            "type": "ros",
            "host": cfg.host,
            "port": self.port if self.port is not None else cfg.port,
            "joint_names": list(cfg.joint_names),
            "joint_low": list(cfg.joint_low),
            "joint_high": list(cfg.joint_high),
            "max_joint_velocity": cfg.max_joint_velocity,
            "joint_state_topic": cfg.joint_state_topic,
            "command_topic": cfg.command_topic,
            "command_type": cfg.command_type,
            "ros_version": cfg.ros_version,
        }
        out.update(overrides)
        return out

    async def _main(self, stop_event: threading.Event) -> None:
        ws_server = _require_websockets()
        cfg = self.config
        try:
            server = await ws_server.serve(self._handle, cfg.host, cfg.port)
        except OSError as err:
            self._startup_error = OSError(
                err.errno, f"virtual rosbridge cannot listen on {cfg.host}:{cfg.port}: {err}"
            )
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        LOGGER.info("virtual rosbridge listening on %s", self.url)
        self._ready.set()
        ticker = asyncio.create_task(self._tick())
        try:
            while not stop_event.is_set():
                await asyncio.sleep(0.02)
        finally:
            ticker.cancel()
            server.close()
            await server.wait_closed()
            LOGGER.info("virtual rosbridge on %s stopped", self.url)

    async def _tick(self) -> None:
        """Step the arm and publish JointState at ``publish_hz``."""
        period = 1.0 / self.config.publish_hz
        last = deadline = time.monotonic()
        while True:
            deadline = max(deadline + period, time.monotonic())  # a fixed rate; no catch-up bursts
            await asyncio.sleep(deadline - time.monotonic())
            now = time.monotonic()
            self.arm.step(now - last)
            last = now
            if self.publishing:
                self._deliver(self.config.joint_state_topic, self._joint_state())

    def _joint_state(self) -> dict[str, Any]:
        cfg = self.config
        order = cfg.joint_state_order or cfg.joint_names
        index = [cfg.joint_names.index(j) for j in order]
        with self.arm.lock:
            position, velocity = self.arm.position[index], self.arm.velocity[index]
        nulls = [j in self.null_joints for j in order]
        header: dict[str, Any] = {"stamp": ros_time(time.time(), cfg.ros_version), "frame_id": ""}
        if cfg.ros_version == 1:
            self._seq += 1
            header = {"seq": self._seq, **header}
        return {
            "header": header,
            "name": list(order),
            "position": [None if null else x for null, x in zip(nulls, position.tolist(), strict=True)],
            "velocity": (
                [None if null else v for null, v in zip(nulls, velocity.tolist(), strict=True)]
                if cfg.publish_velocity
                else []
            ),
            "effort": [],
        }

    # -- protocol -----------------------------------------------------------------------------------

    async def _handle(self, ws: Any) -> None:
        client = _Client(ws)
        self._clients.add(client)
        LOGGER.info("virtual rosbridge: client %s connected", ws.remote_address)
        try:
            async for raw in ws:
                await self._dispatch(client, raw)
        except Exception as err:  # the connection dropped mid-message
            LOGGER.debug("virtual rosbridge: client %s: %s", ws.remote_address, err)
        finally:
            self._clients.discard(client)
            LOGGER.info("virtual rosbridge: client %s disconnected", ws.remote_address)

    async def _dispatch(self, client: _Client, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            await self._status(client, "error", "binary frames are not supported; send JSON text")
            return
        try:
            message = json.loads(raw)
        except json.JSONDecodeError as err:
            await self._status(client, "error", f"invalid JSON: {err}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            await self._status(client, "error", "a rosbridge message is a JSON object with a string 'op'")
            return
        op, request_id = message["op"], message.get("id")
        if op == "call_service":
            await self._call_service(client, message)
            return
        handler = {
            "advertise": self._advertise,
            "unadvertise": self._unadvertise,
            "publish": self._publish,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "set_level": self._set_level,
        }.get(op)
        if handler is None:
            await self._status(
                client, "error", f"op {op!r} is not supported by the virtual rosbridge", request_id
            )
            return
        topic = message.get("topic")
        if op != "set_level" and not isinstance(topic, str):
            await self._status(client, "error", f"{op}: missing string field 'topic'", request_id)
            return
        try:
            problem = handler(client, message)
        except ValueError as err:
            problem = ("error", f"{op} {topic}: {err}")
        if problem is not None:
            await self._status(client, *problem, request_id)

    def _advertise(self, client: _Client, message: dict[str, Any]) -> tuple[str, str] | None:
        topic, kind = message["topic"], ros1_type(str(message.get("type", "")))
        if kind not in self._schemas:
            return "error", f"advertise {topic}: cannot resolve type {message.get('type')!r}"
        known = self._topics.setdefault(topic, kind)
        if known != kind:
            return "error", f"advertise {topic}: the topic already exists with type {known}, not {kind}"
        client.advertised.add(topic)
        return None

    def _unadvertise(self, client: _Client, message: dict[str, Any]) -> tuple[str, str] | None:
        topic = message["topic"]
        if topic not in self._topics:
            return "warning", f"unadvertise {topic}: no such topic"
        if topic not in client.advertised:
            return "warning", f"unadvertise {topic}: this client is not advertising it"
        client.advertised.discard(topic)
        return None

    def _subscribe(self, client: _Client, message: dict[str, Any]) -> tuple[str, str] | None:
        topic = message["topic"]
        compression = message.get("compression") or "none"
        if compression != "none":
            return "error", f"subscribe {topic}: compression {compression!r} is not supported (use 'none')"
        known = self._topics.get(topic)
        if message.get("type"):
            kind = ros1_type(str(message["type"]))
            if kind not in self._schemas:
                return "error", f"subscribe {topic}: cannot resolve type {message['type']!r}"
            if known is not None and known != kind:
                return "error", f"subscribe {topic}: the topic has type {known}, not {kind}"
            self._topics.setdefault(topic, kind)
        elif known is None:
            return "error", f"subscribe {topic}: no such topic and no type given"
        throttle = message.get("throttle_rate", 0) or 0
        if not isinstance(throttle, int | float) or throttle < 0:
            return "error", f"subscribe {topic}: throttle_rate must be a number of ms >= 0"
        client.subscriptions.setdefault(topic, {})[str(message.get("id", ""))] = throttle / 1000.0
        return None

    def _unsubscribe(self, client: _Client, message: dict[str, Any]) -> tuple[str, str] | None:
        topic = message["topic"]
        subs = client.subscriptions.get(topic)
        if not subs:
            return "warning", f"unsubscribe {topic}: not subscribed"
        if "id" in message:
            subs.pop(str(message["id"]), None)
        else:
            subs.clear()
        if not subs:
            del client.subscriptions[topic]
        return None

    def _set_level(self, client: _Client, message: dict[str, Any]) -> tuple[str, str] | None:
        level = message.get("level")
        if level not in STATUS_LEVELS:
            return "error", f"set_level: level must be one of {list(STATUS_LEVELS)}, got {level!r}"
        client.level = level
        return None

    def _publish(self, client: _Client, message: dict[str, Any]) -> tuple[str, str] | None:
        topic = message["topic"]
        kind = self._topics.get(topic)
        if kind is None:
            return "error", f"publish {topic}: no such topic; advertise it first"
        msg = message.get("msg", {})
        schema = self._schemas[kind]
        if "header" in schema and isinstance(msg, dict):  # rosbridge stamps an omitted header/stamp with now
            header = msg.setdefault("header", {"frame_id": ""})
            if isinstance(header, dict):
                header.setdefault("stamp", ros_time(time.time(), self.config.ros_version))
        missing: list[str] = []
        msg = conform(msg, schema, "msg", missing)
        if topic == self.config.command_topic:
            if kind == "std_msgs/Float64MultiArray":
                self.arm.command_positions(msg["data"])
            else:
                self.arm.command_trajectory(msg)
        self._deliver(topic, msg)
        if missing:
            return "warning", f"publish {topic}: fields {missing} missing; filled with defaults"
        return None

    def _deliver(self, topic: str, msg: dict[str, Any]) -> None:
        """Send ``msg`` to every client subscribed to ``topic`` whose throttle_rate allows it now."""
        now = time.monotonic()
        receivers = []
        for client in self._clients:
            subs = client.subscriptions.get(topic)
            if subs and now - client.last_sent.get(topic, -math.inf) >= min(subs.values()):
                client.last_sent[topic] = now
                receivers.append(client.ws)
        if receivers:
            _require_websockets().broadcast(
                receivers, json.dumps({"op": "publish", "topic": topic, "msg": msg})
            )

    async def _call_service(self, client: _Client, message: dict[str, Any]) -> None:
        """Serve ``/rosapi/get_time`` (what RosArm calls to confirm its hold); refuse other services like
        rosbridge refuses a missing one: a ``status`` error, then a ``service_response`` with result false."""
        service, request_id = message.get("service"), message.get("id")
        if not self.answering:
            return
        reply: dict[str, Any] = {"op": "service_response", "service": service, "result": True}
        if request_id is not None:
            reply["id"] = request_id
        if service == "/rosapi/get_time":
            reply["values"] = {"time": ros_time(time.time(), self.config.ros_version)}
        else:
            text = f"call_service {service}: not supported by the virtual rosbridge (only /rosapi/get_time)"
            await self._status(client, "error", text, request_id)
            reply.update(result=False, values=text)
        try:
            await client.ws.send(json.dumps(reply))
        except Exception as err:  # the client is gone
            LOGGER.debug("virtual rosbridge: service response not sent: %s", err)

    async def _status(self, client: _Client, level: str, text: str, request_id: Any = None) -> None:
        LOGGER.log(logging.WARNING if level == "error" else logging.INFO, "virtual rosbridge: %s", text)
        if STATUS_LEVELS[level] > STATUS_LEVELS[client.level]:
            return
        status: dict[str, Any] = {"op": "status", "level": level, "msg": text}
        if request_id is not None:
            status["id"] = request_id
        try:
            await client.ws.send(json.dumps(status))
        except Exception as err:  # the client is gone
            LOGGER.debug("virtual rosbridge: status not sent: %s", err)


def serve(config: VirtualRosbridgeConfig | None = None, stop_event: threading.Event | None = None) -> None:
    """Run a virtual rosbridge in the foreground until ``stop_event`` is set (or forever without one).

    Args:
        config: Server and arm settings (see :class:`VirtualRosbridgeConfig`).
        stop_event: Set it from another thread or a signal handler to stop cleanly.

    Raises:
        OSError: the port cannot be bound.
    """
    VirtualRosbridge(config).run(stop_event or threading.Event())
