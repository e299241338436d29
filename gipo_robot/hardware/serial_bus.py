"""Servo-bus arms (SO-100-like, Koch-like) over a serial port: :class:`SerialArm`.

Legend: ``J`` number of joints (one servo each, the gripper included); ticks are encoder steps.

**Which code speaks the protocol.** The vendors' own SDKs: ROBOTIS ``dynamixel-sdk`` (Protocol 2.0) and
Feetech ``feetech-servo-sdk`` (module ``scservo_sdk``, STS), the code LeRobot drives the same arms with.
Both are usable, and using them means the driver and the virtual bus
(:mod:`gipo_robot.hardware.virtual_bus`, written from the manuals in
:mod:`gipo_robot.hardware.servo_protocol`) are two independent implementations that the tests play
against each other, so a shared misreading of the protocol cannot hide. Their rough edges are worked
around here, not patched in place:

- both busy-poll the port with a 0 s read timeout and wait a fixed ~34 ms per reply; our port handler
  reads with a 1 ms timeout (no busy loop) and uses ``timeout_s`` from the config;
- Feetech's ``clearPort`` flushes the *output*, leaving stale replies in the input after an error; ours
  discards the input before every instruction, as ROBOTIS' does;
- an exception inside an SDK call (port unplugged) leaves its port marked busy forever; we reset it;
- Feetech's sign-magnitude registers and the SDK's module-global byte order: values are encoded and
  decoded here (:class:`~gipo_robot.hardware.servo_protocol.Register`), the SDKs only move bytes;
- the port is opened ``exclusive`` so two programs cannot drive one arm.

**Errors.** Wrong port, a servo that does not answer, a servo of another model: :class:`RobotError`
naming the port and the servo id, raised by :meth:`connect` before anything is written. A timeout or a
bad checksum is retried up to ``retries`` times per transaction (every retry is counted in
:attr:`SerialArm.bus_stats`); when a transaction still fails, :class:`BusError`. :meth:`hold` never
raises.

**Torque.** ``connect`` does not switch torque on; ``reset`` and the first ``act`` do, after setting the
goal to the present position so nothing jumps. A leader arm is used torque-off:
``arm.torque(False)`` then ``arm.read_positions()``. ``disconnect`` leaves torque on, holding the last
position (a follower arm switched limp would fall).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gipo_robot.hardware import servo_protocol as sp
from gipo_robot.hardware.calibration import (
    MotorCalibration,
    load_calibration,
    rad_to_ticks,
    save_calibration,
    ticks_to_rad,
)
from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

#: protocol -> (SDK module, pip package).
SDKS = {"dynamixel": ("dynamixel_sdk", "dynamixel-sdk"), "feetech": ("scservo_sdk", "feetech-servo-sdk")}


class BusError(RobotError):
    """The servo bus stopped answering (or kept answering garbage) for a whole retry budget."""


@dataclasses.dataclass
class SerialArmConfig:
    """One servo-bus arm. Saved as JSON/TOML with ``type = "dynamixel"`` or ``"feetech"``."""

    protocol: str
    """``"dynamixel"`` (Protocol 2.0) or ``"feetech"`` (STS)."""
    port: str
    """Serial device, e.g. ``/dev/ttyUSB0``, ``/dev/ttyACM0`` or a virtual bus's ``/dev/pts/N``."""
    ids: tuple[int, ...]
    """Servo ID of each joint, in joint order."""
    joint_names: tuple[str, ...]
    """The J joint names (the gripper is a joint)."""
    joint_limits: dict[str, tuple[float, float]]
    """Joint name -> (low, high), rad. Required for every joint: actions map onto this range."""
    max_velocity: float | tuple[float, ...] | None = None
    """Joint velocity limit, rad/s (one for all or one per joint; None: half the model's no-load speed)."""
    model: str | None = None
    """Servo model every ID must report (None: the protocol's default, ``xl330-m288`` / ``sts3215``)."""
    baudrate: int = 1_000_000
    """Bus speed, bit/s."""
    control_hz: float = 30.0
    """Control rate, steps/s."""
    calibration: str | None = None
    """Calibration JSON (LeRobot fields); None uses the homing stored in the servos, 2048 ticks = 0 rad."""
    retries: int = 3
    """Retries per bus transaction after a timeout/bad checksum before :class:`BusError`."""
    timeout_s: float = 0.05
    """How long to wait for a reply, s (beyond the bytes' wire time)."""
    home: tuple[float, ...] | None = None
    """Joint positions ``reset`` moves to, rad (None: ``reset`` holds where the arm is)."""
    name: str | None = None
    """Robot name in logs and errors (default ``"<protocol>:<port>"``)."""

    def __post_init__(self) -> None:
        if self.protocol not in sp.PROTOCOLS:
            raise ValueError(f"SerialArmConfig.protocol {self.protocol!r} unknown; known: {sp.PROTOCOLS}")
        if not isinstance(self.port, str) or not self.port:
            raise ValueError("SerialArmConfig.port must name a serial device, e.g. /dev/ttyUSB0")
        self.ids = tuple(int(i) for i in self.ids)
        self.joint_names = tuple(str(n) for n in self.joint_names)
        if not self.ids:
            raise ValueError("SerialArmConfig.ids is empty")
        if len(self.ids) != len(self.joint_names):
            raise ValueError(
                f"SerialArmConfig.ids has {len(self.ids)} entries but joint_names has {len(self.joint_names)}"
            )
        if len(set(self.ids)) != len(self.ids) or any(not 0 <= i <= sp.BROADCAST_ID - 1 for i in self.ids):
            raise ValueError(f"SerialArmConfig.ids must be distinct ids in 0..253, got {list(self.ids)}")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"SerialArmConfig.joint_names has duplicates: {list(self.joint_names)}")
        model = sp.model_named(self.model or sp.DEFAULT_MODELS[self.protocol])
        if model.protocol != self.protocol:
            raise ValueError(
                f"SerialArmConfig.model {model.name!r} is a {model.protocol} servo, not {self.protocol}"
            )
        self.model = model.name
        if not isinstance(self.joint_limits, Mapping):
            raise ValueError("SerialArmConfig.joint_limits must map each joint name to [low, high] in rad")
        limits = {}
        for joint in self.joint_names:
            if joint not in self.joint_limits:
                raise ValueError(f"SerialArmConfig.joint_limits.{joint} is missing: give [low, high] in rad")
            pair = self.joint_limits[joint]
            if len(pair) != 2 or not all(math.isfinite(float(v)) for v in pair) or pair[1] <= pair[0]:
                raise ValueError(f"SerialArmConfig.joint_limits.{joint} must be [low, high] rad, high > low")
            if max(abs(float(v)) for v in pair) > math.pi:
                raise ValueError(f"SerialArmConfig.joint_limits.{joint} must lie within one turn, [-pi, pi]")
            limits[joint] = (float(pair[0]), float(pair[1]))
        extra = sorted(set(self.joint_limits) - set(self.joint_names))
        if extra:
            raise ValueError(f"SerialArmConfig.joint_limits names unknown joints {extra}")
        self.joint_limits = limits
        if self.max_velocity is None:
            self.max_velocity = 0.5 * model.max_velocity
        vmax = np.broadcast_to(np.asarray(self.max_velocity, dtype=np.float64), (len(self.ids),))
        if not np.all(np.isfinite(vmax)) or np.any(vmax <= 0):
            raise ValueError(f"SerialArmConfig.max_velocity must be > 0 rad/s, got {self.max_velocity}")
        self.max_velocity = tuple(float(v) for v in vmax)
        for name in ("baudrate", "control_hz", "timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SerialArmConfig.{name} must be > 0, got {getattr(self, name)}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"SerialArmConfig.retries must be an integer >= 0, got {self.retries!r}")
        if self.home is not None:
            self.home = tuple(float(v) for v in self.home)
            if len(self.home) != len(self.ids):
                raise ValueError(
                    f"SerialArmConfig.home must have {len(self.ids)} entries, got {len(self.home)}"
                )
            outside = [
                j for j, h in zip(self.joint_names, self.home, strict=True) if not _within(h, limits[j])
            ]
            if outside:
                raise ValueError(f"SerialArmConfig.home is outside joint_limits for {outside}")
        if self.name is None:
            self.name = f"{self.protocol}:{self.port}"

    @property
    def servo_model(self) -> sp.ServoModel:
        """The servo model (:class:`~gipo_robot.hardware.servo_protocol.ServoModel`)."""
        return sp.model_named(self.model)


def _within(value: float, pair: tuple[float, float]) -> bool:
    return pair[0] <= value <= pair[1]


# --------------------------------------------------------------------------------------------------
# The SDK underneath: bytes in, bytes out, one exception type for every failure
# --------------------------------------------------------------------------------------------------
class _CommError(Exception):
    """One failed transaction; ``kind`` is ``timeout``, ``corrupt`` or ``io``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _import_sdk(protocol: str) -> Any:
    module, package = SDKS[protocol]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RobotError(f"the {protocol} bus needs the {package} package: pip install {package}") from exc


def _port_handler(sdk: Any, port: str, timeout_s: float) -> Any:
    """The SDK's PortHandler with our open/clear/timeout behaviour (see the module doc)."""
    import serial

    class PortHandler(sdk.PortHandler):
        def setupPort(self, cflag_baud: int) -> bool:
            if self.is_open:
                self.closePort()
            self.ser = serial.Serial(
                port=self.port_name,
                baudrate=self.baudrate,
                bytesize=serial.EIGHTBITS,
                timeout=0.001,
                exclusive=True,
            )
            self.is_open = True
            self.ser.reset_input_buffer()
            self.tx_time_per_byte = (1000.0 / self.baudrate) * 10.0
            return True

        def clearPort(self) -> None:
            self.ser.reset_input_buffer()

        def setPacketTimeout(self, packet_length: int) -> None:
            self.packet_start_time = self.getCurrentTime()
            self.packet_timeout = self.tx_time_per_byte * packet_length + 1000.0 * timeout_s

    return PortHandler(port)


class _SdkBus:
    """Ping/read/write/sync read/sync write through the vendor SDK, raising :class:`_CommError`."""

    def __init__(self, protocol: str, port: str, baudrate: int, timeout_s: float):
        self.protocol, self.port_name, self.baudrate = protocol, port, baudrate
        self.sdk = _import_sdk(protocol)
        self.port = _port_handler(self.sdk, port, timeout_s)
        # Feetech's PacketHandler(0) sets the SDK's global byte order to little-endian (STS series).
        self.packets = self.sdk.PacketHandler(2.0 if protocol == "dynamixel" else 0)

    def open(self) -> None:
        if not self.port.setBaudRate(self.baudrate):
            raise RobotError(
                f"{self.port_name}: baud rate {self.baudrate} is not supported by the {self.protocol} SDK"
            )

    def close(self) -> None:
        if self.port.ser is not None and self.port.is_open:
            self.port.closePort()

    def recover(self) -> None:
        """After a failure: release the SDK's busy flag, let late bytes land, drop them."""
        self.port.is_using = False
        time.sleep(0.001)
        with contextlib.suppress(Exception):  # the port is gone: the next attempt reports it
            self.port.ser.reset_input_buffer()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (_CommError, RobotError):
            raise
        except Exception as exc:
            self.port.is_using = False
            raise _CommError("io", f"{what}: {type(exc).__name__}: {exc}") from exc

    def _check(self, what: str, result: int) -> None:
        if result == self.sdk.COMM_SUCCESS:
            return
        kind = {self.sdk.COMM_RX_TIMEOUT: "timeout", self.sdk.COMM_RX_CORRUPT: "corrupt"}.get(result, "io")
        raise _CommError(kind, f"{what}: {self.packets.getTxRxResult(result)}")

    def ping(self, servo_id: int) -> int:
        """The model number servo ``servo_id`` reports."""
        model, result, _ = self._call("ping", lambda: self.packets.ping(self.port, servo_id))
        self._check(f"ping id {servo_id}", result)
        return int(model)

    def read(self, servo_id: int, address: int, size: int) -> tuple[bytes, int]:
        """``(bytes, status error)`` of READ."""
        data, result, error = self._call(
            "read", lambda: self.packets.readTxRx(self.port, servo_id, address, size)
        )
        self._check(f"read id {servo_id} @{address}", result)
        if len(data) != size:
            raise _CommError("corrupt", f"read id {servo_id} @{address}: {len(data)} bytes, expected {size}")
        return bytes(data), int(error)

    def write(self, servo_id: int, address: int, data: bytes) -> int:
        """WRITE with a status reply; returns the status error byte."""
        result, error = self._call(
            "write", lambda: self.packets.writeTxRx(self.port, servo_id, address, len(data), list(data))
        )
        self._check(f"write id {servo_id} @{address}", result)
        return int(error)

    def sync_read(self, address: int, size: int, ids: Sequence[int]) -> dict[int, bytes]:
        """SYNC READ ``size`` bytes at ``address`` from each id."""
        group = self.sdk.GroupSyncRead(self.port, self.packets, address, size)
        for servo_id in ids:
            group.addParam(servo_id)
        self._check("sync read", self._call("sync read", group.txRxPacket))
        out = {}
        for servo_id in ids:
            data = bytes(group.data_dict.get(servo_id) or b"")
            if len(data) != size:
                raise _CommError(
                    "corrupt", f"sync read: id {servo_id} sent {len(data)} bytes, expected {size}"
                )
            out[servo_id] = data
        return out

    def sync_write(self, address: int, size: int, data: Mapping[int, bytes]) -> None:
        """SYNC WRITE (no replies)."""
        group = self.sdk.GroupSyncWrite(self.port, self.packets, address, size)
        for servo_id, chunk in data.items():
            group.addParam(servo_id, list(chunk))
        self._check("sync write", self._call("sync write", group.txPacket))


# --------------------------------------------------------------------------------------------------
# The arm
# --------------------------------------------------------------------------------------------------
class SerialArm(Robot):
    """A servo-bus arm as a :class:`Robot` (action mode ``joint_position``; observes ``joint_pos``,
    ``joint_vel``).

    Args:
        config: The arm's :class:`SerialArmConfig`.
    """

    def __init__(self, config: SerialArmConfig) -> None:
        self.config = config
        self.servo = config.servo_model
        low = np.array([config.joint_limits[j][0] for j in config.joint_names])
        high = np.array([config.joint_limits[j][1] for j in config.joint_names])
        n = len(config.ids)
        self._spec = RobotSpec(
            name=config.name,
            action_mode="joint_position",
            action_names=config.joint_names,
            action_low=low,
            action_high=high,
            joint_names=config.joint_names,
            joint_low=low,
            joint_high=high,
            max_joint_velocity=np.asarray(config.max_velocity),
            control_hz=config.control_hz,
            obs_shapes={"joint_pos": (n,), "joint_vel": (n,)},
            obs_dtypes={"joint_pos": "float64", "joint_vel": "float64"},
        )
        self.bus_stats = {
            "transactions": 0,
            "retries": 0,
            "timeout": 0,
            "corrupt": 0,
            "io": 0,
            "hold_failures": 0,
        }
        """Counters since construction: completed transactions, retries, failures by kind."""
        self.calibration: dict[str, MotorCalibration] | None = None
        self._bus: _SdkBus | None = None
        self._torque_on = False
        self._last_ticks: np.ndarray | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> SerialArm:
        """Build from a plain dict (a robot config file's contents).

        ``type`` (``"dynamixel"``/``"feetech"``) stands for ``protocol``. Unknown or missing keys and bad
        values raise ``ValueError`` naming the key and ``source``.
        """
        data = dict(cfg)
        kind = data.pop("type", None)
        if kind is not None:
            if "protocol" in data and data["protocol"] != kind:
                raise ValueError(f"{source}: type {kind!r} and protocol {data['protocol']!r} disagree")
            data["protocol"] = kind
        fields = {f.name: f for f in dataclasses.fields(SerialArmConfig)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown} for a serial arm; known: {sorted(fields)}")
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ValueError(f"{source}: missing key(s) {missing} for a serial arm")
        try:
            return cls(SerialArmConfig(**data))
        except (TypeError, ValueError, KeyError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise ValueError(f"{source}: {message}") from exc

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    # ---------------------------------------------------------------------------------- transactions
    def _transact(self, what: str, fn: Callable[[], T], retries: int | None = None) -> T:
        """Run one bus transaction, retrying timeouts/corruption up to the budget; :class:`BusError` after."""
        if self._bus is None:
            raise RobotError(f"{self.config.name}: not connected")
        budget = self.config.retries if retries is None else retries
        last: _CommError | None = None
        for attempt in range(budget + 1):
            if attempt:
                self.bus_stats["retries"] += 1
                self._bus.recover()
            try:
                result = fn()
            except _CommError as exc:
                self.bus_stats[exc.kind] += 1
                last = exc
                continue
            self.bus_stats["transactions"] += 1
            return result
        raise BusError(
            f"{self.config.port}: {what} failed {budget + 1} time(s) in a row (last: {last}); "
            "the bus is unplugged, unpowered or too noisy"
        )

    def _register(self, name: str) -> sp.Register:
        return self.servo.register(name)

    def _sync_read(self, names: Sequence[str], retries: int | None = None) -> dict[str, np.ndarray]:
        regs = [self._register(n) for n in names]
        start = min(r.address for r in regs)
        size = max(r.address + r.size for r in regs) - start
        raw = self._transact(
            f"sync read of {', '.join(names)}",
            lambda: self._bus.sync_read(start, size, self.config.ids),
            retries,
        )
        return {
            name: np.array(
                [
                    reg.decode(raw[i][reg.address - start : reg.address - start + reg.size])
                    for i in self.config.ids
                ],
                dtype=np.int64,
            )
            for name, reg in zip(names, regs, strict=True)
        }

    def _sync_write(self, name: str, values: Sequence[int], retries: int | None = None) -> None:
        reg = self._register(name)
        data = {i: reg.encode(int(v)) for i, v in zip(self.config.ids, values, strict=True)}
        self._transact(
            f"sync write of {name}", lambda: self._bus.sync_write(reg.address, reg.size, data), retries
        )

    def _write(self, servo_id: int, name: str, value: int) -> None:
        reg = self._register(name)
        error = self._transact(
            f"write of {name} to id {servo_id}",
            lambda: self._bus.write(servo_id, reg.address, reg.encode(value)),
        )
        if self.config.protocol == "dynamixel" and error & 0x7F:
            raise RobotError(
                f"{self.config.port}: servo id {servo_id} refused {name} = {value}: "
                f"{sp.describe_error('dynamixel', error)}"
            )

    def _read(self, servo_id: int, name: str) -> int:
        reg = self._register(name)
        data, _ = self._transact(
            f"read of {name} from id {servo_id}", lambda: self._bus.read(servo_id, reg.address, reg.size)
        )
        return reg.decode(data)

    # ---------------------------------------------------------------------------------- connection
    def _connect(self) -> None:
        cfg = self.config
        bus = _SdkBus(cfg.protocol, cfg.port, cfg.baudrate, cfg.timeout_s)
        try:
            bus.open()
        except RobotError:
            raise
        except Exception as exc:
            raise RobotError(
                f"cannot open serial port {cfg.port!r} for {cfg.name}: {exc}. "
                f"Is the arm plugged in and is this its port? Ports present: {_list_ports()}"
            ) from exc
        self._bus = bus
        try:
            self._check_models()
            if cfg.calibration is not None and Path(cfg.calibration).is_file():
                self._apply_calibration(load_calibration(cfg.calibration))
            self._torque_on = False
        except BaseException:
            self._bus = None
            bus.close()
            raise

    def _check_models(self) -> None:
        """Ping every servo and compare its model number, before anything is written."""
        cfg, expected = self.config, self.servo
        for servo_id, joint in zip(cfg.ids, cfg.joint_names, strict=True):
            try:
                number = self._transact(f"ping of id {servo_id}", lambda i=servo_id: self._bus.ping(i))
            except BusError as exc:
                raise RobotError(
                    f"{cfg.port}: no reply from servo id {servo_id} (joint {joint!r}, {cfg.protocol} at "
                    f"{cfg.baudrate} baud): check power, wiring, the id and the port ({exc})"
                ) from exc
            if number != expected.model_number:
                raise RobotError(
                    f"{cfg.port}: servo id {servo_id} (joint {joint!r}) reports model number {number} "
                    f"({sp.model_name_for_number(number)}), but the config expects {expected.name} "
                    f"({expected.model_number}); refusing to drive it"
                )

    def _disconnect(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except Exception as exc:
                log.warning("%s: closing %s failed: %s", self.config.name, self.config.port, exc)

    # ---------------------------------------------------------------------------------- calibration
    def _cal_for(self, joint: str) -> MotorCalibration | None:
        return None if self.calibration is None else self.calibration[joint]

    def _ticks_to_rad(self, ticks: np.ndarray) -> np.ndarray:
        res = self.servo.resolution
        return np.array(
            [
                ticks_to_rad(float(t), res, getattr(self._cal_for(j), "drive_mode", 0))
                for t, j in zip(ticks, self.config.joint_names, strict=True)
            ]
        )

    def _rad_to_ticks(self, rad: np.ndarray) -> np.ndarray:
        res = self.servo.resolution
        out = []
        for q, joint in zip(rad, self.config.joint_names, strict=True):
            cal = self._cal_for(joint)
            ticks = rad_to_ticks(float(q), res, getattr(cal, "drive_mode", 0))
            if cal is not None:
                ticks = min(max(ticks, cal.range_min), cal.range_max)
            out.append(min(max(ticks, 0), res - 1) if self.config.protocol == "feetech" else ticks)
        return np.array(out, dtype=np.int64)

    def _set_eeprom(self, per_id: Mapping[int, Mapping[str, int]]) -> None:
        """Write EEPROM registers (torque must be off on Dynamixel; Feetech needs its lock opened)."""
        self._torque(False)
        feetech = self.config.protocol == "feetech"
        for servo_id, values in per_id.items():
            if feetech:
                self._write(servo_id, "lock", 0)
            for name, value in values.items():
                self._write(servo_id, name, value)
            if feetech:
                self._write(servo_id, "lock", 1)

    def _apply_calibration(self, calibration: dict[str, MotorCalibration]) -> None:
        """Check a loaded calibration against the config and write it where the servos differ."""
        cfg, source = self.config, self.config.calibration
        missing = [j for j in cfg.joint_names if j not in calibration]
        if missing:
            raise RobotError(f"calibration file {source} has no entry for joint(s) {missing}")
        for servo_id, joint in zip(cfg.ids, cfg.joint_names, strict=True):
            if calibration[joint].id != servo_id:
                raise RobotError(
                    f"calibration file {source}: joint {joint!r} has id {calibration[joint].id}, "
                    f"config says {servo_id}"
                )
        self.calibration = {j: calibration[j] for j in cfg.joint_names}
        for joint in cfg.joint_names:  # the software limits must fit in the calibrated range
            cal, (low, high) = self.calibration[joint], cfg.joint_limits[joint]
            ends = sorted(rad_to_ticks(v, self.servo.resolution, cal.drive_mode) for v in (low, high))
            if ends[0] < cal.range_min - 1 or ends[1] > cal.range_max + 1:
                raise RobotError(
                    f"calibration file {source}: joint {joint!r} range "
                    f"[{cal.range_min}, {cal.range_max}] ticks "
                    f"does not cover joint_limits {list(cfg.joint_limits[joint])} rad = {ends} ticks"
                )
        changes: dict[int, dict[str, int]] = {}
        for servo_id, joint in zip(cfg.ids, cfg.joint_names, strict=True):
            cal = self.calibration[joint]
            wanted = {
                "homing_offset": cal.homing_offset,
                "min_position_limit": cal.range_min,
                "max_position_limit": cal.range_max,
            }
            diff = {k: v for k, v in wanted.items() if self._read(servo_id, k) != v}
            if diff:
                changes[servo_id] = diff
        if changes:
            log.info("%s: writing calibration to servo(s) %s", cfg.name, sorted(changes))
            self._set_eeprom(changes)

    def calibrate(self, path: str | Path | None = None) -> dict[str, MotorCalibration]:
        """Zero-pose calibration: call with the arm held in its zero pose (the pose that should read 0 rad).

        Switches torque off, sets each servo's homing offset so that it reports the middle of its turn
        (``resolution / 2``) there, writes each joint's ``joint_limits`` (in ticks) as the servo's
        position limits, and saves the calibration as JSON.

        Args:
            path: Where to save (default: ``config.calibration``; None for neither saves nothing).

        Returns:
            Joint name -> :class:`~gipo_robot.hardware.calibration.MotorCalibration`.
        """
        self._require_connected()
        cfg, res = self.config, self.servo.resolution
        self._set_eeprom({i: {"homing_offset": 0} for i in cfg.ids})
        raw = self._sync_read(["present_position"])["present_position"]
        calibration = {}
        for servo_id, joint, ticks in zip(cfg.ids, cfg.joint_names, raw, strict=True):
            offset = self.servo.homing_sign * (res // 2 - int(ticks))
            if abs(offset) > self.servo.homing_limit:
                raise RobotError(
                    f"{cfg.port}: servo id {servo_id} (joint {joint!r}) is {offset} ticks off its middle, "
                    f"more than the homing offset can hold ({self.servo.homing_limit}); re-mount its horn"
                )
            low, high = (rad_to_ticks(v, res) for v in cfg.joint_limits[joint])
            calibration[joint] = MotorCalibration(
                id=servo_id,
                drive_mode=0,
                homing_offset=offset,
                range_min=max(low, 0),
                range_max=min(high, res - 1),
            )
        self._set_eeprom(
            {
                c.id: {
                    "homing_offset": c.homing_offset,
                    "min_position_limit": c.range_min,
                    "max_position_limit": c.range_max,
                }
                for c in calibration.values()
            }
        )
        self.calibration = calibration
        target = path if path is not None else cfg.calibration
        if target is not None:
            save_calibration(target, calibration)
        return calibration

    def _require_calibrated(self) -> None:
        if self.config.calibration is not None and self.calibration is None:
            raise RobotError(
                f"{self.config.name}: calibration file {self.config.calibration} does not exist; "
                "hold the arm in its zero pose and run calibrate() first"
            )

    # ---------------------------------------------------------------------------------- robot
    def read_positions(self) -> np.ndarray:
        """Present joint positions (J,) rad; works torque-off (leader arm)."""
        self._require_connected()
        ticks = self._sync_read(["present_position"])["present_position"]
        self._last_ticks = ticks
        return self._ticks_to_rad(ticks)

    def observe(self) -> dict[str, np.ndarray]:
        """``joint_pos`` (J,) rad and ``joint_vel`` (J,) rad/s, from one sync read."""
        self._require_connected()
        values = self._sync_read(["present_position", "present_velocity"])
        self._last_ticks = values["present_position"]
        sign = np.array(
            [-1.0 if getattr(self._cal_for(j), "drive_mode", 0) else 1.0 for j in self.config.joint_names]
        )
        return {
            "joint_pos": self._ticks_to_rad(values["present_position"]),
            "joint_vel": sign * values["present_velocity"] * self.servo.velocity_unit,
        }

    def torque(self, enabled: bool) -> None:
        """Switch every servo's torque on (holding where it is: goal = present first) or off (limp)."""
        self._require_connected()
        self._torque(enabled)

    def _torque(self, enabled: bool) -> None:
        if enabled:
            ticks = self._sync_read(["present_position"])["present_position"]
            self._sync_write("goal_position", ticks)
        self._sync_write("torque_enable", [int(enabled)] * len(self.config.ids))
        self._torque_on = bool(enabled)

    def act(self, action: np.ndarray) -> np.ndarray:
        """Send normalised joint targets (J,) in [-1, 1]; returns the normalised targets actually sent
        (clipped to [-1, 1], rounded to whole ticks, clamped into the calibrated range)."""
        self._require_connected()
        self._require_calibrated()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self._spec.action_dim,):
            raise ValueError(
                f"{self.config.name}: action must have shape ({self._spec.action_dim},), got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            bad = [j for j, a in zip(self.config.joint_names, action, strict=True) if not np.isfinite(a)]
            raise ValueError(f"{self.config.name}: action is not finite for joint(s) {bad}")
        if not self._torque_on:
            self.torque(True)
        ticks = self._rad_to_ticks(self._spec.to_physical(np.clip(action, -1.0, 1.0)))
        self._sync_write("goal_position", ticks)
        return self._spec.to_normalized(self._ticks_to_rad(ticks))

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Torque on, holding; then move to ``config.home`` (if set) at half the velocity limit.

        ``seed`` is unused (a real arm has no randomness to seed).
        """
        self._require_connected()
        self._require_calibrated()
        self.torque(True)
        if self.config.home is not None:
            self.move_to(np.asarray(self.config.home), speed_fraction=0.5)
        return self.observe()

    def move_to(
        self, target: np.ndarray, *, speed_fraction: float = 0.5, settle_s: float = 0.5
    ) -> np.ndarray:
        """Blocking move to ``target`` (J,) rad along a straight line in joint space, at ``speed_fraction`` of
        the velocity limits, paced at ``control_hz``. Returns the joint positions at the end (rad)."""
        self._require_connected()
        target = np.clip(np.asarray(target, dtype=np.float64), self._spec.joint_low, self._spec.joint_high)
        start = self.read_positions()
        vmax = speed_fraction * self._spec.max_joint_velocity
        duration = float(np.max(np.abs(target - start) / vmax))
        steps = max(1, math.ceil(duration * self.config.control_hz))
        if not self._torque_on:
            self.torque(True)
        t0 = time.monotonic()
        for k in range(1, steps + 1):
            waypoint = start + (target - start) * k / steps
            self._sync_write("goal_position", self._rad_to_ticks(waypoint))
            time.sleep(max(0.0, t0 + k * self._spec.period - time.monotonic()))
        deadline = time.monotonic() + settle_s
        position = self.read_positions()
        while time.monotonic() < deadline and np.max(np.abs(position - target)) > 0.02:
            time.sleep(self._spec.period)
            position = self.read_positions()
        return position

    def hold(self) -> None:
        """Keep the arm where it is: goal = present position (or the last one read). Never raises; with the
        bus gone it gives up after one retry per transaction."""
        if self._bus is None:
            return
        try:
            try:
                ticks = self._sync_read(["present_position"], retries=1)["present_position"]
            except RobotError:
                ticks = self._last_ticks
            if ticks is not None and self._torque_on:
                self._sync_write("goal_position", ticks, retries=1)
        except Exception as exc:
            self.bus_stats["hold_failures"] += 1
            log.warning("%s: hold failed: %s", self.config.name, exc)


def _list_ports() -> str:
    try:
        from serial.tools import list_ports

        names = sorted(p.device for p in list_ports.comports())
    except Exception:
        names = []
    return ", ".join(names) or "none found"
