"""Packet codecs against hand-built packets (the manuals' examples) and the vendors' SDK packet builders."""

from __future__ import annotations

import random

import pytest

from gipo_robot.hardware import servo_protocol as sp

dxl_sdk = pytest.importorskip("dynamixel_sdk")
scs_sdk = pytest.importorskip("scservo_sdk")


class _CapturePort:
    """Enough of an SDK PortHandler for ``txPacket``: records what would go on the wire."""

    def __init__(self) -> None:
        self.is_using = False
        self.sent = b""

    def clearPort(self) -> None:
        pass

    def writePort(self, packet: list[int]) -> int:
        self.sent = bytes(packet)
        return len(packet)

    def setPacketTimeout(self, packet_length: int) -> None:
        pass


def _sdk_bytes(handler, packet: list[int]) -> bytes:
    port = _CapturePort()
    assert handler.txPacket(port, packet) == 0
    return port.sent


# ------------------------------------------------------------------------------------------- Dynamixel
def test_dxl_ping_matches_the_emanual_example():
    # ROBOTIS e-Manual, Protocol 2.0, "Ping" example: ID 1 -> FF FF FD 00 01 03 00 01 19 4E
    # (LEN = 3: INST + 2 CRC bytes; CRC-16 over FF FF FD 00 01 03 00 01 = 0x4E19, sent low byte first).
    assert sp.dxl_instruction(1, sp.PING) == bytes.fromhex("FF FF FD 00 01 03 00 01 19 4E")


def test_dxl_status_example_parses_to_model_and_firmware():
    # e-Manual "Ping" status example: ID 1 replies model number 0x0406 (1030) and firmware 0x26.
    packet, consumed = sp.dxl_parse(bytes.fromhex("FF FF FD 00 01 07 00 55 00 06 04 26 65 5D"))
    assert consumed == 14
    assert packet == sp.Packet(id=1, instruction=None, params=bytes([0x06, 0x04, 0x26]), error=0)
    assert sp.decode_value(packet.params[:2]) == 1030


def test_dxl_crc_equals_the_sdk_table_crc_on_random_bytes():
    handler = dxl_sdk.PacketHandler(2.0)
    rng = random.Random(0)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        assert sp.dxl_crc(data) == handler.updateCRC(0, list(data), len(data))


def test_dxl_byte_stuffing_by_hand_and_round_trip():
    # WRITE to id 1 at address 116 (0x74) of FF FF FD 00: the FF FF FD inside the params gets an extra FD.
    params = sp.write_params("dynamixel", 116, bytes([0xFF, 0xFF, 0xFD, 0x00]))
    frame = sp.dxl_instruction(1, sp.WRITE, params)
    # body = INST 03, addr 74 00, data FF FF FD [FD] 00 -> 8 bytes + 2 CRC -> LEN = 10
    assert frame[:8] == bytes.fromhex("FF FF FD 00 01 0A 00 03")
    assert frame[8:15] == bytes.fromhex("74 00 FF FF FD FD 00")
    packet, consumed = sp.dxl_parse(frame)
    assert consumed == len(frame)
    assert packet == sp.Packet(1, sp.WRITE, params)


def _dxl_sdk_sent(call) -> bytes:
    """The bytes a ``dynamixel_sdk`` call puts on the wire (its reply wait is cut short)."""
    handler, port = dxl_sdk.PacketHandler(2.0), _CapturePort()

    def send_only(p, txpacket):
        handler.txPacket(p, txpacket)
        return None, 0, 0

    handler.txRxPacket = send_only
    call(handler, port)
    return port.sent


def test_dxl_read_and_write_packets_equal_the_sdk_ones():
    # READ present position (132, 4 bytes) from id 3
    sent = _dxl_sdk_sent(lambda h, p: h.readTx(p, 3, 132, 4))
    assert sent == sp.dxl_instruction(3, sp.READ, sp.read_params("dynamixel", 132, 4))
    # WRITE goal position 0x00FFFFFD to id 2 (bytes FD FF FF 00: no FF FF FD run, nothing to stuff)
    data = bytes([0xFD, 0xFF, 0xFF, 0x00])
    sent = _dxl_sdk_sent(lambda h, p: h.writeTxRx(p, 2, 116, 4, list(data)))
    assert sent == sp.dxl_instruction(2, sp.WRITE, sp.write_params("dynamixel", 116, data))


