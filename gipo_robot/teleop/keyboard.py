"""Keyboard teleoperation in a terminal: raw tty input, works over SSH, needs no display.

Legend: ``A`` action size, ``J`` number of joints.

The terminal is put in cbreak mode (no line buffering, no echo; Ctrl-C still interrupts) while the
device is open and restored on :meth:`KeyboardDevice.close`, which the recorder always calls, also on
an exception or Ctrl-C. Input is read without blocking (``select`` with a zero timeout, then ``os.read``).

Key holding. A terminal reports key presses, not releases; a held key arrives as the terminal's
auto-repeat (after a delay of ~0.25-0.6 s, then ~25-30 presses/s). A motion key therefore counts as held
for ``hold_s`` seconds after each press it sends: a tap moves for ``hold_s``, a held key moves
continuously once auto-repeat starts (with a pause of the auto-repeat delay after the first press).

Motion keys, by action mode (``speed`` scales every motion; ``+``/``-`` change it):

- ``ee_delta``: ``w``/``s`` +x/-x, ``a``/``d`` +y/-y, ``r``/``f`` +z/-z, ``i``/``k`` +-roll,
  ``j``/``l`` +-pitch, ``u``/``o`` +-yaw, space toggles the gripper (open/closed). The action is
  ``+-speed`` on the held axes, 0 elsewhere.
- ``joint_delta``/``joint_position``: ``1``-``9`` select a joint, ``w``/``s`` move it up/down. In
  ``joint_position`` mode the device integrates an absolute target, re-seeded from the observed
  ``joint_pos`` at each episode start, moving ``speed * 2 / (4 * control_hz)`` normalised units per step
  (the full range in 4 s at speed 1).

Event keys: Enter start, ``y`` save (success), ``n`` save (failure), ``x`` discard, ``h`` reset scene /
go home, ``t`` policy takeover, ``b`` e-stop, Ctrl-D or Ctrl-C quit.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Mapping

import numpy as np

from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.teleop.devices import DeviceCommand, TeleopDevice, TeleopError

#: ee_delta motion key -> (action index, sign).
EE_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0),
    "s": (0, -1.0),
    "a": (1, 1.0),
    "d": (1, -1.0),
    "r": (2, 1.0),
    "f": (2, -1.0),
    "i": (3, 1.0),
    "k": (3, -1.0),
    "j": (4, 1.0),
    "l": (4, -1.0),
    "u": (5, 1.0),
    "o": (5, -1.0),
}
#: Joint-mode motion key -> sign, applied to the selected joint.
JOINT_KEYS: dict[str, float] = {"w": 1.0, "s": -1.0}
#: Event key -> control event (see :data:`gipo_robot.teleop.devices.EVENTS`).
EVENT_KEYS: dict[str, str] = {
    "\r": "start",
    "\n": "start",
    "y": "save_success",
    "n": "save_failure",
    "x": "discard",
    "h": "reset",
    "t": "takeover",
    "b": "estop",
    "\x04": "quit",  # Ctrl-D
    "\x03": "quit",  # Ctrl-C, where the terminal passes it through instead of raising SIGINT
}
GRIPPER_KEY = " "
SPEED_STEP = 0.1
JOINT_POSITION_FULL_RANGE_S = 4.0
"""At speed 1, a held key moves a joint target across its whole range in this many seconds."""


def _printable(key: str) -> str:
    return {"\r": "Enter", "\n": "Enter", " ": "space", "\x04": "Ctrl-D", "\x03": "Ctrl-C"}.get(key, key)


class KeyboardDevice(TeleopDevice):
    """Keys in a terminal -> actions and events; see the module docstring for the key map.

    Args:
        spec: the follower robot's spec (its action mode picks the key map).
        fd: file descriptor of the terminal to read; None reads standard input.
        speed: motion magnitude in (0, 1] (normalised action units per held axis).
        hold_s: a motion key counts as held this long after each press it sends, seconds.
        clock: monotonic time source, seconds (tests pass a fake one).

    Raises:
        ValueError: ``speed`` outside (0, 1] or ``hold_s`` <= 0 (naming the field).
        TeleopError: the robot's action mode has no key map.
    """

    name = "keyboard"

    @property
    def labels_episodes(self) -> bool:
        """The operator labels every episode with ``y``/``n``/``x`` (see :class:`TeleopDevice`)."""
        return True

    def __init__(
        self,
        spec: RobotSpec,
        *,
        fd: int | None = None,
        speed: float = 0.5,
        hold_s: float = 0.15,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < speed <= 1.0:
            raise ValueError(f"KeyboardDevice.speed must be in (0, 1], got {speed}")
        if hold_s <= 0.0:
            raise ValueError(f"KeyboardDevice.hold_s must be > 0 s, got {hold_s}")
        if spec.action_mode == "ee_delta" and spec.action_dim < 6:
            raise TeleopError(
                f"{spec.name}: ee_delta needs >= 6 action dims for the key map, has {spec.action_dim}"
            )
        if spec.action_mode not in ("ee_delta", "joint_delta", "joint_position"):
            raise TeleopError(f"keyboard: no key map for action mode {spec.action_mode!r}")
        self.spec = spec
        self.speed = float(speed)
        self.hold_s = float(hold_s)
        self._fd = fd
        self._clock = clock
        self._saved_attrs: list | None = None
        self._last_press: dict[str, float] = {}
        self._gripper = -1.0
        self._joint = 0
        self._target: np.ndarray | None = None
        self._pending = b""

    # ------------------------------------------------------------------------------ terminal handling
    @property
    def fd(self) -> int:
        """The terminal's file descriptor."""
        return sys.stdin.fileno() if self._fd is None else self._fd

    def start(self) -> None:
        """Put the terminal in cbreak mode, saving its settings for :meth:`close`.

        Raises:
            TeleopError: the input is not a terminal.
        """
        try:
            fd = self.fd
            terminal = os.isatty(fd)
        except (AttributeError, ValueError, OSError):  # a replaced stdin without a file descriptor
            terminal = False
        if not terminal:
            raise TeleopError(
                "keyboard device needs a terminal on standard input (run it in a terminal, or over "
                "`ssh -t`); for headless recording use --device scripted"
            )
        if self._saved_attrs is None:
            self._saved_attrs = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)

    def close(self) -> None:
        """Restore the terminal settings saved by :meth:`start`. Idempotent; never raises."""
        if self._saved_attrs is not None:
            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved_attrs)
            self._saved_attrs = None

    def _read_keys(self) -> str:
        """Every key available now (escape sequences such as arrow keys are dropped)."""
        data = self._pending
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.0)
            if not ready:
                break
            chunk = os.read(self.fd, 1024)
            if not chunk:
                break
            data += chunk
        self._pending = b""
        keys = []
        i = 0
        while i < len(data):
            byte = data[i]
            if byte == 0x1B:  # ESC [ params final: skip the whole sequence
                j = i + 1
                if j < len(data) and data[j] in b"[O":
                    j += 1
                    while j < len(data) and not 0x40 <= data[j] <= 0x7E:
                        j += 1
                i = j + 1
                continue
            keys.append(chr(byte) if byte < 0x80 else "")
            i += 1
        return "".join(keys)

    # ------------------------------------------------------------------------------ device interface
    def begin_episode(self, observation: Mapping[str, np.ndarray]) -> None:
        self._last_press.clear()
        if self.spec.action_mode == "joint_position":
            if "joint_pos" not in observation:
                raise TeleopError(
                    "keyboard: joint_position mode needs the observation 'joint_pos'; "
                    f"it has {sorted(observation)}"
                )
            q = np.asarray(observation["joint_pos"], dtype=np.float64)
            if q.shape != (self.spec.action_dim,):
                raise TeleopError(
                    f"keyboard: observation 'joint_pos' has shape {q.shape}, "
                    f"the actions have {self.spec.action_dim} dims"
                )
            self._target = np.clip(self.spec.to_normalized(q), -1.0, 1.0)

    def poll(self) -> DeviceCommand:
        now = self._clock()
        events = []
        for key in self._read_keys():
            if key in EVENT_KEYS:
                events.append(EVENT_KEYS[key])
            elif key == GRIPPER_KEY:
                self._gripper = -self._gripper
            elif key == "+" or key == "=":
                self.speed = min(1.0, round(self.speed + SPEED_STEP, 3))
            elif key == "-":
                self.speed = max(SPEED_STEP, round(self.speed - SPEED_STEP, 3))
            elif key.isdigit() and self.spec.action_mode != "ee_delta":
                joint = int(key) - 1
                if 0 <= joint < self.spec.action_dim:
                    self._joint = joint
            elif key:
                self._last_press[key.lower()] = now
        held = {k for k, t in self._last_press.items() if now - t <= self.hold_s}
        return DeviceCommand(self._action(held), tuple(events))

    def _action(self, held: set[str]) -> np.ndarray:
        spec = self.spec
        if spec.action_mode == "ee_delta":
            action = np.zeros(spec.action_dim)
            for key in held & set(EE_KEYS):
                index, sign = EE_KEYS[key]
                action[index] += sign * self.speed
            action[-1] = self._gripper
            return np.clip(action, -1.0, 1.0)
        direction = sum(JOINT_KEYS[k] for k in held & set(JOINT_KEYS))
        if spec.action_mode == "joint_delta":
            action = np.zeros(spec.action_dim)
            action[self._joint] = direction * self.speed
            return action
        if self._target is None:
            raise TeleopError("keyboard: poll() before begin_episode() in joint_position mode")
        rate = self.speed * 2.0 / (JOINT_POSITION_FULL_RANGE_S * spec.control_hz)
        self._target[self._joint] = np.clip(self._target[self._joint] + direction * rate, -1.0, 1.0)
        return self._target.copy()

    def help(self) -> str:
        lines = ["keyboard controls:"]
        if self.spec.action_mode == "ee_delta":
            names = self.spec.action_names
            pairs = [("w", "s"), ("a", "d"), ("r", "f"), ("i", "k"), ("j", "l"), ("u", "o")]
            for plus, minus in pairs:
                lines.append(f"  {plus}/{minus}  +/- {names[EE_KEYS[plus][0]]}")
            lines.append(f"  space  toggle {names[-1]} (open/close)")
        else:
            joints = ", ".join(f"{i + 1}={n}" for i, n in enumerate(self.spec.action_names[:9]))
            lines.append(f"  1-9    select joint ({joints})")
            lines.append("  w/s    move the selected joint up/down")
        lines.append(f"  +/-    speed up/down (now {self.speed:.1f})")
        for key, event in EVENT_KEYS.items():
            if key not in ("\n", "\x03"):
                lines.append(f"  {_printable(key):6s} {event}")
        lines.append("  Ctrl-C quit")
        return "\n".join(lines)
