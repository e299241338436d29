"""A virtual servo bus: a MuJoCo arm that answers Dynamixel 2.0 or Feetech STS packets on a pseudo-terminal.

The real driver (:class:`~gipo_robot.hardware.serial_bus.SerialArm`, the vendors' SDKs underneath) opens
the pty's slave end (``/dev/pts/N``) exactly as it would open ``/dev/ttyUSB0``. On the master end this
module parses the protocol byte for byte (:mod:`gipo_robot.hardware.servo_protocol`), answers as the
servos would — status packets with correct checksums/CRC, the model's control table, its model number —
and moves the joints of ``assets/virtual_arm.xml`` by stepping MuJoCo in real time toward the goal
positions written.

What each emulated servo does (per the vendors' manuals, simplified where noted):

- position: the reported position is ``raw + homing_sign * homing_offset`` (Dynamixel adds the offset,
  Feetech subtracts it and wraps to 0..4095), where ``raw = 2048 + mount_offset + q / rad_per_tick`` and
  ``mount_offset`` is how far this servo's horn was assembled off its middle (so an uncalibrated arm
  does not read 0 rad in its zero pose, as on a freshly built arm);
- goal position: the servo ramps its set point toward the goal at the model's no-load speed; a position
  actuator tracks the set point. Dynamixel refuses a goal outside Min/Max Position Limit (data limit
  error); Feetech clamps it into the limits;
- torque off: no actuator force; gear friction keeps a limp arm where it is near its zero pose (a human
  can move it: :meth:`VirtualServoBus.move_by_hand`);
- Dynamixel refuses EEPROM writes (homing offset, limits, ...) while torque is on (access error) and any
  write to read-only registers; writes to ID and baud rate are refused too (not emulated);
- bytes take their wire time at the configured baud rate (10 bits per byte) before a reply is sent.

Faults (:class:`FaultConfig`): a probability of a corrupted checksum/CRC per reply, of a dropped reply,
an added reply delay, and a disconnect after N instruction packets or on command: ``"silent"`` (the
servo cable is pulled: the port stays, nothing answers) or ``"close"`` (the USB adapter is pulled: the
pty closes, the driver's reads and writes fail).

``VirtualServoBus`` runs :func:`serve` in its own ``python`` subprocess; ``serve`` is also what the
``gipo-robot virtual-arm`` command runs for a human.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
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

import numpy as np

from gipo_robot.hardware import servo_protocol as sp

#: Joint names of ``assets/virtual_arm.xml``, in servo order.
JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
#: The model's joint ranges (rad), the ``joint_limits`` of :meth:`VirtualServoBus.robot_config`.
JOINT_RANGES = ((-2.0, 2.0), (-1.8, 1.8), (-1.7, 1.7), (-1.8, 1.8), (-2.5, 2.5), (-0.2, 1.7))
#: How far each servo's horn sits off its middle at the zero pose, ticks (undone by calibration).
DEFAULT_MOUNT_OFFSETS = (120, -85, 200, -160, 45, -30)
DISCONNECT_MODES = ("silent", "close")
_TEMPERATURE_C = 31
_READ_ONLY = {
    "model_number",
    "firmware_version",
    "firmware_major_version",
    "firmware_minor_version",
    "id",
    "baud_rate",
    "present_position",
    "present_velocity",
    "present_temperature",
    "moving",
    "hardware_error_status",
}


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """Faults the virtual bus injects into its replies."""

    corrupt_prob: float = 0.0
    """Probability that a reply's checksum/CRC is wrong."""
    drop_prob: float = 0.0
    """Probability that a reply is not sent at all."""
    reply_delay_s: float = 0.0
    """Added before every reply, s."""
    disconnect_after: int | None = None
    """Disconnect after this many instruction packets (None: only on command)."""
    disconnect_mode: str = "silent"
    """``"silent"`` (no more replies, port stays) or ``"close"`` (the pty closes)."""
    seed: int = 0
    """Seed of the fault draws."""

    def __post_init__(self) -> None:
        for name in ("corrupt_prob", "drop_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be in [0, 1], got {value}")
        if self.reply_delay_s < 0:
            raise ValueError(f"FaultConfig.reply_delay_s must be >= 0, got {self.reply_delay_s}")
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
    faults: FaultConfig = dataclasses.field(default_factory=FaultConfig)
    """Injected faults."""

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


