"""The vendor SDKs underneath :class:`~gipo_robot.hardware.serial_bus.SerialArm`: bytes in, bytes out.

ROBOTIS ``dynamixel-sdk`` (Protocol 2.0) and Feetech ``feetech-servo-sdk`` (module ``scservo_sdk``, STS)
are the code LeRobot drives the same arms with. :class:`SdkBus` wraps either one behind five calls
(ping, read, write, sync read, sync write) and one exception type, :class:`CommError`, for every failed
transaction; the retry policy is the arm's. The SDKs' rough edges are worked around here, not patched in
place:

- their reads take the first status packet with the right id, whatever its length, and their group sync
  read drops each servo's error byte; ours send with the SDK and receive with its ``rxPacket`` (its framing
  and checksums), keep only the packet that matches the request (id and data length; others are dropped
  and counted) and return every reply's error byte;
- a reply that comes after its timeout would be read as the answer to the next request (the same id and
  length when the request is retried): after a failed attempt, :meth:`SdkBus.recover` drains the port for
  another ``timeout_s``, until it is quiet, and reports what it dropped;

- both busy-poll the port with a 0 s read timeout and wait a fixed ~34 ms per reply; our port handler
  reads with a 1 ms timeout (no busy loop) and uses ``timeout_s`` from the config;
- Feetech's ``clearPort`` flushes the *output*, leaving stale replies in the input after an error; ours
  discards the input before every instruction, as ROBOTIS' does;
- an exception inside an SDK call (port unplugged) leaves its port marked busy forever; we reset it;
- Feetech's sign-magnitude registers and the SDK's module-global byte order: values are encoded and
  decoded by the arm (:class:`~gipo_robot.hardware.servo_protocol.Register`), the SDKs only move bytes;
- the port is opened ``exclusive`` so two programs cannot drive one arm.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from gipo_robot.hardware.robot import RobotError

__all__ = ["SDKS", "CommError", "SdkBus", "import_sdk", "list_ports"]

T = TypeVar("T")

#: protocol -> (SDK module, pip package).
SDKS = {"dynamixel": ("dynamixel_sdk", "dynamixel-sdk"), "feetech": ("scservo_sdk", "feetech-servo-sdk")}


class CommError(Exception):
    """One failed transaction; ``kind`` is ``timeout``, ``corrupt`` or ``io``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def import_sdk(protocol: str) -> Any:
    """The SDK module of ``protocol``; :class:`RobotError` naming the pip package when it is missing."""
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