def test_dxl_sdk_skips_stuffing_that_grows_a_packet_and_we_read_it_as_a_servo_does():
    # dynamixel-sdk 4.1.0's txPacket drops the list addStuffing returns when stuffing makes the packet
    # longer, so FF FF FD 01 in the params goes out unstuffed (LEN 9). A servo unstuffs only FF FF FD FD
    # and checks the CRC over the bytes as sent, so it still reads the right WRITE; our parser agrees.
    data = bytes([0xFF, 0xFF, 0xFD, 0x01])
    sent = _dxl_sdk_sent(lambda h, p: h.writeTxRx(p, 2, 116, 4, list(data)))
    ours = sp.dxl_instruction(2, sp.WRITE, sp.write_params("dynamixel", 116, data))
    assert sent[5] == 9 and ours[5] == 10  # LEN: INST + 2 addr + 4 data + 2 CRC (+1 stuffed FD)
    assert sp.dxl_parse(sent)[0] == sp.dxl_parse(ours)[0] == sp.Packet(2, sp.WRITE, bytes([116, 0]) + data)


def test_dxl_sync_read_and_sync_write_equal_the_sdk_group_packets():
    handler = dxl_sdk.PacketHandler(2.0)
    port = _CapturePort()
    group = dxl_sdk.GroupSyncRead(port, handler, 128, 8)
    for i in (1, 2, 3):
        group.addParam(i)
    group.txPacket()
    assert port.sent == sp.dxl_instruction(
        sp.BROADCAST_ID, sp.SYNC_READ, sp.sync_read_params("dynamixel", 128, 8, [1, 2, 3])
    )
    port = _CapturePort()
    writes = {1: sp.encode_value(2048, 4), 2: sp.encode_value(-5, 4)}
    group = dxl_sdk.GroupSyncWrite(port, handler, 116, 4)
    for i, data in writes.items():
        group.addParam(i, list(data))
    group.txPacket()
    assert port.sent == sp.dxl_instruction(
        sp.BROADCAST_ID, sp.SYNC_WRITE, sp.sync_write_params("dynamixel", 116, 4, writes)
    )


def test_dxl_sdk_accepts_our_status_packets_and_rejects_a_bad_crc():
    handler = dxl_sdk.PacketHandler(2.0)

    class FeedPort(_CapturePort):
        def __init__(self, data: bytes):
            super().__init__()
            self.data = bytearray(data)

        def readPort(self, n):
            out, self.data[:n] = bytes(self.data[:n]), b""
            return out

        def isPacketTimeout(self):
            return True

    reply = sp.dxl_status(4, 0, sp.encode_value(-1234, 4))
    data, result, _ = handler.readRx(FeedPort(reply), 4, 4)
    assert result == dxl_sdk.COMM_SUCCESS
    assert sp.decode_value(bytes(data), signed=True) == -1234
    bad = reply[:-1] + bytes([reply[-1] ^ 1])
    assert handler.readRx(FeedPort(bad), 4, 4)[1] == dxl_sdk.COMM_RX_CORRUPT


# ------------------------------------------------------------------------------------------- Feetech
def test_sts_read_packet_by_hand():
    # READ id 1, address 56 (0x38), 2 bytes: FF FF 01 04 02 38 02 CHK,
    # CHK = ~(0x01 + 0x04 + 0x02 + 0x38 + 0x02) & 0xFF = ~0x41 & 0xFF = 0xBE.
    assert sp.sts_instruction(1, sp.READ, sp.read_params("feetech", 56, 2)) == bytes.fromhex(
        "FF FF 01 04 02 38 02 BE"
    )


def test_sts_status_by_hand():
    # id 1 answers position 2048 (00 08), no error: FF FF 01 04 00 00 08 CHK,
    # CHK = ~(1 + 4 + 0 + 0 + 8) & 0xFF = ~13 & 0xFF = 0xF2.
    frame = sp.sts_status(1, 0, bytes([0x00, 0x08]))
    assert frame == bytes.fromhex("FF FF 01 04 00 00 08 F2")
    packet, consumed = sp.sts_parse(b"\x00\x13" + frame, status=True)  # noise before the header is skipped
    assert consumed == 2 + 8
    assert packet == sp.Packet(1, None, bytes([0x00, 0x08]), 0)


def test_sts_packets_equal_the_sdk_ones():
    handler = scs_sdk.PacketHandler(0)
    # ping id 7: FF FF 07 02 01 CHK with CHK = ~(7 + 2 + 1) & 0xFF = 0xF5
    assert (
        _sdk_bytes(handler, [0, 0, 7, 2, 1, 0])
        == sp.sts_instruction(7, sp.PING)
        == bytes.fromhex("FFFF070201F5")
    )
    port = _CapturePort()
    group = scs_sdk.GroupSyncRead(port, handler, 56, 4)
    for i in (1, 2, 3, 4, 5, 6):
        group.addParam(i)
    group.txPacket()
    assert port.sent == sp.sts_instruction(
        sp.BROADCAST_ID, sp.SYNC_READ, sp.sync_read_params("feetech", 56, 4, [1, 2, 3, 4, 5, 6])
    )
    port = _CapturePort()
    writes = {1: sp.encode_value(2048, 2, 15), 2: sp.encode_value(-7, 2, 15)}
    group = scs_sdk.GroupSyncWrite(port, handler, 42, 2)
    for i, data in writes.items():
        group.addParam(i, list(data))
    group.txPacket()
    assert port.sent == sp.sts_instruction(
        sp.BROADCAST_ID, sp.SYNC_WRITE, sp.sync_write_params("feetech", 42, 2, writes)
    )