# --------------------------------------------------------------------------------------------------
# The servos
# --------------------------------------------------------------------------------------------------
class _Servo:
    """One servo's control table (a byte image) plus its joint's goal and set point."""

    def __init__(self, model: sp.ServoModel, servo_id: int, mount_offset: int, q_low: float, q_high: float):
        self.model, self.id, self.mount = model, servo_id, mount_offset
        self.q_low, self.q_high = q_low, q_high
        self.image = bytearray(max(r.address + r.size for r in model.registers.values()) + 1)
        self.set("model_number", model.model_number)
        self.set("id", servo_id)
        self.set("min_position_limit", 0)
        self.set("max_position_limit", model.resolution - 1)
        self.set("present_temperature", _TEMPERATURE_C)
        self.setpoint = 0.0
        self.torque_switched_on = False
        """Set when torque goes on; the next physics step starts the set point from the measured angle."""
        self.set("goal_position", self.present_ticks(0.0))

    def get(self, name: str) -> int:
        reg = self.model.register(name)
        return reg.decode(self.image[reg.address : reg.address + reg.size])

    def set(self, name: str, value: int) -> None:
        reg = self.model.register(name)
        self.image[reg.address : reg.address + reg.size] = reg.encode(value)

    @property
    def torque(self) -> bool:
        return bool(self.get("torque_enable"))

    def present_ticks(self, q: float) -> int:
        raw = self.model.resolution // 2 + self.mount + round(q / self.model.rad_per_tick)
        present = raw + self.model.homing_sign * self.get("homing_offset")
        return present % self.model.resolution if self.model.protocol == "feetech" else present

    def goal_q(self) -> float:
        """The joint angle the goal position register asks for, rad."""
        raw = self.get("goal_position") - self.model.homing_sign * self.get("homing_offset")
        if self.model.protocol == "feetech":
            raw %= self.model.resolution
        q = (raw - self.model.resolution // 2 - self.mount) * self.model.rad_per_tick
        return min(max(q, self.q_low), self.q_high)

    def refresh(self, q: float, qdot: float) -> None:
        """Write the measured state into the read-only registers."""
        self.set("present_position", self.present_ticks(q))
        self.set("present_velocity", round(qdot / self.model.velocity_unit))
        self.set("moving", int(abs(qdot) > 0.02))

    def read(self, address: int, length: int) -> tuple[bytes, int]:
        """``(data, error)`` of a READ."""
        if address + length > len(self.image) or length == 0:
            bad = sp.DXL_ERROR_DATA_LENGTH if self.model.protocol == "dynamixel" else 0
            return b"", bad
        return bytes(self.image[address : address + length]), 0

    def write(self, address: int, data: bytes) -> int:
        """Apply a WRITE; returns the status error byte (0: accepted)."""
        dxl = self.model.protocol == "dynamixel"
        touched = [
            name
            for name, reg in self.model.registers.items()
            if reg.address < address + len(data) and address < reg.address + reg.size
        ]
        if address + len(data) > len(self.image):
            return sp.DXL_ERROR_DATA_LENGTH if dxl else 0
        if any(name in _READ_ONLY for name in touched):
            return sp.DXL_ERROR_ACCESS if dxl else 0
        if dxl and self.torque and any(self.model.registers[n].eeprom for n in touched):
            return sp.DXL_ERROR_ACCESS
        was_on = self.torque
        old = bytes(self.image)
        self.image[address : address + len(data)] = data
        if "goal_position" in touched:
            goal, low, high = (
                self.get(n) for n in ("goal_position", "min_position_limit", "max_position_limit")
            )
            if dxl and not low <= goal <= high:
                self.image[:] = old
                return sp.DXL_ERROR_DATA_LIMIT
            if not dxl:
                self.set("goal_position", min(max(goal, low), high))
        if "torque_enable" in touched and self.torque and not was_on:
            self.torque_switched_on = True
        return 0


class _Arm:
    """The MuJoCo arm and its servos, stepped in real time."""

    def __init__(self, config: VirtualArmConfig):
        import mujoco

        self._mj = mujoco
        xml = importlib.resources.files("gipo_robot.hardware") / "assets" / "virtual_arm.xml"
        with importlib.resources.as_file(xml) as path:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)
        model = sp.model_named(config.model)
        self.servo_model = model
        self.servos = {
            servo_id: _Servo(model, servo_id, mount, lo, hi)
            for servo_id, mount, (lo, hi) in zip(config.ids, config.mount_offsets, JOINT_RANGES, strict=True)
        }
        self.order = list(config.ids)
        self.sim_start = time.monotonic()
        self.refresh()

    def refresh(self) -> None:
        for j, servo_id in enumerate(self.order):
            self.servos[servo_id].refresh(float(self.data.qpos[j]), float(self.data.qvel[j]))

    def step_to(self, now: float, max_steps: int = 100) -> None:
        """Step the physics until its clock catches up with ``now`` (monotonic s), at most ``max_steps``."""
        dt = self.model.opt.timestep
        steps = min(int((now - self.sim_start - self.data.time) / dt), max_steps)
        if steps <= 0:
            return
        vmax = self.servo_model.max_velocity
        for _ in range(steps):
            for j, servo_id in enumerate(self.order):
                servo = self.servos[servo_id]
                q = float(self.data.qpos[j])
                if not servo.torque:
                    servo.setpoint = q
                    self.data.ctrl[j] = q
                    continue
                if servo.torque_switched_on:
                    servo.setpoint, servo.torque_switched_on = q, False
                servo.setpoint += float(np.clip(servo.goal_q() - servo.setpoint, -vmax * dt, vmax * dt))
                self.data.ctrl[j] = servo.setpoint
            self._mj.mj_step(self.model, self.data)
        if now - self.sim_start - self.data.time > 10 * dt:  # fell behind (loaded machine): skip ahead
            self.sim_start = now - self.data.time
        self.refresh()

    def move_by_hand(self, q: Sequence[float]) -> None:
        """Put the joints at ``q`` (rad), as a human moving a limp arm (torque-on servos fight back)."""
        self.data.qpos[:] = np.asarray(q, dtype=np.float64)
        self.data.qvel[:] = 0.0
        self._mj.mj_forward(self.model, self.data)
        self.refresh()


