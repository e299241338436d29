"""A virtual servo bus: a MuJoCo arm that answers Dynamixel 2.0 or Feetech STS packets on a pseudo-terminal.

The real driver (:class:`~gipo_robot.hardware.serial_bus.SerialArm`, the vendors' SDKs underneath) opens
the pty's slave end (``/dev/pts/N``) exactly as it would open ``/dev/ttyUSB0``. On the master end this
module parses the protocol byte for byte (:mod:`gipo_robot.hardware.servo_protocol`), answers as the
servos would — status packets with correct checksums/CRC, the model's control table, its model number —
and moves the joints of ``assets/virtual_arm.xml`` by stepping MuJoCo in real time toward the goal
positions written.

What the servos do with the packets (their control tables, the MuJoCo joints, the vendors' rules on
EEPROM writes and limits, hardware errors) is :mod:`gipo_robot.hardware.emulators.servo_arm`. Here:
replies take their wire time at the configured baud rate (10 bits per byte) plus the configured latency;
they queue while the bus goes on reading requests, so a reply can arrive after the driver gave up on it.

Faults (:class:`FaultConfig`): a probability of a corrupted checksum/CRC per reply, of a dropped reply,
a reply latency (every reply; or, with a probability, a longer one), a servo that starts reporting a
hardware error (overload, overheating, ...) and drops its torque after N instruction packets or on command,
a servo whose torque drops on command (a brown-out), and a disconnect after N instruction packets or on
command: ``"silent"`` (the servo cable is pulled: the port stays, nothing answers) or ``"close"`` (the USB
adapter is pulled: the pty closes, the driver's reads and writes fail).

``VirtualServoBus`` runs :func:`serve` in its own ``python`` subprocess; ``serve`` is also what the
``gipo-robot virtual-arm`` command runs for a human.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
import random
import select
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Sequence
from typing import Any

from gipo_robot.hardware import servo_protocol as sp
from gipo_robot.hardware.emulators.arm_camera import VirtualCamera, camera_tables
from gipo_robot.hardware.emulators.servo_arm import (
    DEFAULT_MOUNT_OFFSETS,
    JOINT_NAMES,
    JOINT_RANGES,
    EmulatedArm,
)

#: How an emulated bus disconnects (see :class:`FaultConfig`).
DISCONNECT_MODES = ("silent", "close")


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """Faults the virtual bus injects into its replies."""

    corrupt_prob: float = 0.0
    """Probability that a reply's checksum/CRC is wrong."""
    drop_prob: float = 0.0
    """Probability that a reply is not sent at all."""
    reply_delay_s: float = 0.0
    """Latency added to every reply, s (a USB adapter's latency timer, a slow servo)."""
    late_prob: float = 0.0
    """Probability that the replies to one request come ``late_delay_s`` later still."""
    late_delay_s: float = 0.1
    """The extra latency of a late reply, s."""
    servo_error: str | None = None
    """A hardware error (a name in the protocol's ``servo_protocol.HARDWARE_ERRORS``, e.g. ``"overload"``)
    that servo ``servo_error_id`` starts reporting after ``servo_error_after`` instruction packets; it
    drops its torque as the vendors' default protection does (overload, overheating)."""
    servo_error_id: int = 1
    """The servo that reports ``servo_error``."""
    servo_error_after: int = 0
    """Instruction packets before ``servo_error`` starts (0: from the first)."""
    disconnect_after: int | None = None
    """Disconnect after this many instruction packets (None: only on command)."""
    disconnect_mode: str = "silent"
    """``"silent"`` (no more replies, port stays) or ``"close"`` (the pty closes)."""
    seed: int = 0
    """Seed of the fault draws."""

    def __post_init__(self) -> None:
        for name in ("corrupt_prob", "drop_prob", "late_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be in [0, 1], got {value}")
        for name in ("reply_delay_s", "late_delay_s", "servo_error_after"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"FaultConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.disconnect_after is not None and self.disconnect_after < 0:
            raise ValueError(f"FaultConfig.disconnect_after must be >= 0, got {self.disconnect_after}")
        if self.disconnect_mode not in DISCONNECT_MODES:
            raise ValueError(
                f"FaultConfig.disconnect_mode {self.disconnect_mode!r} unknown; known: {DISCONNECT_MODES}"
            )


@dataclasses.dataclass(frozen=True)
class VirtualArmConfig:
    """The emulated arm: which servos, on which protocol, with which faults."""

    protocol: str = "feetech"
    """``"feetech"`` or ``"dynamixel"``."""
    model: str | None = None
    """Servo model the servos report (default: the protocol's, see ``servo_protocol.DEFAULT_MODELS``)."""
    ids: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    """Servo IDs, one per joint of the MuJoCo arm, in joint order."""
    baudrate: int = 1_000_000
    """Baud rate whose wire time the replies take (bits/s)."""
    mount_offsets: tuple[int, ...] = DEFAULT_MOUNT_OFFSETS
    """Per-servo horn offset, ticks (see the module doc)."""
    models: tuple[str, ...] | None = None
    """Per-servo models, in id order, where they differ (a Koch follower: two XL430-W250 then four
    XL330-M288); None: ``model`` for every servo. :func:`robot_config_for` needs one model."""
    faults: FaultConfig = dataclasses.field(default_factory=FaultConfig)
    """Injected faults."""
    cameras: tuple[VirtualCamera, ...] = ()
    """Rendered cameras of the arm's scene (:mod:`~gipo_robot.hardware.emulators.arm_camera`)."""
    frames_dir: str | None = None
    """Where the cameras' frame files go (needed with ``cameras``: ``arm_camera.make_frames_dir()``)."""

    def __post_init__(self) -> None:
        if self.protocol not in sp.PROTOCOLS:
            raise ValueError(f"VirtualArmConfig.protocol {self.protocol!r} unknown; known: {sp.PROTOCOLS}")
        model = sp.model_named(self.model or sp.DEFAULT_MODELS[self.protocol])
        if model.protocol != self.protocol:
            raise ValueError(
                f"VirtualArmConfig.model {model.name} speaks {model.protocol}, not {self.protocol}"
            )
        object.__setattr__(self, "model", model.name)
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))
            if len(self.models) != len(self.ids):
                raise ValueError(f"VirtualArmConfig.models must have one entry per id, got {self.models}")
            other = [m for m in self.models if sp.model_named(m).protocol != self.protocol]
            if other:
                raise ValueError(f"VirtualArmConfig.models {other} do not speak {self.protocol}")
        if len(self.ids) != len(JOINT_NAMES) or len(set(self.ids)) != len(self.ids):
            raise ValueError(f"VirtualArmConfig.ids must be {len(JOINT_NAMES)} distinct ids, got {self.ids}")
        if any(not 0 <= i < sp.BROADCAST_ID for i in self.ids):
            raise ValueError(f"VirtualArmConfig.ids must be in 0..253, got {self.ids}")
        if len(self.mount_offsets) != len(self.ids):
            raise ValueError("VirtualArmConfig.mount_offsets must have one entry per id")
        if self.baudrate <= 0:
            raise ValueError(f"VirtualArmConfig.baudrate must be > 0, got {self.baudrate}")
        if isinstance(self.faults, dict):
            object.__setattr__(self, "faults", FaultConfig(**self.faults))
        cams = tuple(VirtualCamera(**c) if isinstance(c, dict) else c for c in self.cameras)
        object.__setattr__(self, "cameras", cams)
        camera_tables(cams, self.frames_dir)  # a frames_dir is given with cameras
        if len({c.name for c in cams}) != len(cams):
            raise ValueError(f"VirtualArmConfig.cameras: repeated names {[c.name for c in cams]}")
        if self.faults.servo_error is not None:
            sp.hardware_error_bits(self.protocol, [self.faults.servo_error])  # a known name
            if self.faults.servo_error_id not in self.ids:
                raise ValueError(f"FaultConfig.servo_error_id {self.faults.servo_error_id} is not on the bus")


