"""3Dconnexion SpaceMouse teleoperation over USB HID (``hidapi``), for end-effector delta control.

Legend: ``A`` action size (7 for ``ee_delta``: dx, dy, dz, drx, dry, drz, gripper).

HID reports (first byte is the report id; axes are little-endian int16, about +-350 at full deflection):

- id 1, 13 bytes (SpaceMouse Compact/Wireless and newer): tx, ty, tz, rx, ry, rz;
- id 1, 7 bytes (SpaceNavigator and older): tx, ty, tz; id 2, 7 bytes: rx, ry, rz;
- id 3: buttons, byte 1 a bitmask (bit 0 left, bit 1 right).

Device axes: +tx right, +ty towards the operator, +tz down (pressing the cap). With the operator facing
the robot's front, robot +x is away from the operator, +y to the operator's left, +z up, so
``dx = -ty``, ``dy = -tx``, ``dz = -tz``. That axis change is a proper rotation (determinant +1), so
rotations map the same way: ``drx = -ry``, ``dry = -rx``, ``drz = -rz`` (:data:`AXIS_MAP`). Each axis
is scaled to [-1, 1] by :data:`FULL_SCALE`, zeroed inside the dead zone, and multiplied by the
translation or rotation sensitivity. The left button toggles the gripper (-1 open, +1 closed), the right
button raises ``start``; pair the device with a keyboard (``events=``) for the other events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.teleop.devices import DeviceCommand, TeleopDevice, TeleopError, merge_events

VENDOR_IDS: dict[int, str] = {0x046D: "Logitech (older 3Dconnexion)", 0x256F: "3Dconnexion"}
FULL_SCALE = 350.0
"""Raw axis counts at full deflection."""
#: Output dim (dx, dy, dz, drx, dry, drz) -> (raw axis index in tx, ty, tz, rx, ry, rz; sign).
AXIS_MAP: tuple[tuple[int, float], ...] = ((1, -1.0), (0, -1.0), (2, -1.0), (4, -1.0), (3, -1.0), (5, -1.0))
REPORT_BYTES = 64
MAX_REPORTS_PER_POLL = 256
INSTALL_HINT = "pip install hidapi  (or pip install gipo-robot[teleop])"


@dataclass(frozen=True)
class SpaceMouseState:
    """The device's latest raw readings.

    Attributes:
        axes: (6,) int raw counts, tx, ty, tz, rx, ry, rz.
        buttons: bitmask of pressed buttons (bit 0 left, bit 1 right).
    """

    axes: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
    buttons: int = 0


def _int16(lo: int, hi: int) -> int:
    value = lo | (hi << 8)
    return value - 65536 if value >= 32768 else value


def parse_report(report: Sequence[int] | bytes, state: SpaceMouseState) -> SpaceMouseState:
    """Fold one HID report into ``state``; unknown or short reports leave it unchanged.

    Args:
        report: the report bytes, report id first.
        state: the readings before this report.

    Returns:
        The readings after it.
    """
    data = bytes(report)
    if not data:
        return state
    rid = data[0]
    axes = list(state.axes)
    if rid == 1 and len(data) >= 13:
        axes = [_int16(data[1 + 2 * i], data[2 + 2 * i]) for i in range(6)]
    elif rid == 1 and len(data) >= 7:
        axes[:3] = [_int16(data[1 + 2 * i], data[2 + 2 * i]) for i in range(3)]
    elif rid == 2 and len(data) >= 7:
        axes[3:] = [_int16(data[1 + 2 * i], data[2 + 2 * i]) for i in range(3)]
    elif rid == 3 and len(data) >= 2:
        return replace(state, buttons=data[1])
    else:
        return state
    return replace(state, axes=tuple(axes))


def axes_to_action(
    axes: Sequence[int], *, deadzone: float = 0.05, translation: float = 1.0, rotation: float = 1.0
) -> np.ndarray:
    """Raw (6,) axes -> (6,) normalised ee-delta motion (dx, dy, dz, drx, dry, drz) in [-1, 1].

    Example: tx=-175 (half way left) gives dy = -(-175 / 350) = +0.5.
    """
    raw = np.asarray(axes, dtype=np.float64)
    out = np.array([sign * raw[index] for index, sign in AXIS_MAP]) / FULL_SCALE
    out = np.clip(out, -1.0, 1.0)
    out[np.abs(out) < deadzone] = 0.0
    out[:3] *= translation
    out[3:] *= rotation
    return np.clip(out, -1.0, 1.0)


def _open_hid(vendor_id: int | None, product_id: int | None) -> Any:
    """Open the first SpaceMouse (or the given vendor/product) with hidapi, non-blocking."""
    try:
        import hid
    except ImportError as err:
        raise TeleopError(f"the SpaceMouse device needs the hidapi package: {INSTALL_HINT} ({err})") from None
    if not hasattr(hid, "enumerate") or not hasattr(hid, "device"):
        raise TeleopError(
            "the installed 'hid' module is not hidapi's (another package named 'hid' shadows it): "
            f"pip uninstall hid, then {INSTALL_HINT}"
        )
    found = hid.enumerate()
    matches = [
        d
        for d in found
        if (vendor_id is None and d.get("vendor_id") in VENDOR_IDS)
        or (d.get("vendor_id") == vendor_id and product_id in (None, d.get("product_id")))
    ]
    if not matches:
        seen = sorted({f"{d.get('vendor_id', 0):04x}:{d.get('product_id', 0):04x}" for d in found})
        wanted = "3Dconnexion SpaceMouse (vendor 046d or 256f)" if vendor_id is None else f"{vendor_id:04x}"
        raise TeleopError(
            f"no {wanted} found among the HID devices ({', '.join(seen) or 'none'}); is it plugged in, "
            "and may this user read /dev/hidraw* (udev rule)?"
        )
    handle = hid.device()
    try:
        handle.open_path(matches[0]["path"])
    except OSError as err:
        path = matches[0]["path"]
        raise TeleopError(f"cannot open the SpaceMouse at {path!r}: {err} (check permissions)") from None
    handle.set_nonblocking(1)
    return handle


@dataclass
class SpaceMouseDevice(TeleopDevice):
    """A SpaceMouse driving an ``ee_delta`` robot; see the module docstring for the mapping.

    Args:
        spec: the follower's spec; its action mode must be ``ee_delta`` with 6 motion dims + gripper.
        translation: translation sensitivity (scales dx, dy, dz).
        rotation: rotation sensitivity (scales drx, dry, drz).
        deadzone: normalised axis values below this are zero.
        vendor_id, product_id: pick a device; None takes the first 3Dconnexion one.
        events: another device (a :class:`~gipo_robot.teleop.keyboard.KeyboardDevice`) whose events
            are merged in; its actions are ignored.
        handle: an open HID handle (anything with ``read(n) -> list[int]`` and ``close()``); None opens
            one with hidapi on :meth:`start`.

    Raises:
        TeleopError: the robot is not ``ee_delta``.
    """

    spec: RobotSpec
    translation: float = 1.0
    rotation: float = 1.0
    deadzone: float = 0.05
    vendor_id: int | None = None
    product_id: int | None = None
    events: TeleopDevice | None = None
    handle: Any = None
    state: SpaceMouseState = field(default_factory=SpaceMouseState)
    name: str = "spacemouse"

    def __post_init__(self) -> None:
        if self.spec.action_mode != "ee_delta" or self.spec.action_dim != 7:
            raise TeleopError(
                f"the SpaceMouse drives end-effector deltas (ee_delta, 7 dims); {self.spec.name} uses "
                f"{self.spec.action_mode} with {self.spec.action_dim} dims (use --device keyboard or leader)"
            )
        for name in ("translation", "rotation"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SpaceMouseDevice.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"SpaceMouseDevice.deadzone must be in [0, 1), got {self.deadzone}")
        self._gripper = -1.0
        self._own_handle = self.handle is None

    def start(self) -> None:
        if self.handle is None:
            self.handle = _open_hid(self.vendor_id, self.product_id)
        if self.events is not None:
            self.events.start()

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        if self.handle is not None and self._own_handle:
            with contextlib.suppress(Exception):  # a yanked device: nothing left to release
                self.handle.close()
            self.handle = None

    def begin_episode(self, observation: Any) -> None:
        if self.events is not None:
            self.events.begin_episode(observation)

    def poll(self) -> DeviceCommand:
        if self.handle is None:
            raise TeleopError("SpaceMouse: poll() before start()")
        events: list[str] = []
        for _ in range(MAX_REPORTS_PER_POLL):
            report = self.handle.read(REPORT_BYTES)
            if not report:
                break
            before = self.state.buttons
            self.state = parse_report(report, self.state)
            pressed = self.state.buttons & ~before
            if pressed & 1:
                self._gripper = -self._gripper
            if pressed & 2:
                events.append("start")
        motion = axes_to_action(
            self.state.axes, deadzone=self.deadzone, translation=self.translation, rotation=self.rotation
        )
        other = self.events.poll() if self.events is not None else None
        return DeviceCommand(np.append(motion, self._gripper), (*events, *merge_events(other)))

    @property
    def labels_episodes(self) -> bool:
        """With a keyboard for the event keys, the operator labels every episode (:class:`TeleopDevice`)."""
        return self.events is not None and self.events.labels_episodes

    def help(self) -> str:
        lines = [
            "SpaceMouse controls: push/pull/lift the cap to move, tilt/twist to rotate;",
            "  left button  toggle the gripper;  right button  start an episode",
        ]
        if self.events is not None:
            lines.append(self.events.help())
        return "\n".join(lines)