# --------------------------------------------------------------------------------------------------
# The protocol side
# --------------------------------------------------------------------------------------------------
class _BusServer:
    """Parses instruction packets from the master end and produces the servos' replies."""

    def __init__(self, config: VirtualArmConfig, arm: _Arm):
        self.config, self.arm = config, arm
        self.protocol = config.protocol
        self.rng = random.Random(config.faults.seed)
        self.buf = bytearray()
        self.counts = {"packets": 0, "bad_packets": 0, "replies": 0, "corrupted": 0, "dropped": 0}
        self.disconnected = False

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
            if not self.disconnected:
                replies += self._handle(packet)
            limit = self.config.faults.disconnect_after
            if limit is not None and self.counts["packets"] >= limit:
                self.disconnected = True
        return [r for r in (self._fault(r) for r in replies) if r is not None]

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
        return sp.frame_status(self.protocol, servo_id, error, params)

    def _handle(self, packet: sp.Packet) -> list[bytes]:
        servos, inst, proto = self.arm.servos, packet.instruction, self.protocol
        if inst in (sp.READ, sp.SYNC_READ):
            self.arm.refresh()  # a homing offset written a moment ago shows at once, as on a servo
        targets = self.arm.order if packet.id == sp.BROADCAST_ID else [packet.id]
        targets = [t for t in targets if t in servos]
        if inst == sp.PING:
            if proto == "dynamixel":
                model = self.arm.servo_model.model_number
                return [self._status(t, 0, sp.encode_value(model, 2) + b"\x01") for t in targets]
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
            ``{"cmd": "state"}``, ``{"cmd": "disconnect"}`` and ``{"cmd": "move_by_hand", "q": [...]}``
            with the state (used by :class:`VirtualServoBus`).

    Returns:
        Packet counters: ``packets``, ``bad_packets``, ``replies``, ``corrupted``, ``dropped``.
    """
    if config is None:
        config = VirtualArmConfig()
    elif isinstance(config, dict):
        config = VirtualArmConfig(**config)
    arm = _Arm(config)
    server = _BusServer(config, arm)
    master, slave, port = _open_pty()
    byte_time = 10.0 / config.baudrate
    closed = False
    if on_ready is not None:
        on_ready(port)
    try:
        while stop_event is None or not stop_event.is_set():
            if closed:
                time.sleep(0.01)
                ready = []
            else:
                ready, _, _ = select.select([master], [], [], 0.002)
            if ready:
                data = os.read(master, 4096)
                arm.step_to(time.monotonic())
                replies = server.feed(data)
                if replies:
                    wire = byte_time * (len(data) + sum(len(r) for r in replies))
                    time.sleep(wire + config.faults.reply_delay_s)
                    os.write(master, b"".join(replies))
            arm.step_to(time.monotonic())
            if server.disconnected and config.faults.disconnect_mode == "close" and not closed:
                os.close(master)
                os.close(slave)
                closed = True
            if commands is not None and commands.poll():
                request = commands.recv()
                if request.get("cmd") == "disconnect":
                    server.disconnected = True
                elif request.get("cmd") == "move_by_hand":
                    arm.move_by_hand(request["q"])
                commands.send(
                    {
                        "q": arm.data.qpos.tolist(),
                        "goal_q": [arm.servos[i].goal_q() for i in arm.order],
                        "torque": [arm.servos[i].torque for i in arm.order],
                        "homing_offset": [arm.servos[i].get("homing_offset") for i in arm.order],
                        "counts": dict(server.counts),
                        "disconnected": server.disconnected,
                    }
                )
    except KeyboardInterrupt:
        pass
    finally:
        if not closed:
            os.close(master)
            os.close(slave)
    return dict(server.counts)


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
        self.config = VirtualArmConfig(protocol=protocol, faults=faults, **config)
        self.start_timeout_s = start_timeout_s
        self.port: str | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> VirtualServoBus:
        code = "from gipo_robot.hardware.virtual_bus import _serve_stdio; _serve_stdio()"
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
        """Ground truth: ``q`` (J,) rad, ``goal_q``, ``torque``, ``homing_offset`` per servo, ``counts``."""
        return self._request("state")

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
    cfg.update(overrides)
    return cfg


__all__ = [
    "JOINT_NAMES",
    "JOINT_RANGES",
    "FaultConfig",
    "VirtualArmConfig",
    "VirtualServoBus",
    "robot_config_for",
    "serve",
]
