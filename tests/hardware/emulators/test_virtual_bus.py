"""The virtual servo bus speaks each protocol on a real pty, checked with the vendors' SDKs as the client."""

from __future__ import annotations

import threading

import pytest

from gipo_robot.hardware import servo_protocol as sp
from gipo_robot.hardware.emulators.virtual_bus import FaultConfig, VirtualArmConfig, VirtualServoBus, serve

dxl_sdk = pytest.importorskip("dynamixel_sdk")
scs_sdk = pytest.importorskip("scservo_sdk")
SDK = {"dynamixel": dxl_sdk, "feetech": scs_sdk}


def _client(protocol: str, port_name: str):
    sdk = SDK[protocol]
    port = sdk.PortHandler(port_name)
    assert port.openPort()
    return sdk, port, sdk.PacketHandler(2.0 if protocol == "dynamixel" else 0)


def _answered(sdk, call, tries: int = 10):
    """``call()`` again while it times out: the emulator may be descheduled on a loaded machine, and the
    SDKs wait only ~34 ms. Any other result (success, corrupt) is returned at once."""
    for _ in range(tries):
        result = call()
        code = result[1] if isinstance(result, tuple) else result
        if code != sdk.COMM_RX_TIMEOUT:
            return result
    return result


@pytest.mark.parametrize("protocol", ["feetech", "dynamixel"])
def test_ping_read_and_sync_read_answer_like_the_servos(protocol):
    model = sp.model_named(sp.DEFAULT_MODELS[protocol])
    with VirtualServoBus(protocol) as bus:
        sdk, port, ph = _client(protocol, bus.port)
        try:
            for servo_id in range(1, 7):
                answer = _answered(sdk, lambda i=servo_id: ph.ping(port, i))
                assert answer[:2] == (model.model_number, sdk.COMM_SUCCESS)
            assert ph.ping(port, 9)[1] == sdk.COMM_RX_TIMEOUT  # no servo 9 on this bus: silence
            reg = model.register("present_position")
            group = sdk.GroupSyncRead(port, ph, reg.address, reg.size)
            for servo_id in range(1, 7):
                group.addParam(servo_id)
            assert _answered(sdk, group.txRxPacket) == sdk.COMM_SUCCESS
            # uncalibrated, at rest in the zero pose: each servo reads 2048 + its horn's mount offset
            # (120, -85, 200, -160, 45, -30), to within a tick or two of settling under gravity
            ticks = [reg.decode(bytes(group.data_dict[i])) for i in range(1, 7)]
            assert ticks == pytest.approx([2168, 1963, 2248, 1888, 2093, 2018], abs=3)
        finally:
            port.closePort()


def test_dynamixel_refuses_eeprom_writes_with_torque_on_and_goals_past_the_limits():
    with VirtualServoBus("dynamixel") as bus:
        sdk, port, ph = _client("dynamixel", bus.port)
        try:

            def write(size, address, value):
                call = getattr(ph, f"write{size}ByteTxRx")
                return _answered(sdk, lambda: call(port, 1, address, value))

            # torque off: EEPROM (max position limit @48) is writable
            assert write(4, 48, 3000) == (sdk.COMM_SUCCESS, 0)
            assert write(1, 64, 1) == (sdk.COMM_SUCCESS, 0)  # torque on
            assert write(4, 20, 10)[1] == sp.DXL_ERROR_ACCESS  # homing offset: refused
            assert write(4, 116, 3500)[1] == sp.DXL_ERROR_DATA_LIMIT  # 3500 > 3000
            assert write(4, 132, 0)[1] == sp.DXL_ERROR_ACCESS  # present position: read-only
            assert write(4, 116, 2900) == (sdk.COMM_SUCCESS, 0)
        finally:
            port.closePort()
        # goal 2900 ticks, servo 1 mounted +120 ticks off, homing 0:
        # q = (2900 - 2048 - 120) * 2 pi / 4096 = 732 * 0.0015340 = 1.1229 rad
        assert bus.state()["goal_q"][0] == pytest.approx(1.1229, abs=1e-3)


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ({"corrupt_prob": 1.0}, "COMM_RX_CORRUPT"),
        ({"drop_prob": 1.0}, "COMM_RX_TIMEOUT"),
        ({"disconnect_after": 1}, "COMM_RX_TIMEOUT"),  # the first ping is answered, then silence
    ],
)
def test_faults_break_replies_as_configured(faults, expected):
    with VirtualServoBus("feetech", faults=faults) as bus:
        sdk, port, ph = _client("feetech", bus.port)
        try:
            # Feetech's SDK pings with PING then a READ of the model number; with disconnect_after=1
            # the PING is answered and the READ meets silence
            if expected == "COMM_RX_CORRUPT":
                assert _answered(sdk, lambda: ph.ping(port, 1))[1] == sdk.COMM_RX_CORRUPT
            else:
                assert ph.ping(port, 1)[1] == getattr(sdk, expected)
        finally:
            port.closePort()
        counts = bus.state()["counts"]
    if "corrupt_prob" in faults:
        assert counts["corrupted"] >= 1
    if "drop_prob" in faults:
        assert counts["dropped"] >= 1


def test_serve_runs_in_process_for_the_cli_and_stops_on_its_event():
    stop, ready = threading.Event(), []
    thread = threading.Thread(
        target=serve, args=(VirtualArmConfig(protocol="dynamixel"), stop), kwargs={"on_ready": ready.append}
    )
    thread.start()
    try:
        for _ in range(300):
            if ready:
                break
            threading.Event().wait(0.02)
        sdk, port, ph = _client("dynamixel", ready[0])
        assert _answered(sdk, lambda: ph.ping(port, 3))[:2] == (1200, sdk.COMM_SUCCESS)
        port.closePort()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_configs_name_the_bad_field():
    with pytest.raises(ValueError, match="corrupt_prob"):
        FaultConfig(corrupt_prob=1.5)
    with pytest.raises(ValueError, match="disconnect_mode"):
        FaultConfig(disconnect_mode="explode")
    with pytest.raises(ValueError, match="protocol"):
        VirtualArmConfig(protocol="can")
    with pytest.raises(ValueError, match="model"):
        VirtualArmConfig(protocol="feetech", model="xl330-m288")
