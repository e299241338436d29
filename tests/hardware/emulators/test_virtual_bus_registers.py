"""The virtual servos answer the registers LeRobot's driver touches beyond this project's own driver: the rest
of the STS3215 / X-series control table (factory values, read back what was written), Feetech's Status
register and Phase bit 4. Checked with the vendor's SDK as the client, as LeRobot's driver uses it."""

from __future__ import annotations

import pytest

from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from tests.hardware.emulators.test_virtual_bus import _answered, _client

pytest.importorskip("dynamixel_sdk")
pytest.importorskip("scservo_sdk")


def test_feetech_control_table_beyond_the_drivers_registers():
    with VirtualServoBus("feetech") as bus:
        sdk, port, ph = _client("feetech", bus.port)
        try:

            def read(size, address, servo_id=1):
                call = getattr(ph, f"read{size}ByteTxRx")
                value, comm, error = _answered(sdk, lambda: call(port, servo_id, address))
                assert (comm, error) == (sdk.COMM_SUCCESS, 0)
                return value

            def write(size, address, value, servo_id=1):
                call = getattr(ph, f"write{size}ByteTxRx")
                assert _answered(sdk, lambda: call(port, servo_id, address, value)) == (sdk.COMM_SUCCESS, 0)

            # firmware 3.10 (LeRobot checks every servo reports the same), return delay 250 x 2 us,
            # P 32 / D 32 / I 0, max torque 1000 (100.0 %), 12.0 V
            assert (read(1, 0), read(1, 1)) == (3, 10)
            assert [read(1, 7), read(1, 21), read(1, 22), read(1, 23), read(2, 16), read(1, 62)] == [
                250, 32, 32, 0, 1000, 120,
            ]  # fmt: skip
            # Maximum_Acceleration lives at 85, past the registers this project's driver knows: the table
            # used to end at 66, so the read came back empty and LeRobot's read failed.
            write(1, 85, 254)
            assert read(1, 85) == 254
            write(2, 28, 250)  # Protection_Current, as LeRobot writes it for a gripper
            assert read(2, 28) == 250
            assert read(1, 65) == 0  # Status: no condition
            bus.servo_error(2, "overload")
            # the overload bit, in the Status register as in the error byte of every status packet
            value, comm, error = _answered(sdk, lambda: ph.read1ByteTxRx(port, 2, 65))
            assert (value, comm, error) == (0x20, sdk.COMM_SUCCESS, 0x20)
            assert read(1, 65, servo_id=1) == 0
        finally:
            port.closePort()


def test_feetech_phase_bit_4_turns_wrapping_off():
    # Servo 1 at q = -0.2 rad: raw = 2048 + 120 (its horn's mount offset) - round(0.2 / (2 pi / 4096)) =
    # 2168 - 130 = 2038. With the largest homing offset, 2047, present = 2038 - 2047 = -9 ticks, which
    # one-turn feedback wraps to 4087 and multi-turn feedback (Phase bit 4) reports as -9 (sign-magnitude
    # 0x8009). To a tick or two: the limp arm settles.
    with VirtualServoBus("feetech") as bus:
        sdk, port, ph = _client("feetech", bus.port)
        try:
            assert _answered(sdk, lambda: ph.write2ByteTxRx(port, 1, 31, 2047))[0] == sdk.COMM_SUCCESS
            bus.move_by_hand([-0.2, 0, 0, 0, 0, 0])
            value, comm, _ = _answered(sdk, lambda: ph.read2ByteTxRx(port, 1, 56))
            assert comm == sdk.COMM_SUCCESS and value == pytest.approx(4087, abs=2)
            assert _answered(sdk, lambda: ph.write1ByteTxRx(port, 1, 18, 0x10))[0] == sdk.COMM_SUCCESS
            value, comm, _ = _answered(sdk, lambda: ph.read2ByteTxRx(port, 1, 56))
            assert comm == sdk.COMM_SUCCESS and value & 0x8000 and value & 0x7FFF == pytest.approx(9, abs=2)
        finally:
            port.closePort()


def test_dynamixel_registers_lerobot_writes_read_back():
    with VirtualServoBus("dynamixel") as bus:
        sdk, port, ph = _client("dynamixel", bus.port)
        try:
            value, comm, error = _answered(sdk, lambda: ph.read2ByteTxRx(port, 3, 84))  # Position_P_Gain
            assert (value, comm, error) == (400, sdk.COMM_SUCCESS, 0)
            assert _answered(sdk, lambda: ph.write2ByteTxRx(port, 3, 84, 1500)) == (sdk.COMM_SUCCESS, 0)
            assert _answered(sdk, lambda: ph.read2ByteTxRx(port, 3, 84))[0] == 1500
            assert _answered(sdk, lambda: ph.read1ByteTxRx(port, 3, 9))[0] == 250  # Return_Delay_Time
        finally:
            port.closePort()


def test_dynamixel_servos_of_several_models_and_the_multi_turn_modes():
    # A Koch follower's bus: two XL430-W250 (model 1060), then four XL330-M288 (1200).
    koch = ("xl430-w250", "xl430-w250") + ("xl330-m288",) * 4
    with VirtualServoBus("dynamixel", models=koch) as bus:
        sdk, port, ph = _client("dynamixel", bus.port)
        try:
            numbers = [_answered(sdk, lambda i=i: ph.ping(port, i))[0] for i in range(1, 7)]
            assert numbers == [1060, 1060, 1200, 1200, 1200, 1200]
            assert _answered(sdk, lambda: ph.read1ByteTxRx(port, 1, 11))[0] == 3  # factory: position mode
            write = ph.write4ByteTxRx
            assert _answered(sdk, lambda: write(port, 1, 48, 3000)) == (sdk.COMM_SUCCESS, 0)  # max limit
            # position mode keeps goals within the limits; extended position (4, LeRobot's Koch joints)
            # is multi-turn and ignores them
            assert _answered(sdk, lambda: write(port, 1, 116, 3500))[1] == 6  # data limit error
            assert _answered(sdk, lambda: ph.write1ByteTxRx(port, 1, 11, 4)) == (sdk.COMM_SUCCESS, 0)
            assert _answered(sdk, lambda: write(port, 1, 116, 3500)) == (sdk.COMM_SUCCESS, 0)
        finally:
            port.closePort()
    with pytest.raises(ValueError, match=r"VirtualArmConfig\.models \['sts3215'\] do not speak dynamixel"):
        VirtualServoBus("dynamixel", models=("sts3215", *koch[1:]))
