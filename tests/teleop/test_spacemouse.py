"""SpaceMouse HID reports -> ee-delta actions, at the byte level, with hand-built reports."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.teleop.devices import TeleopError
from gipo_robot.teleop.spacemouse import SpaceMouseDevice, SpaceMouseState, axes_to_action, parse_report


def ee_spec(mode: str = "ee_delta", dims: int = 7) -> RobotSpec:
    return RobotSpec(
        name="arm", action_mode=mode, action_names=tuple(f"a{i}" for i in range(dims)),
        action_low=-np.ones(dims), action_high=np.ones(dims), joint_names=("j",), joint_low=[-1.0],
        joint_high=[1.0], max_joint_velocity=[1.0], control_hz=20.0, obs_shapes={}, obs_dtypes={},
    )  # fmt: skip


def six_axes(tx=0, ty=0, tz=0, rx=0, ry=0, rz=0) -> bytes:
    """A SpaceMouse Compact/Wireless report: id 1, then six little-endian int16 axes."""
    return struct.pack("<B6h", 1, tx, ty, tz, rx, ry, rz)


def test_six_axis_report_bytes():
    report = six_axes(tx=-175, rz=350)
    # -175 as int16 little-endian is 0xFF51: low byte 0x51 first; 350 is 0x015E.
    assert report[:3] == bytes([0x01, 0x51, 0xFF]) and report[11:13] == bytes([0x5E, 0x01])
    state = parse_report(report, SpaceMouseState())
    assert state.axes == (-175, 0, 0, 0, 0, 350)


def test_axes_map_to_the_robot_frame():
    # dx = -ty, dy = -tx, dz = -tz, drx = -ry, dry = -rx, drz = -rz, each / 350 counts.
    # tx = -175 (half left) -> dy = +0.5; ty = 350 (pulled fully towards the operator) -> dx = -1;
    # tz = -70 (lifted) -> dz = +0.2; rz = 700 (twisted past full scale) -> drz = -1 (clipped);
    # rx = 10 -> 10 / 350 = 0.029 < the 0.05 dead zone -> dry = 0.
    action = axes_to_action((-175, 350, -70, 10, 0, 700))
    np.testing.assert_allclose(action, [-1.0, 0.5, 0.2, 0.0, 0.0, -1.0])
    # Sensitivities scale translation and rotation separately: ry = -175 -> drx = 0.5, times 0.5.
    np.testing.assert_allclose(axes_to_action((0, 0, 0, 0, -175, 0), rotation=0.5)[3], 0.25)


def test_older_models_send_translation_and_rotation_in_two_reports():
    state = parse_report(struct.pack("<B3h", 1, 35, -35, 0), SpaceMouseState())
    assert state.axes == (35, -35, 0, 0, 0, 0)
    state = parse_report(struct.pack("<B3h", 2, 0, 0, -350), state)
    assert state.axes == (35, -35, 0, 0, 0, -350)  # translation kept, rotation updated
    # Unknown report ids and empty reports change nothing.
    assert parse_report(bytes([7, 1, 2]), state) == state and parse_report(b"", state) == state


class Reports:
    """An open HID handle: ``read`` returns the queued reports one by one, then [] (non-blocking)."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.closed = False

    def read(self, size: int) -> list[int]:
        return list(self.queue.pop(0)[:size]) if self.queue else []

    def close(self) -> None:
        self.closed = True


def test_device_folds_every_pending_report_and_buttons_toggle_the_gripper():
    handle = Reports()
    device = SpaceMouseDevice(ee_spec(), handle=handle)
    with device:
        cmd = device.poll()
        np.testing.assert_allclose(cmd.action, [0, 0, 0, 0, 0, 0, -1.0])  # at rest, gripper open
        # Two motion reports in one period: the latest wins. Then left button down (bit 0): close.
        handle.queue += [six_axes(ty=-350), six_axes(ty=-175, tz=-350), struct.pack("<BB", 3, 0b01)]
        cmd = device.poll()
        np.testing.assert_allclose(cmd.action, [0.5, 0, 1.0, 0, 0, 0, 1.0])
        assert cmd.events == ()
        # Holding the button does not toggle again; release, then press both: open + start.
        handle.queue += [struct.pack("<BB", 3, 0b01), struct.pack("<BB", 3, 0), struct.pack("<BB", 3, 0b11)]
        cmd = device.poll()
        assert cmd.action[6] == -1.0 and cmd.events == ("start",)
    assert not handle.closed  # a handle we were given is the caller's to close


def test_wrong_action_mode_or_settings_are_clear_errors():
    with pytest.raises(TeleopError, match="ee_delta, 7 dims"):
        SpaceMouseDevice(ee_spec("joint_position", 6))
    with pytest.raises(ValueError, match=r"SpaceMouseDevice\.deadzone"):
        SpaceMouseDevice(ee_spec(), deadzone=1.5)


def test_no_spacemouse_plugged_in_is_a_clear_error():
    pytest.importorskip("hid")
    with pytest.raises(TeleopError, match="no 3Dconnexion SpaceMouse"):
        SpaceMouseDevice(ee_spec()).start()


def test_missing_hidapi_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", None)  # import hid -> ImportError
    with pytest.raises(TeleopError, match="pip install hidapi"):
        SpaceMouseDevice(ee_spec()).start()
