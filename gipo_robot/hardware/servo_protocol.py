"""Byte-level packets of the two servo buses this project drives, and the servos' control tables.

Pure functions, no I/O, shared by both sides of the wire: the driver
(:mod:`gipo_robot.hardware.serial_bus`) takes the control tables and register encodings from here, the
virtual servo bus (:mod:`gipo_robot.hardware.emulators.virtual_bus`) speaks the protocols with the packet
functions, and the tests check them against hand-built packets and the vendors' SDKs.

**Dynamixel Protocol 2.0** (ROBOTIS e-Manual, "DYNAMIXEL Protocol 2.0")::

    FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAM... | CRC_L CRC_H

``LEN`` counts INST + params + 2 CRC bytes. CRC-16/IBM polynomial 0x8005 (x^16 + x^15 + x^2 + 1),
initial value 0, not reflected (CRC-16/BUYPASS), over every byte from the header to the last param.
Byte stuffing: after any ``FF FF FD`` inside INST/params, an extra ``FD`` is inserted (and ``LEN``
grows) so the header never appears in a payload. A status packet has INST ``0x55`` followed by an
ERROR byte (bit 7: hardware alert, bits 0-6: an error number, see :data:`DXL_ERRORS`). The alert bit is
set in every status packet while the servo's Hardware Error Status register holds a condition
(:data:`DXL_HARDWARE_ERRORS`); the conditions in its Shutdown register also switch its torque off until a
reboot. Addresses and lengths in params are 16-bit little-endian; values are little-endian two's
complement.

**Feetech STS/SCS** (Feetech "SMS/STS memory table" and protocol manual; the Dynamixel 1.0 framing)::

    FF FF | ID | LEN | INST | PARAM... | CHECKSUM

``LEN`` counts INST + params + 1 checksum byte; ``CHECKSUM = ~(ID + LEN + INST + sum(params)) & 0xFF``.
A status packet has the ERROR byte where INST was, one bit per condition (:data:`STS_ERRORS`, the
names of the SDK's ``ERRBIT_*``); the conditions in the Unloading Condition register also switch the
servo's torque off. Addresses and lengths are 8-bit; values are little-endian (STS series) with a
*sign-magnitude* bit for signed registers.

Legend: ``J`` number of servos on the bus; ticks are encoder steps (4096 per turn for both models here).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

BROADCAST_ID = 0xFE
"""Broadcast ID: every servo executes, none replies (except to sync read, each in turn)."""

# Instructions (same numbers on both buses).
PING = 0x01
READ = 0x02
WRITE = 0x03
SYNC_READ = 0x82
SYNC_WRITE = 0x83
DXL_STATUS = 0x55
"""Instruction byte of a Dynamixel 2.0 status packet."""

INSTRUCTIONS: dict[int, str] = {
    PING: "ping",
    READ: "read",
    WRITE: "write",
    SYNC_READ: "sync_read",
    SYNC_WRITE: "sync_write",
}

# Dynamixel 2.0 error byte: bit 7 = alert (see Hardware Error Status), bits 0-6 = one error number.
DXL_ERROR_ALERT = 0x80
DXL_ERROR_RESULT_FAIL = 1
DXL_ERROR_INSTRUCTION = 2
DXL_ERROR_CRC = 3
DXL_ERROR_DATA_RANGE = 4
DXL_ERROR_DATA_LENGTH = 5
DXL_ERROR_DATA_LIMIT = 6
DXL_ERROR_ACCESS = 7
DXL_ERRORS: dict[int, str] = {
    DXL_ERROR_RESULT_FAIL: "result fail",
    DXL_ERROR_INSTRUCTION: "instruction error",
    DXL_ERROR_CRC: "CRC error",
    DXL_ERROR_DATA_RANGE: "data range error",
    DXL_ERROR_DATA_LENGTH: "data length error",
    DXL_ERROR_DATA_LIMIT: "data limit error",
    DXL_ERROR_ACCESS: "access error",
}

# Dynamixel X series Hardware Error Status (address 70): one bit per condition.
DXL_HARDWARE_ERRORS: dict[int, str] = {
    0x01: "input voltage",
    0x04: "overheating",
    0x08: "motor encoder",
    0x10: "electrical shock",
    0x20: "overload",
}

# Feetech STS status error byte: one bit per condition (scservo_sdk ERRBIT_VOLTAGE, _ANGLE, _OVERHEAT,
# _OVERELE, _OVERLOAD).
STS_ERRORS: dict[int, str] = {
    0x01: "input voltage",
    0x02: "angle sensor",
    0x04: "overheat",
    0x08: "overcurrent",
    0x20: "overload",
}

#: Protocol -> its hardware condition bits and their names (Dynamixel: the Hardware Error Status register;
#: Feetech: the status packet's error byte).
HARDWARE_ERRORS: dict[str, dict[int, str]] = {"dynamixel": DXL_HARDWARE_ERRORS, "feetech": STS_ERRORS}

#: Protocol -> the conditions that switch torque off by default (Dynamixel X Shutdown = 0x34: overheating,
#: electrical shock, overload; Feetech STS Unloading Condition = 0x2C: overheat, overcurrent, overload).
DEFAULT_TORQUE_OFF_ERRORS: dict[str, int] = {"dynamixel": 0x34, "feetech": 0x2C}


def hardware_error_names(protocol: str, bits: int) -> tuple[str, ...]:
    """The named conditions set in ``bits`` (see :data:`HARDWARE_ERRORS`); an unnamed bit as ``bit N``."""
    names = HARDWARE_ERRORS[protocol]
    return tuple(names.get(1 << k, f"bit {k}") for k in range(8) if bits & (1 << k))


def hardware_error_bits(protocol: str, names: Sequence[str]) -> int:
    """Inverse of :func:`hardware_error_names`; an unknown name lists the protocol's names."""
    by_name = {name: bit for bit, name in HARDWARE_ERRORS[protocol].items()}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown {protocol} hardware error(s) {unknown}; known: {', '.join(by_name)}")
    return sum(by_name[n] for n in set(names))


