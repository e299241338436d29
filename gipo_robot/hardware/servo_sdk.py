"""The vendor SDKs underneath :class:`~gipo_robot.hardware.serial_bus.SerialArm`: bytes in, bytes out.

ROBOTIS ``dynamixel-sdk`` (Protocol 2.0) and Feetech ``feetech-servo-sdk`` (module ``scservo_sdk``, STS)
are the code LeRobot drives the same arms with. :class:`SdkBus` wraps either one behind five calls
(ping, read, write, sync read, sync write) and one exception type, :class:`CommError`, for every failed
transaction; the retry policy is the arm's. The SDKs' rough edges are worked around here, not patched in
place:

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

import contextlib
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
    """Ping/read/write/sync read/sync write through the vendor SDK, raising :class:`CommError`."""

    def __init__(self, protocol: str, port: str, baudrate: int, timeout_s: float):
        self.protocol, self.port_name, self.baudrate = protocol, port, baudrate
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

    def recover(self) -> None:
        """After a failure: release the SDK's busy flag, let late bytes land, drop them."""
        self.port.is_using = False
        time.sleep(0.001)
        with contextlib.suppress(Exception):  # the port is gone: the next attempt reports it
            self.port.ser.reset_input_buffer()

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

    def read(self, servo_id: int, address: int, size: int) -> tuple[bytes, int]:
        """``(bytes, status error)`` of READ."""
        data, result, error = self._call(
            "read", lambda: self.packets.readTxRx(self.port, servo_id, address, size)
        )
        self._check(f"read id {servo_id} @{address}", result)
        if len(data) != size:
            raise CommError("corrupt", f"read id {servo_id} @{address}: {len(data)} bytes, expected {size}")
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
                raise CommError(
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


def list_ports() -> str:
    """The serial ports present, comma-separated, for error messages (``"none found"`` if none)."""
    try:
        from serial.tools import list_ports

        names = sorted(p.device for p in list_ports.comports())
    except Exception:
        names = []
    return ", ".join(names) or "none found"