def test_parsers_report_bad_checksums_partial_packets_and_noise():
    frame = sp.sts_status(2, 0, b"\x01\x02")
    with pytest.raises(sp.PacketError) as err:
        sp.sts_parse(frame[:-1] + bytes([frame[-1] ^ 0xFF]), status=True)
    assert err.value.args[1] == len(frame)  # the caller drops exactly the bad packet
    assert sp.sts_parse(frame[:5], status=True) == (None, 0)  # incomplete: keep everything
    dxl = sp.dxl_status(2)
    assert sp.dxl_parse(dxl[:9]) == (None, 0)
    assert sp.dxl_parse(b"\x01\x02\x03\xff") == (None, 3)  # no header: drop all but a possible FF
    with pytest.raises(sp.PacketError, match="CRC"):
        sp.dxl_parse(dxl[:-2] + b"\x00\x00")


# ------------------------------------------------------------------------------------------- values
def test_register_values_by_hand():
    # Feetech sign-magnitude: -5 at bit 15 -> 0x8005 -> bytes 05 80; homing offset -300 at bit 11 ->
    # 300 | 0x800 = 0x092C -> 2C 09.
    assert sp.encode_value(-5, 2, 15) == bytes([0x05, 0x80])
    assert sp.decode_value(bytes([0x05, 0x80]), 15) == -5
    assert sp.encode_value(-300, 2, 11) == bytes([0x2C, 0x09])
    assert sp.STS3215.register("homing_offset").decode(bytes([0x2C, 0x09])) == -300
    # Dynamixel two's complement: -1 in 4 bytes -> FF FF FF FF; -1234 = 0xFFFFFB2E.
    assert sp.encode_value(-1, 4) == b"\xff\xff\xff\xff"
    assert sp.XL330_M288.register("present_position").decode(bytes.fromhex("2EFBFFFF")) == -1234
    with pytest.raises(ValueError, match="sign-magnitude"):
        sp.encode_value(2048, 2, 11)  # 11 magnitude bits hold at most 2047


def test_control_tables_and_errors():
    assert (sp.STS3215.model_number, sp.STS3215.register("present_position").address) == (777, 56)
    assert (sp.XL330_M288.model_number, sp.XL330_M288.register("goal_position").address) == (1200, 116)
    with pytest.raises(KeyError, match="known:"):
        sp.model_named("mx-28")
    assert sp.describe_error("dynamixel", 0x80 | sp.DXL_ERROR_ACCESS) == "access error, hardware alert"
    assert sp.describe_error("feetech", 0x24) == "overheat, overload"


def test_hardware_error_bits_by_name_per_vendor():
    # Dynamixel X Hardware Error Status: bit 0 input voltage, 2 overheating, 3 motor encoder, 4 electrical
    # shock, 5 overload; Feetech STS error byte: bit 0 input voltage, 1 angle sensor, 2 overheat,
    # 3 overcurrent, 5 overload (scservo_sdk's ERRBIT_* values)
    assert sp.hardware_error_names("dynamixel", 0x24) == ("overheating", "overload")
    assert sp.hardware_error_names("dynamixel", 0x18) == ("motor encoder", "electrical shock")
    assert sp.hardware_error_names("feetech", 0x0A) == ("angle sensor", "overcurrent")
    assert sp.hardware_error_names("feetech", 0x40) == ("bit 6",)
    assert sp.hardware_error_bits("feetech", ["overload", "input voltage"]) == 0x21
    assert sp.hardware_error_bits("dynamixel", ["overload"]) == 0x20
    with pytest.raises(ValueError, match="known: input voltage, overheating, motor encoder"):
        sp.hardware_error_bits("dynamixel", ["overheat"])
    scs = pytest.importorskip("scservo_sdk")
    assert sp.hardware_error_bits("feetech", ["input voltage", "angle sensor", "overheat"]) == (
        scs.ERRBIT_VOLTAGE | scs.ERRBIT_ANGLE | scs.ERRBIT_OVERHEAT
    )
    assert sp.hardware_error_bits("feetech", ["overcurrent", "overload"]) == (
        scs.ERRBIT_OVERELE | scs.ERRBIT_OVERLOAD
    )