class PacketError(ValueError):
    """A byte string is not a valid packet (bad header, length or checksum)."""


@dataclasses.dataclass(frozen=True)
class Packet:
    """One decoded instruction or status packet.

    ``instruction`` is the instruction byte of an instruction packet; for a status packet it is None
    and ``error`` holds the error byte.
    """

    id: int
    instruction: int | None
    params: bytes
    error: int = 0


# --------------------------------------------------------------------------------------------------
# Dynamixel Protocol 2.0
# --------------------------------------------------------------------------------------------------
DXL_HEADER = b"\xff\xff\xfd\x00"


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def dxl_crc(data: bytes) -> int:
    """CRC-16 of a Dynamixel 2.0 packet: polynomial 0x8005, init 0, MSB first, no final xor."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def dxl_stuff(payload: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` in INST+params (the bytes after the 7-byte header).

    The window looks back into the bytes already emitted, as ROBOTIS's ``addStuffing`` does, so
    ``FF FF FD FD`` becomes ``FF FF FD FD FD``.
    """
    out = bytearray()
    for byte in payload:
        out.append(byte)
        if byte == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def dxl_unstuff(payload: bytes) -> bytes:
    """Inverse of :func:`dxl_stuff`: ``FF FF FD FD`` -> ``FF FF FD`` (other bytes pass, as a servo reads)."""
    out = bytearray()
    i = 0
    while i < len(payload):
        byte = payload[i]
        out.append(byte)
        stuffed = i + 1 < len(payload) and payload[i + 1] == 0xFD
        if byte == 0xFD and stuffed and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            i += 1  # skip the stuffed FD
        i += 1
    return bytes(out)


def _dxl_frame(servo_id: int, body: bytes) -> bytes:
    body = dxl_stuff(body)
    length = len(body) + 2
    head = DXL_HEADER + bytes([servo_id, length & 0xFF, length >> 8])
    crc = dxl_crc(head + body)
    return head + body + bytes([crc & 0xFF, crc >> 8])