class SdkBus:
    """Ping/read/write/sync read/sync write through the vendor SDK, raising :class:`CommError`.

    Args:
        protocol: ``"dynamixel"`` or ``"feetech"``.
        port: The serial device.
        baudrate: Bus speed, bit/s.
        timeout_s: How long a reply may take beyond its wire time, s.
        stats: Counters to add ``unmatched`` (replies dropped for another id or length) to.
    """

    def __init__(
        self, protocol: str, port: str, baudrate: int, timeout_s: float, stats: dict[str, int] | None = None
    ):
        self.protocol, self.port_name, self.baudrate = protocol, port, baudrate
        self.timeout_s = timeout_s
        self.stats = stats if stats is not None else {"unmatched": 0}
        self.stats.setdefault("unmatched", 0)
        self.sdk = import_sdk(protocol)
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

    def recover(self, kind: str = "timeout") -> int:
        """After a failed attempt: release the SDK's busy flag and drop what is still on its way.

        After a ``timeout`` the reply may yet come: wait ``timeout_s`` for it, and on until the line has
        been quiet for 2 ms; after ``corrupt``, the rest of a broken reply: 2 ms of quiet. Returns how many
        bytes were dropped (after a timeout: the late reply).
        """
        self.port.is_using = False
        grace = self.timeout_s if kind == "timeout" else 0.002
        try:
            return self._drain(grace, quiet_s=0.002)
        except Exception:  # the port is gone: the next attempt reports it
            return 0

    def _drain(self, grace_s: float, quiet_s: float) -> int:
        ser, dropped = self.port.ser, 0
        now = time.monotonic()
        end, give_up = now + grace_s, now + 4 * grace_s + 0.05  # a line that never goes quiet: noise
        while now < give_up:
            data = ser.read(max(1, ser.in_waiting))  # returns after the port's 1 ms timeout if idle
            now = time.monotonic()
            if data:
                dropped += len(data)
                end = max(end, now + quiet_s)
            elif now >= end:
                break
        return dropped

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (CommError, RobotError):
            raise
        except Exception as exc:
            self.port.is_using = False
            raise CommError("io", f"{what}: {type(exc).__name__}: {exc}") from exc

    def _check(self, what: str, result: int) -> None:
        if result == self.sdk.COMM_SUCCESS:
            return
        kind = {self.sdk.COMM_RX_TIMEOUT: "timeout", self.sdk.COMM_RX_CORRUPT: "corrupt"}.get(result, "io")
        raise CommError(kind, f"{what}: {self.packets.getTxRxResult(result)}")

    def ping(self, servo_id: int) -> int:
        """The model number servo ``servo_id`` reports."""
        model, result, _ = self._call("ping", lambda: self.packets.ping(self.port, servo_id))
        self._check(f"ping id {servo_id}", result)
        return int(model)

    def _receive(self, what: str, servo_id: int, size: int) -> tuple[bytes, int]:
        """``(data, status error)`` of the next status packet from ``servo_id`` carrying ``size`` data bytes;
        packets of another id or length are dropped (counted as ``unmatched``)."""
        dxl = self.protocol == "dynamixel"
        while True:
            packet, result = self._call(
                what,
                lambda: self.packets.rxPacket(self.port, False) if dxl else self.packets.rxPacket(self.port),
            )
            self._check(what, result)
            packet = bytes(packet)
            # Dynamixel: FF FF FD 00 ID LEN_L LEN_H 55 ERR data CRC CRC; Feetech: FF FF ID LEN ERR data SUM
            reply_id, error, data = (
                (packet[4], packet[8], packet[9:-2]) if dxl else (packet[2], packet[4], packet[5:-1])
            )
            if reply_id == servo_id and len(data) == size:
                return data, error
            self.stats["unmatched"] += 1
            if self.port.isPacketTimeout():  # packets keep coming, none of them ours
                raise CommError("timeout", f"{what}: no matching reply within the timeout")

    def read(self, servo_id: int, address: int, size: int) -> tuple[bytes, int]:
        """``(bytes, status error)`` of READ."""
        what = f"read id {servo_id} @{address}"
        self._check(what, self._call(what, lambda: self.packets.readTx(self.port, servo_id, address, size)))
        return self._receive(what, servo_id, size)

    def write(self, servo_id: int, address: int, data: bytes) -> int:
        """WRITE with a status reply; returns the status error byte."""
        what = f"write id {servo_id} @{address}"
        result = self._call(
            what, lambda: self.packets.writeTxOnly(self.port, servo_id, address, len(data), list(data))
        )
        self._check(what, result)
        self.port.setPacketTimeout(11 if self.protocol == "dynamixel" else 6)  # a status packet, no data
        return self._receive(what, servo_id, 0)[1]

    def sync_read(self, address: int, size: int, ids: Sequence[int]) -> dict[int, tuple[bytes, int]]:
        """SYNC READ ``size`` bytes at ``address``: each id -> ``(bytes, status error)``."""
        ids = list(ids)
        extra = (False,) if self.protocol == "dynamixel" else ()  # Dynamixel's fast_option
        result = self._call(
            "sync read", lambda: self.packets.syncReadTx(self.port, address, size, ids, len(ids), *extra)
        )
        self._check("sync read", result)
        return {servo_id: self._receive(f"sync read: id {servo_id}", servo_id, size) for servo_id in ids}

    def sync_write(self, address: int, size: int, data: Mapping[int, bytes]) -> None:
        """SYNC WRITE (no replies)."""
        group = self.sdk.GroupSyncWrite(self.port, self.packets, address, size)
        for servo_id, chunk in data.items():
            group.addParam(servo_id, list(chunk))
        self._check("sync write", self._call("sync write", group.txPacket))


def list_ports() -> str:
    """The serial ports present, comma-separated, for error messages (``"none found"`` if none)."""
    try:
        from serial.tools import list_ports

        names = sorted(p.device for p in list_ports.comports())
    except Exception:
        names = []
    return ", ".join(names) or "none found"