# --------------------------------------------------------------------------------------------------
# The protocol side
# --------------------------------------------------------------------------------------------------
class _BusServer:
    """Parses instruction packets from the master end and produces the servos' replies."""

    def __init__(self, config: VirtualArmConfig, arm: EmulatedArm):
        self.config, self.arm = config, arm
        self.protocol = config.protocol
        self.rng = random.Random(config.faults.seed)
        self.buf = bytearray()
        self.counts = {"packets": 0, "bad_packets": 0, "replies": 0, "corrupted": 0, "dropped": 0, "late": 0}
        self.disconnected = False
        self.reply_delay_s = config.faults.reply_delay_s
        """The latency of every reply, s (``faults.reply_delay_s`` until changed on command)."""

    def feed(self, data: bytes) -> list[bytes]:
        """Take received bytes; returns the reply packets (fault injection applied), in order."""
        self.buf += data
        replies: list[bytes] = []
        while self.buf:
            try:
                packet, consumed = sp.parse_instruction(self.protocol, self.buf)
            except sp.PacketError as exc:
                del self.buf[: exc.args[1]]
                self.counts["bad_packets"] += 1
                continue
            del self.buf[:consumed]
            if packet is None:
                break
            self.counts["packets"] += 1
            faults = self.config.faults
            if faults.servo_error is not None and self.counts["packets"] == faults.servo_error_after + 1:
                bits = sp.hardware_error_bits(self.protocol, [faults.servo_error])
                self.arm.servos[faults.servo_error_id].raise_error(bits)
            if not self.disconnected:
                replies += self._handle(packet)
            limit = self.config.faults.disconnect_after
            if limit is not None and self.counts["packets"] >= limit:
                self.disconnected = True
        return [r for r in (self._fault(r) for r in replies) if r is not None]

    def latency(self) -> float:
        """The latency of the replies to the request just handled, s (``late`` ones counted)."""
        faults = self.config.faults
        if faults.late_prob and self.rng.random() < faults.late_prob:
            self.counts["late"] += 1
            return self.reply_delay_s + faults.late_delay_s
        return self.reply_delay_s

    def _fault(self, reply: bytes) -> bytes | None:
        faults = self.config.faults
        if self.disconnected:
            return None
        if faults.drop_prob and self.rng.random() < faults.drop_prob:
            self.counts["dropped"] += 1
            return None
        self.counts["replies"] += 1
        if faults.corrupt_prob and self.rng.random() < faults.corrupt_prob:
            self.counts["corrupted"] += 1
            return reply[:-1] + bytes([reply[-1] ^ 0x5A])
        return reply

    def _status(self, servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
        error = self.arm.servos[servo_id].status_error(error)  # hardware conditions ride on every reply
        return sp.frame_status(self.protocol, servo_id, error, params)

    def _handle(self, packet: sp.Packet) -> list[bytes]:
        servos, inst, proto = self.arm.servos, packet.instruction, self.protocol
        if inst in (sp.READ, sp.SYNC_READ):
            self.arm.refresh()  # a homing offset written a moment ago shows at once, as on a servo
        targets = self.arm.order if packet.id == sp.BROADCAST_ID else [packet.id]
        targets = [t for t in targets if t in servos]
        if inst == sp.PING:
            if proto == "dynamixel":
                number = {t: sp.encode_value(servos[t].model.model_number, 2) for t in targets}
                return [self._status(t, 0, number[t] + b"\x01") for t in targets]
            return [self._status(t) for t in targets]
        if inst == sp.READ and packet.id in servos:
            address, length, _ = sp.split_address_length(proto, packet.params)
            data, error = servos[packet.id].read(address, length)
            return [self._status(packet.id, error, data)]
        if inst == sp.WRITE:
            n = 2 if proto == "dynamixel" else 1
            address = int.from_bytes(packet.params[:n], "little")
            errors = {t: servos[t].write(address, packet.params[n:]) for t in targets}
            if packet.id == sp.BROADCAST_ID or packet.id not in servos:
                return []
            return [self._status(packet.id, errors[packet.id])]
        if inst == sp.SYNC_READ and packet.id == sp.BROADCAST_ID:
            address, length, ids = sp.split_address_length(proto, packet.params)
            replies = []
            for servo_id in ids:
                if servo_id in servos:
                    data, error = servos[servo_id].read(address, length)
                    replies.append(self._status(servo_id, error, data))
            return replies
        if inst == sp.SYNC_WRITE and packet.id == sp.BROADCAST_ID:
            address, length, rest = sp.split_address_length(proto, packet.params)
            for k in range(0, len(rest) - length, length + 1):
                servo_id = rest[k]
                if servo_id in servos:
                    servos[servo_id].write(address, rest[k + 1 : k + 1 + length])
            return []
        if proto == "dynamixel" and packet.id in servos:
            return [self._status(packet.id, sp.DXL_ERROR_INSTRUCTION)]
        return []


def _open_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def serve(
    config: VirtualArmConfig | dict[str, Any] | None = None,
    stop_event: Any = None,
    *,
    on_ready: Callable[[str], None] | None = None,
    commands: Any = None,
) -> dict[str, int]:
    """Run the virtual arm until ``stop_event`` is set (or Ctrl-C): the body of the emulator process.

    Args:
        config: A :class:`VirtualArmConfig` or its fields as a dict (``faults`` as a dict too).
        stop_event: Anything with ``is_set()`` (a threading Event); None runs until interrupted.
        on_ready: Called with the port name (e.g. ``/dev/pts/7``) once it accepts connections.
        commands: A channel with ``poll() -> bool``, ``recv() -> dict`` and ``send(dict)`` answering
            ``{"cmd": "state"}``, ``{"cmd": "disconnect"}``, ``{"cmd": "move_by_hand", "q": [...]}``,
            ``{"cmd": "servo_error", "id": 3, "error": "overload"}``, ``{"cmd": "drop_torque", "id": 3}`` and
            ``{"cmd": "latency", "reply_delay_s": 0.07}`` with the state (used by :class:`VirtualServoBus`).

    Returns:
        Packet counters: ``packets``, ``bad_packets``, ``replies``, ``corrupted``, ``dropped``, ``late``.
    """
    if config is None:
        config = VirtualArmConfig()
    elif isinstance(config, dict):
        config = VirtualArmConfig(**config)
    cameras = None
    if config.cameras:
        from gipo_robot.hardware.emulators import arm_camera

        arm_camera.prepare_gl()
    arm = EmulatedArm(config.model, config.ids, config.mount_offsets, config.models)
    if config.cameras:
        cameras = arm_camera.ArmCameras(arm, config.cameras, config.frames_dir)
    server = _BusServer(config, arm)
    master, slave, port = _open_pty()
    byte_time = 10.0 / config.baudrate
    queue: list[tuple[float, int, bytes]] = []  # (due time, sequence, bytes): replies on their way
    closed = False
    if on_ready is not None:
        on_ready(port)
    try:
        while stop_event is None or not stop_event.is_set():
            now = time.monotonic()
            wait = min(0.002, max(0.0, queue[0][0] - now)) if queue else 0.002
            if closed:
                time.sleep(0.01)
                ready = []
            else:
                ready, _, _ = select.select([master], [], [], wait)
            if ready:
                data = os.read(master, 4096)
                arm.step_to(time.monotonic())
                replies = server.feed(data)
                if replies:
                    wire = byte_time * (len(data) + sum(len(r) for r in replies))
                    due = time.monotonic() + wire + server.latency()
                    heapq.heappush(queue, (due, server.counts["packets"], b"".join(replies)))
            while queue and queue[0][0] <= time.monotonic() and not closed:
                os.write(master, heapq.heappop(queue)[2])
            arm.step_to(time.monotonic())
            if cameras is not None:
                cameras.poll(time.monotonic())
            if server.disconnected:
                queue.clear()  # replies on their way die with the cable
            if server.disconnected and config.faults.disconnect_mode == "close" and not closed:
                os.close(master)
                os.close(slave)
                closed = True
            if commands is not None and commands.poll():
                commands.send(_command(commands.recv(), arm, server))
    except KeyboardInterrupt:
        pass
    finally:
        if not closed:
            os.close(master)
            os.close(slave)
        if cameras is not None:
            cameras.close()
    return dict(server.counts)


def _command(request: dict[str, Any], arm: EmulatedArm, server: _BusServer) -> dict[str, Any]:
    """Apply one request of :class:`VirtualServoBus` and return the emulator's state."""
    cmd = request.get("cmd")
    if cmd == "disconnect":
        server.disconnected = True
    elif cmd == "move_by_hand":
        arm.move_by_hand(request["q"])
    elif cmd == "servo_error":
        arm.servos[request["id"]].raise_error(sp.hardware_error_bits(server.protocol, [request["error"]]))
    elif cmd == "drop_torque":
        arm.servos[request["id"]].drop_torque()
    elif cmd == "latency":
        server.reply_delay_s = float(request["reply_delay_s"])
    return {
        "q": arm.data.qpos.tolist(),
        "goal_q": [arm.servos[i].goal_q() for i in arm.order],
        "torque": [arm.servos[i].torque for i in arm.order],
        "homing_offset": [arm.servos[i].get("homing_offset") for i in arm.order],
        "errors": [sp.hardware_error_names(server.protocol, arm.servos[i].errors) for i in arm.order],
        "counts": dict(server.counts),
        "disconnected": server.disconnected,
    }


class _StdioChannel:
    """JSON lines on stdin/stdout: the child's side of :class:`VirtualServoBus`.

    ``{"cmd": "stop"}`` or the end of stdin (the parent is gone) sets :attr:`stop`.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._pending: dict[str, Any] | None = None

    def poll(self) -> bool:
        if self._pending is None and select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            request = json.loads(line) if line.strip() else {"cmd": "stop"}
            if request.get("cmd") == "stop":
                self.stop.set()
            else:
                self._pending = request
        return self._pending is not None

    def recv(self) -> dict[str, Any]:
        request, self._pending = self._pending or {}, None
        return request

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


class _StopWhenChannelStops:
    def __init__(self, channel: _StdioChannel) -> None:
        self.channel = channel

    def is_set(self) -> bool:
        self.channel.poll()
        return self.channel.stop.is_set()


def _serve_stdio() -> None:
    """Entry point of the emulator subprocess: the config as one JSON line on stdin, then requests."""
    config = json.loads(sys.stdin.readline())
    channel = _StdioChannel()
    serve(
        config,
        _StopWhenChannelStops(channel),
        on_ready=lambda port: channel.send({"port": port}),
        commands=channel,
    )


class VirtualServoBus:
    """The virtual arm in its own process, as a context manager.

    The emulator is a plain ``python`` subprocess talking JSON lines on its stdin/stdout (no pickle, no
    re-import of the caller's main module); it exits when the context ends or its parent dies.

    Example::

        with VirtualServoBus("feetech", faults=FaultConfig(corrupt_prob=0.01)) as bus:
            with SerialArm.from_config(bus.robot_config()) as arm:
                arm.read_positions()

    Args:
        protocol: ``"feetech"`` or ``"dynamixel"``.
        faults: A :class:`FaultConfig` (or its fields as a dict).
        start_timeout_s: How long to wait for the emulator process to open its pty, s.
        **config: More :class:`VirtualArmConfig` fields (``ids``, ``model``, ``baudrate``, ...).
    """

    def __init__(
        self,
        protocol: str = "feetech",
        *,
        faults: FaultConfig | dict[str, Any] | None = None,
        start_timeout_s: float = 30.0,
        **config: Any,
    ) -> None:
        faults = FaultConfig(**faults) if isinstance(faults, dict) else (faults or FaultConfig())
        if config.get("cameras") and config.get("frames_dir") is None:
            from gipo_robot.hardware.emulators.arm_camera import make_frames_dir

            config["frames_dir"] = make_frames_dir()
        self.config = VirtualArmConfig(protocol=protocol, faults=faults, **config)
        self.start_timeout_s = start_timeout_s
        self.port: str | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> VirtualServoBus:
        code = "from gipo_robot.hardware.emulators.virtual_bus import _serve_stdio; _serve_stdio()"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._send(dataclasses.asdict(self.config))
        try:
            self.port = self._receive(self.start_timeout_s)["port"]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the emulator process (idempotent)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
            process.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5.0)
        process.stdout.close()

    def _send(self, message: dict[str, Any]) -> None:
        if self._process is None:
            raise RuntimeError("virtual servo bus is not running; use it as a context manager")
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        process = self._process
        if not select.select([process.stdout], [], [], timeout_s)[0]:
            raise RuntimeError(f"virtual servo bus did not answer within {timeout_s} s")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"virtual servo bus process exited (code {process.poll()}); see its stderr")
        return json.loads(line)

    def _request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        self._send({"cmd": cmd, **fields})
        return self._receive(10.0)

    def state(self) -> dict[str, Any]:
        """Ground truth: ``q`` (J,) rad, ``goal_q``, ``torque``, ``homing_offset``, ``errors`` (condition
        names) per servo, ``counts``."""
        return self._request("state")

    def servo_error(self, servo_id: int, error: str = "overload") -> dict[str, Any]:
        """Make servo ``servo_id`` report the hardware error ``error`` from now on (and drop its torque if
        it is one of the protocol's default torque-off conditions); returns the state."""
        return self._request("servo_error", id=int(servo_id), error=error)

    def set_latency(self, reply_delay_s: float) -> dict[str, Any]:
        """From now on, add ``reply_delay_s`` to every reply (a bus that turned slow); returns the state."""
        return self._request("latency", reply_delay_s=float(reply_delay_s))

    def drop_torque(self, servo_id: int) -> dict[str, Any]:
        """Switch servo ``servo_id``'s torque off without an error (a brown-out reset); returns the state."""
        return self._request("drop_torque", id=int(servo_id))

    def disconnect(self) -> None:
        """Unplug the bus now (in the configured ``faults.disconnect_mode``)."""
        self._request("disconnect")

    def move_by_hand(self, q: Sequence[float]) -> None:
        """Put the arm's joints at ``q`` (J,) rad, as a human moving a limp (torque-off) leader arm."""
        self._request("move_by_hand", q=[float(v) for v in q])

    def robot_config(self, **overrides: Any) -> dict[str, Any]:
        """A ready :class:`~gipo_robot.hardware.serial_bus.SerialArm` config for this bus.

        Args:
            **overrides: Config keys to replace (``calibration``, ``retries``, ...).
        """
        if self.port is None:
            raise RuntimeError("virtual servo bus is not running; use it as a context manager")
        return robot_config_for(self.config, self.port, **overrides)

    @property
    def pid(self) -> int | None:
        """Process id of the emulator (e.g. to give it real-time priority in a benchmark); None if stopped."""
        return None if self._process is None else self._process.pid


def robot_config_for(config: VirtualArmConfig, port: str, /, **overrides: Any) -> dict[str, Any]:
    """The :class:`~gipo_robot.hardware.serial_bus.SerialArm` config of a virtual arm listening on ``port``.

    Args:
        config: The virtual arm's settings.
        port: Its pseudo-terminal, e.g. ``/dev/pts/7``.
        **overrides: Config keys to replace (``calibration``, ``retries``, ...).
    """
    cfg: dict[str, Any] = {
        "type": config.protocol,
        "name": f"virtual-{config.protocol}-arm",
        "port": port,
        "baudrate": config.baudrate,
        "model": config.model,
        "ids": list(config.ids),
        "joint_names": list(JOINT_NAMES),
        "joint_limits": {n: list(r) for n, r in zip(JOINT_NAMES, JOINT_RANGES, strict=True)},
        "max_velocity": round(0.8 * sp.model_named(config.model).max_velocity, 3),
        "control_hz": 30.0,
        # the emulator is a user-space process: on a loaded machine it can be descheduled for tens
        # of ms, so wait longer and retry more than for a real bus (0.05 s, 3 retries)
        "timeout_s": 0.2,
        "retries": 5,
    }
    if config.cameras:
        cfg["cameras"] = camera_tables(config.cameras, config.frames_dir)
    cfg.update(overrides)
    return cfg


__all__ = ["FaultConfig", "VirtualArmConfig", "VirtualServoBus", "robot_config_for", "serve"]