def dxl_instruction(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A Dynamixel 2.0 instruction packet (header, stuffing and CRC included)."""
    _check_id(servo_id)
    return _dxl_frame(servo_id, bytes([instruction]) + bytes(params))


def dxl_status(servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """A Dynamixel 2.0 status packet: INST 0x55, the error byte, then params."""
    _check_id(servo_id)
    return _dxl_frame(servo_id, bytes([DXL_STATUS, error]) + bytes(params))


def dxl_parse(buf: bytes | bytearray) -> tuple[Packet | None, int]:
    """Find the first Dynamixel 2.0 packet in ``buf``.

    Returns:
        ``(packet, consumed)``: the packet (None when ``buf`` holds no complete packet yet) and how
        many leading bytes the caller may drop (noise before a header, plus the packet itself).

    Raises:
        PacketError: a complete packet whose CRC does not match; ``err.args[1]`` is the byte count
            to drop (the caller skips the bad packet and goes on).
    """
    start = bytes(buf).find(DXL_HEADER)
    if start < 0:
        # keep a possible partial header at the end
        keep = next((k for k in (3, 2, 1) if bytes(buf).endswith(DXL_HEADER[:k])), 0)
        return None, len(buf) - keep
    if len(buf) < start + 7:
        return None, start
    length = buf[start + 5] | (buf[start + 6] << 8)
    if length < 3:
        raise PacketError(f"Dynamixel packet length {length} < 3", start + 4)
    end = start + 7 + length
    if len(buf) < end:
        return None, start
    frame = bytes(buf[start:end])
    crc = frame[-2] | (frame[-1] << 8)
    if dxl_crc(frame[:-2]) != crc:
        raise PacketError(f"Dynamixel CRC mismatch for id {frame[4]}", end)
    body = dxl_unstuff(frame[7:-2])
    if body[0] == DXL_STATUS:
        if len(body) < 2:
            raise PacketError("Dynamixel status packet without an error byte", end)
        return Packet(frame[4], None, body[2:], error=body[1]), end
    return Packet(frame[4], body[0], body[1:]), end


# --------------------------------------------------------------------------------------------------
# Feetech STS/SCS
# --------------------------------------------------------------------------------------------------
STS_HEADER = b"\xff\xff"


def sts_checksum(body: bytes) -> int:
    """Feetech checksum: bitwise NOT of the byte sum of ID, LEN, INST/ERROR and params, low byte."""
    return ~sum(body) & 0xFF


def _sts_frame(servo_id: int, first: int, params: bytes) -> bytes:
    body = bytes([servo_id, len(params) + 2, first]) + bytes(params)
    if body[1] > 0xFF:
        raise ValueError(f"Feetech packet too long: {len(params)} params (max 253)")
    return STS_HEADER + body + bytes([sts_checksum(body)])


def sts_instruction(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A Feetech STS/SCS instruction packet."""
    _check_id(servo_id)
    return _sts_frame(servo_id, instruction, params)


def sts_status(servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """A Feetech STS/SCS status packet (the error byte sits where the instruction was)."""
    _check_id(servo_id)
    return _sts_frame(servo_id, error, params)


def sts_parse(buf: bytes | bytearray, *, status: bool = False) -> tuple[Packet | None, int]:
    """Find the first Feetech packet in ``buf``; see :func:`dxl_parse` for the return and raises.

    Args:
        buf: Received bytes.
        status: Parse status packets (the byte after LEN is the error) instead of instructions; the
            framing alone cannot tell them apart.
    """
    data = bytes(buf)
    start = data.find(STS_HEADER)
    while start >= 0 and start + 2 < len(data) and data[start + 2] == 0xFF:
        start += 1  # FF FF FF ...: the header is the last two FFs (IDs are <= 0xFE)
    if start < 0:
        return None, len(data) - (1 if data.endswith(b"\xff") else 0)
    if len(data) < start + 4:
        return None, start
    length = data[start + 3]
    if length < 2:
        raise PacketError(f"Feetech packet length {length} < 2", start + 2)
    end = start + 4 + length
    if len(data) < end:
        return None, start
    body = data[start + 2 : end - 1]
    if sts_checksum(body) != data[end - 1]:
        raise PacketError(f"Feetech checksum mismatch for id {body[0]}", end)
    if status:
        return Packet(body[0], None, body[3:], error=body[2]), end
    return Packet(body[0], body[2], body[3:]), end


def _check_id(servo_id: int) -> None:
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo id must be in 0..254, got {servo_id}")


# --------------------------------------------------------------------------------------------------
# Instruction parameters (the part that differs: 16-bit addresses on Dynamixel 2.0, 8-bit on Feetech)
# --------------------------------------------------------------------------------------------------
def read_params(protocol: str, address: int, length: int) -> bytes:
    """Params of READ: start address and byte count."""
    return _addr(protocol, address) + _addr(protocol, length)


def write_params(protocol: str, address: int, data: bytes) -> bytes:
    """Params of WRITE: start address then the bytes to write."""
    return _addr(protocol, address) + bytes(data)


def sync_read_params(protocol: str, address: int, length: int, ids: Sequence[int]) -> bytes:
    """Params of SYNC READ: start address, byte count, then the IDs that answer, in answer order."""
    return _addr(protocol, address) + _addr(protocol, length) + bytes(ids)


def sync_write_params(protocol: str, address: int, length: int, data: Mapping[int, bytes]) -> bytes:
    """Params of SYNC WRITE: start address, byte count, then ``id, data...`` for each servo."""
    out = bytearray(_addr(protocol, address) + _addr(protocol, length))
    for servo_id, chunk in data.items():
        if len(chunk) != length:
            raise ValueError(f"sync write to id {servo_id}: {len(chunk)} bytes, expected {length}")
        out += bytes([servo_id]) + bytes(chunk)
    return bytes(out)


def split_address_length(protocol: str, params: bytes) -> tuple[int, int, bytes]:
    """Inverse of the first two fields of READ/SYNC READ/SYNC WRITE: ``(address, length, rest)``."""
    n = _ADDR_BYTES[protocol]
    if len(params) < 2 * n:
        raise PacketError(f"{protocol}: {len(params)} param bytes, need at least {2 * n}")
    address = int.from_bytes(params[:n], "little")
    length = int.from_bytes(params[n : 2 * n], "little")
    return address, length, params[2 * n :]


_ADDR_BYTES = {"dynamixel": 2, "feetech": 1}


def _addr(protocol: str, value: int) -> bytes:
    if protocol not in _ADDR_BYTES:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(_ADDR_BYTES)}")
    return int(value).to_bytes(_ADDR_BYTES[protocol], "little")


# --------------------------------------------------------------------------------------------------
# Register values
# --------------------------------------------------------------------------------------------------
def encode_value(value: int, size: int, sign_bit: int | None = None) -> bytes:
    """An integer register value as ``size`` little-endian bytes.

    Args:
        value: The value.
        size: Register width in bytes (1, 2 or 4).
        sign_bit: None for two's complement (Dynamixel; unsigned values too); else the bit that
            holds the sign of a sign-magnitude value (Feetech: 15 for positions/velocities, 11 for
            the homing offset).

    Raises:
        ValueError: the value does not fit.
    """
    value = int(value)
    if sign_bit is not None:
        magnitude = abs(value)
        if magnitude >= 1 << sign_bit:
            raise ValueError(f"{value} does not fit a sign-magnitude value with the sign at bit {sign_bit}")
        raw = magnitude | ((1 << sign_bit) if value < 0 else 0)
        return raw.to_bytes(size, "little")
    if not -(1 << (8 * size - 1)) <= value < (1 << (8 * size)):
        raise ValueError(f"{value} does not fit {size} byte(s)")
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def decode_value(data: bytes, sign_bit: int | None = None, signed: bool = False) -> int:
    """Inverse of :func:`encode_value` (``signed`` selects two's complement when ``sign_bit`` is None)."""
    raw = int.from_bytes(bytes(data), "little")
    if sign_bit is not None:
        magnitude = raw & ((1 << sign_bit) - 1)
        return -magnitude if raw & (1 << sign_bit) else magnitude
    if signed and raw & (1 << (8 * len(data) - 1)):
        raw -= 1 << (8 * len(data))
    return raw


# --------------------------------------------------------------------------------------------------
# Control tables
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Register:
    """One control-table entry."""

    address: int
    size: int
    """Bytes."""
    signed: bool = False
    sign_bit: int | None = None
    """Feetech sign-magnitude bit; None for two's complement/unsigned."""
    eeprom: bool = False
    """Non-volatile area (Dynamixel refuses writes there while torque is on)."""

    def encode(self, value: int) -> bytes:
        """The value as this register's bytes."""
        return encode_value(value, self.size, self.sign_bit)

    def decode(self, data: bytes) -> int:
        """This register's bytes as an integer."""
        return decode_value(data, self.sign_bit, self.signed)


@dataclasses.dataclass(frozen=True)
class ServoModel:
    """What the driver and the emulator need to know about one servo model."""

    name: str
    protocol: str
    """``"dynamixel"`` or ``"feetech"``."""
    model_number: int
    """What the servo reports at the Model Number register (and, on Dynamixel, to PING)."""
    resolution: int
    """Encoder ticks per turn."""
    velocity_unit: float
    """Present Velocity register unit, rad/s per count."""
    max_velocity: float
    """No-load speed at nominal voltage, rad/s (the emulator's profile speed)."""
    homing_sign: int
    """Present = raw + homing_sign * Homing Offset (+1 Dynamixel, -1 Feetech, as LeRobot notes)."""
    homing_limit: int
    """Largest |Homing Offset| the register accepts, ticks."""
    registers: dict[str, Register]

    @property
    def rad_per_tick(self) -> float:
        """One encoder tick in rad."""
        return 2.0 * math.pi / self.resolution

    def register(self, name: str) -> Register:
        """The register called ``name``; an unknown name lists the known ones."""
        if name not in self.registers:
            raise KeyError(f"{self.name} has no register {name!r}; known: {', '.join(self.registers)}")
        return self.registers[name]


# XL330-M288-T, ROBOTIS e-Manual "XL330-M288-T" control table (Protocol 2.0, X series layout).
XL330_M288 = ServoModel(
    name="xl330-m288",
    protocol="dynamixel",
    model_number=1200,
    resolution=4096,
    velocity_unit=0.229 * 2.0 * math.pi / 60.0,  # 0.229 rpm per count
    max_velocity=103.0 * 2.0 * math.pi / 60.0,  # 103 rpm at 5 V, no load
    homing_sign=+1,
    homing_limit=1_044_479,
    registers={
        "model_number": Register(0, 2, eeprom=True),
        "firmware_version": Register(6, 1, eeprom=True),
        "id": Register(7, 1, eeprom=True),
        "baud_rate": Register(8, 1, eeprom=True),
        "return_delay_time": Register(9, 1, eeprom=True),
        "drive_mode": Register(10, 1, eeprom=True),
        "operating_mode": Register(11, 1, eeprom=True),
        "homing_offset": Register(20, 4, signed=True, eeprom=True),
        "max_position_limit": Register(48, 4, eeprom=True),
        "min_position_limit": Register(52, 4, eeprom=True),
        "shutdown": Register(63, 1, eeprom=True),
        "torque_enable": Register(64, 1),
        "hardware_error_status": Register(70, 1),
        "goal_position": Register(116, 4, signed=True),
        "moving": Register(122, 1),
        "present_velocity": Register(128, 4, signed=True),
        "present_position": Register(132, 4, signed=True),
        "present_temperature": Register(146, 1),
    },
)

# STS3215, Feetech "SMS_STS" memory table (as LeRobot's feetech tables list it).
STS3215 = ServoModel(
    name="sts3215",
    protocol="feetech",
    model_number=777,
    resolution=4096,
    velocity_unit=2.0 * math.pi / 4096,  # steps/s
    max_velocity=2.0 * math.pi / 6.0 / 0.222,  # 0.222 s per 60 deg at 7.4 V, no load
    homing_sign=-1,
    homing_limit=2047,
    registers={
        "firmware_major_version": Register(0, 1, eeprom=True),
        "firmware_minor_version": Register(1, 1, eeprom=True),
        "model_number": Register(3, 2, eeprom=True),
        "id": Register(5, 1, eeprom=True),
        "baud_rate": Register(6, 1, eeprom=True),
        "return_delay_time": Register(7, 1, eeprom=True),
        "min_position_limit": Register(9, 2, eeprom=True),
        "max_position_limit": Register(11, 2, eeprom=True),
        "unloading_condition": Register(19, 1, eeprom=True),
        "homing_offset": Register(31, 2, sign_bit=11, eeprom=True),
        "operating_mode": Register(33, 1, eeprom=True),
        "torque_enable": Register(40, 1),
        "acceleration": Register(41, 1),
        "goal_position": Register(42, 2, sign_bit=15),
        "goal_velocity": Register(46, 2, sign_bit=15),
        "lock": Register(55, 1),
        "present_position": Register(56, 2, sign_bit=15),
        "present_velocity": Register(58, 2, sign_bit=15),
        "present_temperature": Register(63, 1),
        "moving": Register(66, 1),
    },
)

# XM430-W350-T, XL430-W250-T and XL330-M077-T (the Koch arms' other servos): the same X-series addresses
# as the XL330-M288 for every register used here; no-load speeds at 12 V, 12 V and 5 V.
RPM = 2.0 * math.pi / 60.0
XM430_W350 = dataclasses.replace(XL330_M288, name="xm430-w350", model_number=1020, max_velocity=46.0 * RPM)
XL430_W250 = dataclasses.replace(XL330_M288, name="xl430-w250", model_number=1060, max_velocity=57.0 * RPM)
XL330_M077 = dataclasses.replace(XL330_M288, name="xl330-m077", model_number=1190, max_velocity=383.0 * RPM)

#: Model name -> model. Each protocol's default model is listed in :data:`DEFAULT_MODELS`.
MODELS: dict[str, ServoModel] = {m.name: m for m in (XL330_M288, XM430_W350, XL430_W250, XL330_M077, STS3215)}
DEFAULT_MODELS: dict[str, str] = {"dynamixel": XL330_M288.name, "feetech": STS3215.name}
PROTOCOLS = tuple(DEFAULT_MODELS)


def model_named(name: str) -> ServoModel:
    """The :class:`ServoModel` called ``name``; an unknown name lists the known ones."""
    if name not in MODELS:
        raise KeyError(f"unknown servo model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def model_name_for_number(number: int) -> str:
    """A readable name for a reported model number (for error messages)."""
    known = {m.model_number: m.name for m in MODELS.values()}
    return known.get(number) or f"unknown model {number}"


def frame_instruction(protocol: str, servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """An instruction packet of ``protocol``."""
    return (dxl_instruction if protocol == "dynamixel" else sts_instruction)(servo_id, instruction, params)


def frame_status(protocol: str, servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """A status packet of ``protocol``."""
    return (dxl_status if protocol == "dynamixel" else sts_status)(servo_id, error, params)


def parse_instruction(protocol: str, buf: bytes | bytearray) -> tuple[Packet | None, int]:
    """The first instruction packet in ``buf`` (see :func:`dxl_parse`)."""
    return dxl_parse(buf) if protocol == "dynamixel" else sts_parse(buf)


def parse_status(protocol: str, buf: bytes | bytearray) -> tuple[Packet | None, int]:
    """The first status packet in ``buf`` (see :func:`dxl_parse`)."""
    return dxl_parse(buf) if protocol == "dynamixel" else sts_parse(buf, status=True)


def describe_error(protocol: str, error: int) -> str:
    """The status error byte in words, e.g. ``"data limit error"`` or ``"overheat, overload"``."""
    if error == 0:
        return "no error"
    if protocol == "dynamixel":
        words = [DXL_ERRORS.get(error & 0x7F, f"error {error & 0x7F}")] if error & 0x7F else []
        if error & DXL_ERROR_ALERT:
            words.append("hardware alert")
        return ", ".join(words)
    return ", ".join(name for bit, name in STS_ERRORS.items() if error & bit) or f"error 0x{error:02x}"
